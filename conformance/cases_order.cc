// SPDX-License-Identifier: Apache-2.0
//
// Out of order: in every state of a set, every event off the happy path
// gets BAD_STATE with a message and changes nothing -- the set then goes on
// (or stays aborted, or stays complete) as if the event never came.
#include "conformance/suite.hpp"

namespace snapset::conformance {

namespace {

enum class Probe {
  kBeginPrepare,
  kEndPrepare,
  kPreCommit,
  kCommit,
  kPostCommit,
  kPreFinal,
  kPostFinal,
  kAbort
};

const char* ProbeName(Probe p) {
  switch (p) {
    case Probe::kBeginPrepare:
      return "begin_prepare_snapshot";
    case Probe::kEndPrepare:
      return "end_prepare_snapshots";
    case Probe::kPreCommit:
      return "pre_commit_snapshots";
    case Probe::kCommit:
      return "commit_snapshots";
    case Probe::kPostCommit:
      return "post_commit_snapshots";
    case Probe::kPreFinal:
      return "pre_final_commit_snapshots";
    case Probe::kPostFinal:
      return "post_final_commit_snapshots";
    case Probe::kAbort:
      return "abort_snapshots";
  }
  return "?";
}

const char* StateName(int32_t s) {
  static const char* names[] = {"Idle",      "Preparing",     "Prepared", "PreCommitted",
                                "Committed", "PostCommitted", "Complete", "Aborted"};
  return s >= 0 && s <= 7 ? names[s] : "?";
}

// The events off the happy path in each state.
std::vector<Probe> OffPath(int32_t state) {
  using P = Probe;
  switch (state) {
    case SNAPSET_STATE_IDLE:
      return {P::kEndPrepare, P::kPreCommit, P::kCommit,
              P::kPostCommit, P::kPreFinal,  P::kPostFinal};
    case SNAPSET_STATE_PREPARING:
      return {P::kPreCommit, P::kCommit, P::kPostCommit, P::kPreFinal, P::kPostFinal};
    case SNAPSET_STATE_PREPARED:
      return {P::kBeginPrepare, P::kEndPrepare, P::kCommit,
              P::kPostCommit,   P::kPreFinal,   P::kPostFinal};
    case SNAPSET_STATE_PRECOMMITTED:
      return {P::kBeginPrepare, P::kEndPrepare, P::kPreCommit,
              P::kPostCommit,   P::kPreFinal,   P::kPostFinal};
    case SNAPSET_STATE_COMMITTED:
      return {P::kBeginPrepare, P::kEndPrepare, P::kPreCommit,
              P::kCommit,       P::kPreFinal,   P::kPostFinal};
    case SNAPSET_STATE_POSTCOMMITTED:
      return {P::kBeginPrepare, P::kEndPrepare, P::kPreCommit, P::kCommit, P::kPostCommit};
    case SNAPSET_STATE_COMPLETE:
      return {P::kBeginPrepare, P::kEndPrepare, P::kPreCommit, P::kCommit,
              P::kPostCommit,   P::kPreFinal,   P::kPostFinal, P::kAbort};
    case SNAPSET_STATE_ABORTED:
      return {P::kBeginPrepare, P::kEndPrepare, P::kPreCommit, P::kCommit,
              P::kPostCommit,   P::kPreFinal,   P::kPostFinal};
  }
  return {};
}

Answer Send(CaseContext& ctx, Probe p, const SetRun& set, int volume) {
  PluginHost& h = ctx.host();
  switch (p) {
    case Probe::kBeginPrepare:
      return h.BeginPrepare(set.set_id, CaseContext::NewUuid(), ctx.volume(volume));
    case Probe::kEndPrepare:
      return h.SetEvent(Event::kEndPrepare, set.set_id);
    case Probe::kPreCommit:
      return h.SetEvent(Event::kPreCommit, set.set_id);
    case Probe::kCommit:
      return h.SetEvent(Event::kCommit, set.set_id);
    case Probe::kPostCommit:
      return h.SetEvent(Event::kPostCommit, set.set_id);
    case Probe::kPreFinal:
      return h.SetEvent(Event::kPreFinal, set.set_id);
    case Probe::kPostFinal:
      return h.SetEvent(Event::kPostFinal, set.set_id);
    case Probe::kAbort:
      return h.SetEvent(Event::kAbort, set.set_id);
  }
  return {};
}

bool Offered(const snapset_provider_ops& ops, Probe p) {
  if (p == Probe::kPreFinal) return ops.pre_final_commit_snapshots != nullptr;
  if (p == Probe::kPostFinal) return ops.post_final_commit_snapshots != nullptr;
  return true;
}

void Matrix(CaseContext& ctx) {
  std::vector<std::string> bad;
  int pairs = 0;
  const int32_t states[] = {SNAPSET_STATE_IDLE,      SNAPSET_STATE_PREPARING,
                            SNAPSET_STATE_PREPARED,  SNAPSET_STATE_PRECOMMITTED,
                            SNAPSET_STATE_COMMITTED, SNAPSET_STATE_POSTCOMMITTED,
                            SNAPSET_STATE_COMPLETE,  SNAPSET_STATE_ABORTED};
  for (int32_t state : states) {
    SetRun set;
    set.set_id = CaseContext::NewUuid();
    set.volumes = {0};
    if (state == SNAPSET_STATE_ABORTED) {
      ctx.DriveTo(set, SNAPSET_STATE_PREPARED);
      Answer a = ctx.host().SetEvent(Event::kAbort, set.set_id);
      if (!a.ok()) Fail("abort_snapshots failed: " + a.Describe());
    } else {
      ctx.DriveTo(set, state);
    }
    for (Probe p : OffPath(state)) {
      if (!Offered(ctx.host().ops(), p)) continue;
      ++pairs;
      // A begin_prepare off the path names the second volume, so a wrong
      // OK is not mistaken for a reused volume.
      Answer a = Send(ctx, p, set, 1);
      const std::string pair = std::string(ProbeName(p)) + " in " + StateName(state);
      if (a.code != SNAPSET_E_BAD_STATE)
        bad.push_back(pair + " gave " + (a.ok() ? std::string("OK") : a.Describe()));
      else if (a.message.empty())
        bad.push_back(pair + " gave BAD_STATE with no message");
    }
    // Nothing changed: the set goes on from where it was.
    if (state == SNAPSET_STATE_ABORTED) {
      if (!ctx.Listed(set).empty()) bad.push_back("an aborted set is listed after the probes");
      continue;
    }
    if (state == SNAPSET_STATE_IDLE) continue;
    if (state != SNAPSET_STATE_COMPLETE) ctx.DriveTo(set, SNAPSET_STATE_COMPLETE);
    if (ctx.Listed(set).size() != 1)
      bad.push_back("the set probed in " + std::string(StateName(state)) +
                    " is not listed once complete");
    for (const auto& s : ctx.Listed(set)) (void)ctx.host().Delete(s.snapshot_id);
  }
  if (!bad.empty()) {
    std::string text = std::to_string(bad.size()) + " of " + std::to_string(pairs) +
                       " out-of-order events were not refused with BAD_STATE: ";
    for (size_t i = 0; i < bad.size(); ++i) text += (i ? "; " : "") + bad[i];
    Fail(text);
  }
}

const CaseRegistrar registrar({
    {"order.bad-state-matrix",
     "every event off the happy path, in every state, gets BAD_STATE and changes nothing", "", 240,
     Matrix},
});

}  // namespace

}  // namespace snapset::conformance
