// SPDX-License-Identifier: Apache-2.0
//
// snapset-conformance: runs the conformance cases against one provider (or
// the iSCSI provider hosting one array driver) on a fixture's volumes, and
// reports. docs/qa-guide.md is the manual.
//
// Exit status: 0 no case failed (warnings and skips allowed), 1 a case
// failed, 2 usage or configuration error, 3 the fixture could not start.
#include <stdlib.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <regex>

#include "conformance/fixture.hpp"
#include "conformance/report.hpp"
#include "conformance/runner.hpp"
#include "core/volume_resolver.hpp"

namespace {

namespace fs = std::filesystem;
using namespace snapset::conformance;

constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;
constexpr int kExitFixture = 3;

void ListCases(const std::string& filter) {
  for (const CaseDef* c : SelectCases(filter)) {
    std::cout << c->name;
    if (!c->needs.empty()) std::cout << "  [needs " << c->needs << "]";
    std::cout << "\n    " << c->relies << "\n";
  }
}

bool WriteFile(const std::string& path, const std::string& text) {
  if (path == "-") {
    std::cout << text;
    return bool(std::cout);
  }
  std::ofstream out(path, std::ios::trunc);
  out << text;
  return bool(out);
}

// A private directory for the fixture, removed at the end.
struct WorkDir {
  std::string path;
  WorkDir() {
    const char* tmp = ::getenv("TMPDIR");
    std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/snapset-conformance.XXXXXX";
    if (::mkdtemp(pattern.data())) path = pattern;
  }
  ~WorkDir() {
    std::error_code ec;
    if (!path.empty()) fs::remove_all(path, ec);
  }
};

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "--internal-crash-worker")
    return RunCrashWorker(argc, argv);
  CLI::App app{
      "snapset-conformance: proves a snapset provider or array driver right, through its C "
      "ABI, on real volumes.\nSee docs/qa-guide.md."};
  FixtureOptions fixture_options;
  std::string library, junit, json, filter;
  bool list = false, quiet = false;
  int repeat = 1;
  uint64_t seed = 0;
  SuiteOptions options;
  std::vector<std::string> require, secrets;
  app.add_option("--fixture", fixture_options.name,
                 "where the test volumes come from: loop (loop-clone), cow (software-cow), "
                 "mock-swordfish or mock-twophase (the iSCSI provider over mock arrays), "
                 "command (a vendor's, with --fixture-file)");
  app.add_option("--fixture-file", fixture_options.command_file,
                 "the command fixture's JSON file (implies --fixture command)")
      ->check(CLI::ExistingFile);
  app.add_option("--library", library,
                 "test this provider library instead of the fixture's bundled one, with the "
                 "fixture's config")
      ->check(CLI::ExistingFile);
  app.add_option("--driver", fixture_options.driver,
                 "mock-*: host this array driver library instead of the bundled one")
      ->check(CLI::ExistingFile);
  app.add_option("--filter", filter, "run only the cases whose name matches this regex");
  app.add_flag("--list", list, "list the cases (with --filter: those it selects) and exit");
  app.add_option("--repeat", repeat, "run every selected case N times")->check(CLI::Range(1, 1000));
  app.add_option("--seed", seed, "seed of the random choices (default: random, printed)");
  app.add_option("--require", require,
                 "a capability that must be offered: a case needing it fails instead of "
                 "skipping (expose, revert, hold_writes, objects, fences, changed_blocks, "
                 "faults, residue, data)");
  app.add_option("--secret", secrets, "a string that must never appear in a log line or message");
  app.add_option("--volumes", options.volumes, "N: the most volumes one set takes (default 16)")
      ->check(CLI::Range(2, 64));
  app.add_option("--sets", options.concurrent_sets, "K: sets taken at once (default 4)")
      ->check(CLI::Range(1, 16));
  app.add_option("--commit-warn-ms", options.commit_warn_ms,
                 "commit latency (p99) that gives a warning (default 1000)");
  app.add_option("--commit-fail-ms", options.commit_fail_ms,
                 "commit latency (p99) that fails (default 10000)");
  app.add_option("--window-ms", options.window_ms,
                 "the commit window given to commit_snapshots (default 10000)")
      ->check(CLI::Range(100, 10000));
  app.add_option("--junit", junit, "write a JUnit XML report to FILE");
  app.add_option("--json", json,
                 "write a JSON report (per-call latency and counts) to FILE, - for stdout");
  app.add_flag("-q,--quiet", quiet, "no progress line");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : kExitUsage;
  }
  if (!fixture_options.command_file.empty()) {
    if (!fixture_options.name.empty() && fixture_options.name != "command") {
      std::cerr << "snapset-conformance: --fixture-file is for --fixture command, not --fixture "
                << fixture_options.name << "\n";
      return kExitUsage;
    }
    fixture_options.name = "command";
  }
  try {
    (void)SelectCases(filter);
  } catch (const std::regex_error& e) {
    std::cerr << "snapset-conformance: --filter \"" << filter
              << "\" is not a valid regex: " << e.what() << "\n";
    return kExitUsage;
  }
  if (list) {
    ListCases(filter);
    return 0;
  }
  if (fixture_options.name.empty()) {
    std::cerr << "snapset-conformance: say which fixture gives the test volumes: --fixture "
                 "loop|cow|mock-swordfish|mock-twophase, or --fixture-file FILE (--help)\n";
    return kExitUsage;
  }
  if (SelectCases(filter).empty()) {
    std::cerr << "snapset-conformance: --filter \"" << filter
              << "\" selects no case (--list shows them)\n";
    return kExitUsage;
  }
  if (seed == 0) seed = std::random_device{}() | 1;
  options.seed = seed;
  options.secrets = secrets;
  options.require.insert(require.begin(), require.end());

  WorkDir work;
  if (work.path.empty()) {
    std::cerr << "snapset-conformance: cannot make a temporary directory\n";
    return kExitFixture;
  }
  fixture_options.work_dir = work.path;
  auto fixture = MakeFixture(fixture_options);
  if (fixture.ok() && !*fixture)
    fixture = snapset::Status::NotImplemented("the " + fixture_options.name +
                                              " fixture is not built into this suite");
  if (!fixture.ok()) {
    std::cerr << "snapset-conformance: " << fixture.status().message() << "\n";
    return fixture.status().code() == snapset::Code::kInvalidArgument ? kExitUsage : kExitFixture;
  }
  InstallInterruptHandlers();
  auto setup = (*fixture)->Start(options.volumes);
  if (!setup.ok()) {
    std::cerr << "snapset-conformance: the " << fixture_options.name
              << " fixture could not start: " << setup.status().message() << "\n";
    (*fixture)->Stop();
    return kExitFixture;
  }
  if (!library.empty()) setup->provider_library = fs::absolute(library).string();
  // Resolution here and in the crash worker logs in as the fixture's
  // initiator, the name its LUNs are mapped to.
  if (!setup->initiator_iqn.empty())
    ::setenv("SNAPSET_INITIATOR_IQN", setup->initiator_iqn.c_str(), 1);
  std::vector<snapset::Volume> volumes;
  for (const std::string& name : (*fixture)->volumes()) {
    auto v = snapset::ResolveVolume(name);
    if (!v.ok()) {
      std::cerr << "snapset-conformance: the fixture's volume " << name
                << " does not resolve: " << v.status().message() << "\n";
      (*fixture)->Stop();
      return kExitFixture;
    }
    volumes.push_back(std::move(*v));
  }
  if (int(volumes.size()) < 2) {
    std::cerr << "snapset-conformance: the fixture made " << volumes.size()
              << " volumes; the suite needs at least 2\n";
    (*fixture)->Stop();
    return kExitFixture;
  }
  options.volumes = std::min<int>(options.volumes, int(volumes.size()));

  RunOptions run;
  run.filter = filter;
  run.repeat = repeat;
  run.progress = !quiet;
  const auto outcomes = RunCases(**fixture, *setup, volumes, options, run);
  (*fixture)->Stop();

  ReportHeader header;
  header.provider = setup->provider_name + " (" + setup->provider_library + ")";
  header.fixture = (*fixture)->Describe();
  header.seed = seed;
  PrintTable(json == "-" ? std::cerr : std::cout, header, outcomes);
  if (!junit.empty() && !WriteFile(junit, JunitXml(header, outcomes))) {
    std::cerr << "snapset-conformance: cannot write " << junit << "\n";
    return kExitUsage;
  }
  if (!json.empty() && !WriteFile(json, JsonReport(header, outcomes))) {
    std::cerr << "snapset-conformance: cannot write " << json << "\n";
    return kExitUsage;
  }
  if (Interrupted()) return 130;
  for (const auto& o : outcomes)
    if (o.verdict == Verdict::kFail) return kExitFailed;
  return 0;
}
