// SPDX-License-Identifier: Apache-2.0
//
// Faults: for every operation the provider sends to the storage in a phase
// of a set (the fixture's fault_operations(), "PHASE:OPERATION"), and every
// way an array misbehaves -- an error answer, an answer past the call's
// deadline, no answer at all, a body that is not JSON, a connection dropped
// after the operation ran -- the step of that phase fails with the
// documented status and a message, within its deadline, and once the set
// is aborted (or, for a delete, the delete done again) nothing is left on
// the storage or in list_snapshots.
//
// The documented statuses (docs/ihv-guide.md, "what each call may return"):
// UNAVAILABLE outside the commit window; inside it (hold_writes, commit,
// the job's polls) HOLD_WRITES_TIMEOUT when the deadline passed, else
// UNAVAILABLE or HOLD_WRITES_TIMEOUT.
//
// Each case runs its whole matrix and fails once, listing every cell that
// went wrong, so one run shows the whole picture. A fault is armed for one
// request (Count 1) and disarmed right after the step it should fail, so
// the abort that follows runs against a healthy array: it proves the
// provider cleans up what a failed request may have made (a group whose
// reply was lost, a snapshot made after the provider gave up waiting).
//
// Time: the faulted call gets a short deadline (kFaultDeadline), a delay is
// just past it, and a delayed operation is waited for before the abort (it
// does run on the array, late). About 2 s a cell on the mock arrays.
#include <algorithm>
#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "conformance/suite.hpp"

namespace snapset::conformance {
namespace {

using std::chrono::milliseconds;

// The deadline of the call the fault should fail.
constexpr milliseconds kFaultDeadline{1500};
// A delayed answer comes this long after the request: past the deadline.
constexpr milliseconds kFaultDelay = kFaultDeadline + milliseconds(700);
// Slack on the deadline for the answer to reach the host (2 cores, load).
constexpr double kSlackMs = 1000;
// Every call that is not faulted: room enough, never unbounded.
constexpr milliseconds kGenerous{20000};
// The window of a set committed on the way to a later phase.
constexpr milliseconds kSetupWindow{10000};

const char* const kKinds[] = {"error", "delay", "hang", "garbage", "drop"};

std::string KindText(const std::string& kind) {
  if (kind == "error") return "an error answer (500)";
  if (kind == "delay")
    return "an answer " + std::to_string(kFaultDelay.count()) + " ms late (deadline " +
           std::to_string(kFaultDeadline.count()) + " ms)";
  if (kind == "hang") return "no answer";
  if (kind == "garbage") return "a 200 whose body is not JSON";
  return "the connection dropped after the operation ran";
}

CallSettings Within(milliseconds ms) {
  CallSettings s;
  s.deadline = Clock::now() + ms;
  return s;
}

std::string CodeName(int32_t code) {
  Answer a;
  a.code = code;
  const std::string d = a.Describe();
  return d.substr(0, d.find(':'));
}

// One phase's matrix.
class Matrix {
 public:
  Matrix(CaseContext& ctx, std::string phase) : ctx_(ctx), phase_(std::move(phase)) {
    for (const std::string& op : ctx.fixture().fault_operations()) {
      if (op.rfind(phase_ + ":", 0) == 0) ops_.push_back(op);
    }
    const int n = ctx.volume_count();
    volumes_ = n >= 2 ? std::vector<int>{0, n - 1} : std::vector<int>{0};
  }

  void Run() {
    if (ops_.empty()) Skip("the fixture names no operation the provider sends in phase " + phase_);
    ctx_.TakeResidueBaseline();
    for (const std::string& op : ops_) {
      for (const char* kind : kKinds) Cell(op, kind);
    }
    if (violations_.empty()) return;
    std::string text = std::to_string(violations_.size()) + " of " +
                       std::to_string(ops_.size() * std::size(kKinds) - not_applicable_) +
                       " fault cells in phase " + phase_ + " went wrong:";
    for (const std::string& v : violations_) text += "\n  " + v;
    Fail(text);
  }

 private:
  struct Set {
    std::string id;
    std::vector<std::string> snapshots;  // one per volume of volumes_
  };

  void Violation(const std::string& what) { violations_.push_back(cell_ + ": " + what); }

  // The answer of the step the fault should fail.
  void ExpectFailed(const std::string& step, const Answer& a, bool in_window,
                    milliseconds deadline) {
    if (a.ok()) {
      // A request that changes nothing is sent again after a transport
      // failure, outside the window (the REST toolkit's rule): a dropped
      // GET may well end in success.
      if (!in_window && kind_ == "drop" && ReadOnly()) return;
      // A 2xx to a delete says it is done; its body carries nothing a
      // client needs, so a garbled one is not read (the abort or the next
      // delete below still has to leave nothing).
      if (kind_ == "garbage" && Deletes()) return;
      // A delete is idempotent: one whose reply was lost may be sent again
      // (and find the object gone).
      if (kind_ == "drop" && Deletes()) return;
      Violation(step + " answered OK: the fault must fail it");
      return;
    }
    if (a.message.empty()) Violation(step + " failed (" + CodeName(a.code) + ") with no message");
    const bool late = kind_ == "delay" || kind_ == "hang";
    bool documented = a.code == SNAPSET_E_UNAVAILABLE;
    std::string expected = "UNAVAILABLE";
    if (in_window && late) {
      documented = a.code == SNAPSET_E_HOLD_WRITES_TIMEOUT;
      expected = "HOLD_WRITES_TIMEOUT (the window's deadline passed)";
    } else if (in_window) {
      documented = documented || a.code == SNAPSET_E_HOLD_WRITES_TIMEOUT;
      expected = "UNAVAILABLE or HOLD_WRITES_TIMEOUT";
    }
    if (!documented) Violation(step + " gave " + a.Describe() + "; documented: " + expected);
    if (a.ms > double(deadline.count()) + kSlackMs)
      Violation(step + " took " + std::to_string(int(a.ms)) + " ms, past its deadline of " +
                std::to_string(deadline.count()) + " ms");
  }

  // A setup step that must work for the cell to mean anything.
  bool Setup(const std::string& step, const Answer& a) {
    if (a.ok()) return true;
    Violation("setting up, " + step + " failed: " + a.Describe());
    return false;
  }

  // A read (Redfish "X.List", "X.Get"), which the provider may resend.
  bool ReadOnly() const {
    auto ends = [&](const char* tail) {
      const std::string t = tail;
      return op_.size() >= t.size() && op_.compare(op_.size() - t.size(), t.size(), t) == 0;
    };
    return ends(".List") || ends(".Get");
  }
  // A delete (DELETE, or a Redfish Remove... action).
  bool Deletes() const {
    return op_.find(".Delete") != std::string::npos || op_.find(".Remove") != std::string::npos;
  }

  bool Inject() {
    Status s = ctx_.fixture().InjectFault(op_, kind_, int(kFaultDelay.count()));
    if (s.Is(Code::kNotImplemented)) {
      ++not_applicable_;  // this storage cannot fail this operation this way
    } else if (!s.ok()) {
      Violation("arming the fault failed: " + s.ToString());
    }
    return s.ok();
  }

  // Disarms, after waiting for a delayed operation to have run on the
  // array (it does, late): what it made, the abort must find.
  void Disarm(Clock::time_point faulted_at) {
    if (kind_ == "delay")
      std::this_thread::sleep_until(faulted_at + kFaultDelay + milliseconds(500));
    if (Status s = ctx_.fixture().ClearFaults(); !s.ok())
      Violation("clearing the faults failed: " + s.ToString());
  }

  bool BeginPrepare(Set& set) {
    set.id = CaseContext::NewUuid();
    for (int v : volumes_) {
      set.snapshots.push_back(CaseContext::NewUuid());
      if (!Setup("begin_prepare_snapshot",
                 ctx_.host().BeginPrepare(set.id, set.snapshots.back(), ctx_.volume(v), 0,
                                          Within(kGenerous))))
        return false;
    }
    return true;
  }

  // The commit window as a coordinator runs it: hold every volume the
  // provider holds, commit, release every hold asked for (also one that
  // failed: its fence may be up although its reply was lost). Returns the
  // first failure of hold, commit or release, *step naming it.
  Answer Window(const Set& set, milliseconds window, std::string* step,
                milliseconds release_within = kGenerous) {
    CallSettings in_window;
    in_window.deadline = Clock::now() + window;
    std::vector<const snapset_volume*> asked;
    Answer failed;
    for (int v : volumes_) {
      const snapset_volume* vol = ctx_.volume(v);
      if (!ctx_.host().ops().hold_writes || !ctx_.host().CanHoldWrites(vol).ok()) continue;
      asked.push_back(vol);
      Answer h = ctx_.host().HoldWrites(vol, in_window);
      if (!h.ok()) {
        failed = h;
        *step = "hold_writes";
        break;
      }
    }
    if (failed.ok()) {
      failed = ctx_.host().SetEvent(Event::kCommit, set.id, in_window);
      *step = "commit_snapshots";
    }
    // After a failed step the release is the array's too: one the fault
    // stalls (a hung member copy holds a twophase array's lock) cannot lift
    // its fence now, and need not, since the fence lifts itself at the
    // window's end; the residue check below still finds one left up.
    const bool stalled = !failed.ok() && (kind_ == "hang" || kind_ == "delay");
    for (const snapset_volume* vol : asked) {
      Answer r = ctx_.host().ReleaseWrites(vol, Within(stalled ? kFaultDeadline : release_within));
      if (!r.ok() && failed.ok()) {
        failed = r;
        *step = "release_writes";
      } else if (!r.ok() && !stalled && *step != "release_writes") {
        Violation("release_writes after a failed " + *step + " failed: " + r.Describe());
      }
    }
    if (failed.ok()) *step = "the window (hold_writes, commit_snapshots, release_writes)";
    return failed;
  }

  // Aborts, and checks that nothing of the set is left.
  void AbortAndCheck(const Set& set) {
    if (!set.id.empty()) {
      Answer a = ctx_.host().SetEvent(Event::kAbort, set.id, Within(kGenerous));
      if (!a.ok()) Violation("abort_snapshots failed: " + a.Describe());
      if (auto listed = ctx_.Listed(set.id); !listed.empty())
        Violation("after the abort list_snapshots shows " + std::to_string(listed.size()) +
                  " snapshots of the set");
    }
    CheckResidue();
  }

  // Residue new in this cell (a leftover already reported is not again).
  void CheckResidue() {
    std::vector<std::string> fresh;
    for (const std::string& line : ctx_.NewResidue()) {
      if (reported_.insert(line).second) fresh.push_back(line);
    }
    if (fresh.empty()) return;
    std::string text = "left behind:";
    for (const std::string& line : fresh) text += " [" + line + "]";
    Violation(text);
  }

  void Cell(const std::string& op, const std::string& kind) {
    op_ = op;
    kind_ = kind;
    cell_ = op.substr(op.find(':') + 1) + " x " + kind + " (" + KindText(kind) + ")";
    if (phase_ == "prepare") return Prepare();
    if (phase_ == "commit") return Commit();
    if (phase_ == "post-commit") return PostCommit();
    if (phase_ == "delete") return Delete();
    Violation("no cell runner for phase " + phase_);
  }

  void Prepare() {
    Set set;
    if (BeginPrepare(set) && Inject()) {
      const auto at = Clock::now();
      Answer a = ctx_.host().SetEvent(Event::kEndPrepare, set.id, Within(kFaultDeadline));
      ExpectFailed("end_prepare_snapshots", a, false, kFaultDeadline);
      Disarm(at);
    }
    AbortAndCheck(set);
  }

  void Commit() {
    Set set;
    if (BeginPrepare(set) &&
        Setup("end_prepare_snapshots",
              ctx_.host().SetEvent(Event::kEndPrepare, set.id, Within(kGenerous))) &&
        Setup("pre_commit_snapshots",
              ctx_.host().SetEvent(Event::kPreCommit, set.id, Within(kGenerous))) &&
        Inject()) {
      const auto at = Clock::now();
      std::string step;
      // The release has the fault's deadline too: it is the fault's step
      // when the fault is on lifting a fence.
      Answer a = Window(set, kFaultDeadline, &step, kFaultDeadline);
      ExpectFailed(step, a, step != "release_writes", kFaultDeadline);
      Disarm(at);
    }
    AbortAndCheck(set);
  }

  // Through the commit, healthy.
  bool Committed(Set& set) {
    if (!BeginPrepare(set) ||
        !Setup("end_prepare_snapshots",
               ctx_.host().SetEvent(Event::kEndPrepare, set.id, Within(kGenerous))) ||
        !Setup("pre_commit_snapshots",
               ctx_.host().SetEvent(Event::kPreCommit, set.id, Within(kGenerous))))
      return false;
    std::string step;
    const milliseconds window{std::min<int>(ctx_.options().window_ms, int(kSetupWindow.count()))};
    return Setup("the commit window (" + std::string("hold, commit, release") + ")",
                 Window(set, window, &step));
  }

  void PostCommit() {
    Set set;
    if (Committed(set) && Inject()) {
      const auto at = Clock::now();
      Answer a = ctx_.host().SetEvent(Event::kPostCommit, set.id, Within(kFaultDeadline));
      ExpectFailed("post_commit_snapshots", a, false, kFaultDeadline);
      Disarm(at);
    }
    AbortAndCheck(set);
  }

  void Delete() {
    Set set;
    bool complete = Committed(set);
    for (Event e : {Event::kPostCommit, Event::kPreFinal, Event::kPostFinal}) {
      complete =
          complete && Setup(EventName(e), ctx_.host().SetEvent(e, set.id, Within(kGenerous)));
    }
    if (!complete) {
      AbortAndCheck(set);
      return;
    }
    if (Inject()) {
      const auto at = Clock::now();
      Answer a = ctx_.host().Delete(set.snapshots.front(), Within(kFaultDeadline));
      ExpectFailed("delete_snapshot", a, false, kFaultDeadline);
      Disarm(at);
    }
    // Deleted again, the first may be gone already (its reply was lost).
    for (size_t i = 0; i < set.snapshots.size(); ++i) {
      Answer d = ctx_.host().Delete(set.snapshots[i], Within(kGenerous));
      if (!d.ok() && !(i == 0 && d.code == SNAPSET_E_NOT_FOUND))
        Violation("delete_snapshot of " + set.snapshots[i] +
                  " after the fault failed: " + d.Describe());
    }
    if (auto listed = ctx_.Listed(set.id); !listed.empty())
      Violation("after the deletes list_snapshots shows " + std::to_string(listed.size()) +
                " snapshots of the set");
    CheckResidue();
  }

  CaseContext& ctx_;
  std::string phase_;
  std::vector<std::string> ops_;
  std::vector<int> volumes_;
  std::string op_, kind_, cell_;
  std::vector<std::string> violations_;
  std::set<std::string> reported_;
  size_t not_applicable_ = 0;  // cells whose fault the fixture cannot arm
};

void Faults(CaseContext& ctx, const std::string& phase) {
  ctx.NeedCapability(capability::kFaults);
  Matrix(ctx, phase).Run();
}

const CaseRegistrar registrar({
    {"faults.prepare",
     "a storage request of end_prepare that fails, is late, hangs, answers garbage or loses its "
     "reply fails the set with UNAVAILABLE, and the abort leaves nothing",
     capability::kFaults, 120, [](CaseContext& c) { Faults(c, "prepare"); }},
    {"faults.commit",
     "a storage request of the commit window (fence, snapshot, its job) that fails, is late, "
     "hangs, answers garbage or loses its reply fails the commit within its deadline, "
     "HOLD_WRITES_TIMEOUT when the deadline passed, and the abort leaves nothing",
     capability::kFaults, 120, [](CaseContext& c) { Faults(c, "commit"); }},
    {"faults.post-commit",
     "a storage request of post_commit that fails, is late, hangs, answers garbage or loses its "
     "reply fails the set with UNAVAILABLE, and the abort deletes its snapshots",
     capability::kFaults, 120, [](CaseContext& c) { Faults(c, "post-commit"); }},
    {"faults.delete",
     "a delete whose storage request fails, is late, hangs, answers garbage or loses its reply "
     "says UNAVAILABLE, and deleting again leaves nothing",
     capability::kFaults, 120, [](CaseContext& c) { Faults(c, "delete"); }},
});

}  // namespace
}  // namespace snapset::conformance
