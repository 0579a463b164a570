// SPDX-License-Identifier: Apache-2.0
//
// The suite's cases: a table of named cases, each with one line on what a
// user relies on, the capability it needs (if any) and the code that checks
// it. Each case runs in a process of its own, forked from the suite, with a
// fresh provider instance: a provider that aborts or hangs fails that case
// and nothing else.
//
// A case reports with Fail/Skip/Warn (they throw; nothing crosses the ABI)
// or by returning. Every case also fails when it leaves residue: snapshots
// in list_snapshots, or objects on the fixture's side, that were not there
// before it ran.
#ifndef SNAPSET_CONFORMANCE_SUITE_HPP
#define SNAPSET_CONFORMANCE_SUITE_HPP

#include <snapset/provider.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "conformance/fixture.hpp"
#include "conformance/plugin_host.hpp"
#include "core/volume.hpp"
#include "core/volume_abi.hpp"
#include "core/write_hold.hpp"

namespace snapset::conformance {

enum class Verdict { kPass, kWarn, kSkip, kFail };
const char* VerdictName(Verdict v);  // "pass", "warn", "skip", "fail"

// Thrown by Fail/Skip/Warn to end a case.
struct CaseEnd {
  Verdict verdict;
  std::string reason;
};
[[noreturn]] void Fail(const std::string& reason);
[[noreturn]] void Skip(const std::string& reason);
// A warning ends the case as passed-with-warning.
[[noreturn]] void Warn(const std::string& reason);

// Capabilities a case may need. A provider offers them through optional
// members of its table; a fixture offers data access, residue and faults.
namespace capability {
inline constexpr char kExpose[] = "expose";           // expose_snapshot
inline constexpr char kRevert[] = "revert";           // revert_to_snapshot
inline constexpr char kHoldWrites[] = "hold_writes";  // the provider holds writes
inline constexpr char kObjects[] = "objects";         // list_objects / remove_object
inline constexpr char kFences[] = "fences";           // an array driver's write fences
inline constexpr char kChangedBlocks[] = "changed_blocks";
inline constexpr char kFaults[] = "faults";    // fixture: fault injection
inline constexpr char kResidue[] = "residue";  // fixture: sees the storage side
inline constexpr char kData[] = "data";        // fixture: writes and reads records
}  // namespace capability

struct SuiteOptions {
  int volumes = 16;         // N: the most volumes one set takes
  int concurrent_sets = 4;  // K
  double commit_warn_ms = 1000;
  double commit_fail_ms = 10000;
  int window_ms = 10000;  // the commit window the host gives commit
  uint64_t seed = 0;
  std::set<std::string> require;  // a missing capability fails instead of skipping
  std::vector<std::string> secrets;
};

// A set the case drives, with what the host saw of it.
struct SetRun {
  std::string set_id;
  std::vector<int> volumes;               // fixture indexes
  std::vector<std::string> snapshot_ids;  // one per volume, same order
  int32_t state = SNAPSET_STATE_IDLE;     // as the host drove it
  // CLOCK_REALTIME ns around the commit window: writes held from
  // hold_start (after the last hold returned) to hold_end (before the
  // first release).
  int64_t hold_start_ns = 0, hold_end_ns = 0;
  bool held = false;  // every volume's writes were held
  Answer commit;      // commit_snapshots' answer
};

class CaseContext {
 public:
  // `volumes` are the fixture's volumes as resolved once by the runner.
  CaseContext(Fixture& fixture, const FixtureSetup& setup, const std::vector<Volume>& volumes,
              const SuiteOptions& options, uint64_t seed);
  ~CaseContext();

  PluginHost& host() { return *host_; }
  Fixture& fixture() { return fixture_; }
  const SuiteOptions& options() const { return options_; }
  std::mt19937_64& rng() { return rng_; }

  // Opens the library and loads an instance (the runner does it before each
  // case); Reload unloads and loads a new one, as after a restart.
  void Open();
  void Reload(HostFlavour flavour = HostFlavour::kCurrent);
  const FixtureSetup& setup() const { return setup_; }

  int volume_count() const { return int(resolved_.size()); }
  const snapset_volume* volume(int i) const;
  const Volume& resolved(int i) const { return *resolved_[i]; }

  // Fails the case (with its name) when the capability is missing and was
  // --require'd, else skips it: "skipped: capability X not offered".
  void NeedCapability(const std::string& name);
  bool HasCapability(const std::string& name) const;

  static std::string NewUuid();

  // Drives a set. Each step fails the case on a non-OK answer, naming the
  // event. Prepare: begin_prepare per volume, then end_prepare.
  SetRun Prepare(const std::vector<int>& volumes, uint32_t context = 0);
  // The commit window alone: hold writes, commit (deadline window_ms from
  // the hold, with a watchdog that releases the holds at the deadline and
  // raises the cancellation flag), release. Holds: FIFREEZE for a mounted
  // filesystem, the provider's hold_writes where it offers one, none
  // otherwise (set.held false). The answer is in set.commit; not checked.
  void CommitWindow(SetRun& set, const std::atomic<bool>* cancel = nullptr);
  // The whole happy path.
  SetRun CreateSet(const std::vector<int>& volumes, uint32_t context = 0);
  // Deletes every snapshot of the set; fails on a non-OK answer.
  void DeleteSet(const SetRun& set);
  // Sends the events of the happy path in order until `set` is in `state`
  // (Preparing ... Complete); fails the case on a non-OK answer.
  void DriveTo(SetRun& set, int32_t state, uint32_t context = 0);

  // The snapshots list_snapshots shows for `set_id`.
  std::vector<SnapshotInfo> Listed(const std::string& set_id);
  // The snapshots of `set`: those listed with its set id or one of its
  // snapshot ids. One listed with another set id (a provider that does not
  // keep a snapshot's set) is kept, and noted as a warning.
  std::vector<SnapshotInfo> Listed(const SetRun& set);

  // A warning that does not end the case: a passing case with notes is
  // reported as "warn" with them.
  void Note(const std::string& warning);
  const std::vector<std::string>& notes() const { return notes_; }

  // What the case leaves must equal what was there before it.
  void TakeResidueBaseline();
  // Empty when nothing new is left; else one line per leftover.
  std::vector<std::string> NewResidue();

  // The writes held for a commit window: FIFREEZE of the filesystems, the
  // provider's holds. Release (bottom-up) is idempotent and thread-safe;
  // the destructor releases.
  struct Holds {
    PluginHost* host = nullptr;
    std::vector<std::unique_ptr<WriteHold>> freezes;
    std::vector<const snapset_volume*> provider_held;
    std::mutex mu;
    bool released = false;
    void Release();
    ~Holds();
  };
  // Holds the writes of `volumes` top-down; *all_held false when some
  // cannot be held. Fails the case when a hold fails.
  std::unique_ptr<Holds> HoldWrites(const std::vector<int>& volumes, bool* all_held);

 private:
  Fixture& fixture_;
  FixtureSetup setup_;
  SuiteOptions options_;
  std::mt19937_64 rng_;
  std::unique_ptr<PluginHost> host_;
  std::vector<std::unique_ptr<Volume>> resolved_;
  std::vector<std::unique_ptr<VolumeAbiView>> abi_;
  std::vector<std::string> baseline_snapshots_, baseline_residue_;
  std::mutex notes_mu_;
  std::vector<std::string> notes_;
};

struct CaseDef {
  std::string name;     // group.case, e.g. "abort.in-prepared"
  std::string relies;   // what a user relies on, one line
  std::string needs;    // a capability, or ""
  int timeout_s = 120;  // the runner kills the case's process after this
  std::function<void(CaseContext&)> run;
};

// Every case, in the order they run. Each cases_*.cc adds its own with a
// static CaseRegistrar.
std::vector<CaseDef>& Cases();
struct CaseRegistrar {
  explicit CaseRegistrar(std::vector<CaseDef> defs);
};

}  // namespace snapset::conformance

#endif  // SNAPSET_CONFORMANCE_SUITE_HPP
