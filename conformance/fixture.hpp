// SPDX-License-Identifier: Apache-2.0
//
// A fixture says where the suite's test volumes come from, how data is
// written to them and read back, and what a provider could leave behind on
// the storage's side. The suite makes its volumes once, before the first
// case, and destroys them after the last.
//
// Built in, for the bundled providers (fixture_*.cc):
//   loop        ext4 on loop devices whose backing files sit on an xfs pool
//               (loop-clone clones them with FICLONE)
//   cow         software-cow volumes, with snapset-cowd started by the suite
//   mock-swordfish, mock-twophase
//               LUNs on two mock arrays of that dialect, started by the suite,
//               driven by the iSCSI provider
// For vendors: `command` (fixture_command.cc), a JSON file naming commands.
//
// A record is a short line of text ("seq 42", "pattern 7 before") that a
// fixture writes at one fixed place of a volume -- a block, or a file on
// its filesystem -- and reads back from the volume or from a snapshot's
// exposure. Every data case is built on records.
//
// Fixture methods run in the suite's parent process (create, destroy,
// residue) and in the forked process of each case (write and read).
#ifndef SNAPSET_CONFORMANCE_FIXTURE_HPP
#define SNAPSET_CONFORMANCE_FIXTURE_HPP

#include <memory>
#include <snapset/status.hpp>
#include <string>
#include <vector>

namespace snapset::conformance {

// Writes records to one volume as fast as it can, for the load cases. A
// write that returns has reached the volume as far as a freeze or a
// provider's hold is concerned (it may sit in the page cache above a
// filesystem that a freeze flushes).
class RecordWriter {
 public:
  virtual ~RecordWriter() = default;
  virtual Status Write(const std::string& record) = 0;
};

// What the suite needs from a fixture to drive a provider.
struct FixtureSetup {
  std::string provider_library;  // the .so to test
  std::string provider_config;   // the registration's "config" as JSON text
  std::string provider_name;     // for reports
  // The iSCSI initiator name the LUNs are mapped to, with which the suite
  // resolves iscsi:// volumes ("" : the host's own, core/iscsi_identity.hpp).
  std::string initiator_iqn;
};

class Fixture {
 public:
  virtual ~Fixture() = default;

  // One line: what the volumes are ("ext4 on loop devices over an xfs pool").
  virtual std::string Describe() const = 0;

  // Starts what the fixture needs (daemons, arrays) and makes `count`
  // volumes. Called once, in the parent. Returns the provider to test.
  virtual Result<FixtureSetup> Start(int count) = 0;

  // The volumes' names as snapset resolves them (a mount point, cow:NAME,
  // an iscsi:// URL), in a fixed order.
  virtual const std::vector<std::string>& volumes() const = 0;

  // Writes `record` to volume `index` (durably: it is on the volume when
  // this returns, below any cache a snapshot would miss).
  virtual Status WriteRecord(int index, const std::string& record) = 0;
  // Reads the record of volume `index`.
  virtual Result<std::string> ReadRecord(int index) = 0;
  // Reads the record of a snapshot of volume `index` through its exposure
  // (what expose_snapshot returned).
  virtual Result<std::string> ReadExposedRecord(int index, const std::string& exposed_as) = 0;
  // Tries to change the exposed snapshot; OK means it could be written to
  // (a defect), any error that it is read-only.
  virtual Status TryWriteExposed(int index, const std::string& exposed_as) = 0;

  // A writer for the load cases. The default writes with WriteRecord.
  virtual Result<std::unique_ptr<RecordWriter>> OpenWriter(int index);

  // What the storage holds that a provider made (snapshots, groups, fences,
  // connections, files), one line each, for the "no residue" checks. The
  // suite compares it with what it was before the case. A fixture that
  // cannot see the storage's side returns an empty list and says so in
  // residue_visible().
  virtual Result<std::vector<std::string>> Residue() { return std::vector<std::string>{}; }
  virtual bool residue_visible() const { return false; }

  // Fault injection on the storage's control plane (arrays). `operation` is
  // one of fault_operations(); `kind` is error, delay, hang, garbage or
  // drop. Fixtures without it return an empty list.
  virtual std::vector<std::string> fault_operations() const { return {}; }
  virtual Status InjectFault(const std::string& operation, const std::string& kind, int delay_ms) {
    (void)operation, (void)kind, (void)delay_ms;
    return Status::NotImplemented("this fixture cannot inject faults");
  }
  virtual Status ClearFaults() { return Status::Ok(); }

  // Strings that must never appear in a log line or a message (passwords,
  // tokens, CHAP secrets the fixture configured).
  virtual std::vector<std::string> secrets() const { return {}; }

  // Destroys the volumes and stops what Start started. Also run by the
  // destructor; safe to call twice.
  virtual void Stop() = 0;
};

struct FixtureOptions {
  std::string name;          // loop, cow, mock-swordfish, mock-twophase, command
  std::string command_file;  // command: the fixture's JSON file
  std::string work_dir;      // a private temporary directory the fixture may use
  // mock-*: the array driver library to host instead of the bundled one
  // (an IHV's build, or a test's deliberately broken driver).
  std::string driver;
};

// Makes the fixture `options.name`; InvalidArgument names the known ones.
Result<std::unique_ptr<Fixture>> MakeFixture(const FixtureOptions& options);

// The factories behind MakeFixture, one per fixture_*.cc.
std::unique_ptr<Fixture> MakeLoopFixture(const FixtureOptions& options);
std::unique_ptr<Fixture> MakeCowFixture(const FixtureOptions& options);
std::unique_ptr<Fixture> MakeMockArrayFixture(const FixtureOptions& options,
                                              const std::string& dialect);
Result<std::unique_ptr<Fixture>> MakeCommandFixture(const FixtureOptions& options);

}  // namespace snapset::conformance

#endif  // SNAPSET_CONFORMANCE_FIXTURE_HPP
