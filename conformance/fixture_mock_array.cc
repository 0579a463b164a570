// SPDX-License-Identifier: Apache-2.0
// STUB: replaced by the mock-array fixture.
#include "conformance/fixture.hpp"
namespace snapset::conformance {
std::unique_ptr<Fixture> MakeMockArrayFixture(const FixtureOptions&, const std::string&) {
  return nullptr;
}
}  // namespace snapset::conformance
