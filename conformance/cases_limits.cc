// SPDX-License-Identifier: Apache-2.0
//
// Limits and secrets: the most snapshots a volume takes is reported with
// its code, and no secret of the fixture appears in a log line or message
// (judged by the runner over every case's records).
#include "conformance/suite.hpp"

namespace snapset::conformance {

namespace {

constexpr int kProbe = 24;

void MaxSnapshots(CaseContext& ctx) {
  std::vector<SetRun> taken;
  std::string outcome;
  for (int i = 0; i < kProbe && outcome.empty(); ++i) {
    SetRun set;
    set.set_id = CaseContext::NewUuid();
    set.volumes = {0};
    const std::string id = CaseContext::NewUuid();
    Answer a = ctx.host().BeginPrepare(set.set_id, id, ctx.volume(0));
    if (!a.ok()) {
      (void)ctx.host().SetEvent(Event::kAbort, set.set_id);
      if (a.code == SNAPSET_E_MAX_SNAPSHOTS || a.code == SNAPSET_E_INSUFFICIENT_STORAGE) {
        if (a.message.empty())
          outcome = "fail:the limit is reported without a message";
        else
          outcome = "pass:limit reached after " + std::to_string(i) + " snapshots: " + a.Describe();
      } else {
        outcome = "fail:snapshot " + std::to_string(i + 1) + " of one volume was refused with " +
                  a.Describe() + "; a limit must be MAX_SNAPSHOTS (or INSUFFICIENT_STORAGE)";
      }
      break;
    }
    set.snapshot_ids.push_back(id);
    set.state = SNAPSET_STATE_PREPARING;
    ctx.DriveTo(set, SNAPSET_STATE_COMPLETE);
    taken.push_back(set);
  }
  for (const SetRun& s : taken) ctx.DeleteSet(s);
  if (outcome.starts_with("fail:")) Fail(outcome.substr(5));
  if (outcome.empty())
    outcome = "pass:no limit within " + std::to_string(kProbe) + " snapshots of one volume";
  throw CaseEnd{Verdict::kPass, outcome.substr(5)};
}

const CaseRegistrar registrar({
    {"limits.max-snapshots",
     "the most snapshots a volume can have is reported as MAX_SNAPSHOTS with a message", "", 240,
     MaxSnapshots},
    // No run of its own: the runner judges every case's log lines and
    // messages against the fixture's and --secret's strings, last.
    {"secrets.not-logged",
     "no secret (password, token, CHAP secret) appears in any log line or message", "", 0, nullptr},
});

}  // namespace

}  // namespace snapset::conformance
