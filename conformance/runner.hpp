// SPDX-License-Identifier: Apache-2.0
//
// Runs the cases, each in a process forked for it: the provider is loaded
// in that process, so an abort, a crash or a hang of the provider fails
// that one case (the runner kills a case that outlives its timeout) and the
// suite goes on. The child sends its outcome, the calls it made and the
// provider's log lines back through a pipe, as JSON.
#ifndef SNAPSET_CONFORMANCE_RUNNER_HPP
#define SNAPSET_CONFORMANCE_RUNNER_HPP

#include <string>
#include <vector>

#include "conformance/suite.hpp"

namespace snapset::conformance {

struct CaseOutcome {
  std::string name, relies;
  int round = 0;  // 0 .. --repeat-1
  Verdict verdict = Verdict::kPass;
  std::string reason;
  double seconds = 0;
  std::vector<CallRecord> calls;
  std::vector<std::string> logs, messages;
};

struct RunOptions {
  std::string filter;  // ECMAScript regex on case names; "" runs all
  int repeat = 1;
  bool progress = true;  // a progress line on stderr
};

// True once SIGINT or SIGTERM arrived: the runner stops after killing the
// case in progress.
bool Interrupted();
void InstallInterruptHandlers();

std::vector<CaseOutcome> RunCases(Fixture& fixture, const FixtureSetup& setup,
                                  const std::vector<Volume>& volumes, const SuiteOptions& options,
                                  const RunOptions& run);

// The cases a filter selects, in order (for --list too).
std::vector<const CaseDef*> SelectCases(const std::string& filter);

// The host process crash.kill-host kills: `snapset-conformance
// --internal-crash-worker LIBRARY CONFIG_FILE SET_ID SNAPSHOT_ID SNAPSHOT_ID
// VOLUME VOLUME` takes one set and waits to be killed (cases_crash.cc).
int RunCrashWorker(int argc, char** argv);

}  // namespace snapset::conformance

#endif  // SNAPSET_CONFORMANCE_RUNNER_HPP
