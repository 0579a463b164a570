// SPDX-License-Identifier: Apache-2.0
// STUB: replaced by the command fixture.
#include "conformance/fixture.hpp"
namespace snapset::conformance {
Result<std::unique_ptr<Fixture>> MakeCommandFixture(const FixtureOptions&) {
  return Status::NotImplemented("command fixture");
}
}  // namespace snapset::conformance
