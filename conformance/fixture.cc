// SPDX-License-Identifier: Apache-2.0
#include "conformance/fixture.hpp"

namespace snapset::conformance {

namespace {

// Writes through WriteRecord: what a fixture without a faster path offers.
class FixtureRecordWriter : public RecordWriter {
 public:
  FixtureRecordWriter(Fixture& fixture, int index) : fixture_(fixture), index_(index) {}
  Status Write(const std::string& record) override { return fixture_.WriteRecord(index_, record); }

 private:
  Fixture& fixture_;
  int index_;
};

}  // namespace

Result<std::unique_ptr<RecordWriter>> Fixture::OpenWriter(int index) {
  return std::unique_ptr<RecordWriter>(new FixtureRecordWriter(*this, index));
}

Result<std::unique_ptr<Fixture>> MakeFixture(const FixtureOptions& options) {
  if (options.name == "loop") return MakeLoopFixture(options);
  if (options.name == "cow") return MakeCowFixture(options);
  if (options.name == "mock-swordfish") return MakeMockArrayFixture(options, "swordfish");
  if (options.name == "mock-twophase") return MakeMockArrayFixture(options, "twophase");
  if (options.name == "command") return MakeCommandFixture(options);
  return Status::InvalidArgument("unknown fixture \"" + options.name +
                                 "\": use loop, cow, mock-swordfish, mock-twophase, or "
                                 "command with --fixture-file FILE");
}

}  // namespace snapset::conformance
