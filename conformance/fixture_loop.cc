// SPDX-License-Identifier: Apache-2.0
// STUB: replaced by the loop fixture.
#include "conformance/fixture.hpp"
namespace snapset::conformance {
std::unique_ptr<Fixture> MakeLoopFixture(const FixtureOptions&) { return nullptr; }
}  // namespace snapset::conformance
