// SPDX-License-Identifier: Apache-2.0
#include "conformance/runner.hpp"

#include <fcntl.h>
#include <linux/fs.h>
#include <poll.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <iostream>
#include <regex>

namespace snapset::conformance {

namespace {

volatile sig_atomic_t g_interrupted = 0;

void OnInterrupt(int) { g_interrupted = 1; }

using Json = rapidjson::Writer<rapidjson::StringBuffer>;

void WriteStrings(Json& w, const char* key, const std::vector<std::string>& items) {
  w.Key(key);
  w.StartArray();
  for (const auto& s : items) w.String(s.c_str(), rapidjson::SizeType(s.size()));
  w.EndArray();
}

std::string Serialize(const CaseOutcome& o) {
  rapidjson::StringBuffer buf;
  Json w(buf);
  w.StartObject();
  w.Key("verdict");
  w.Int(int(o.verdict));
  w.Key("reason");
  w.String(o.reason.c_str(), rapidjson::SizeType(o.reason.size()));
  w.Key("calls");
  w.StartArray();
  for (const auto& c : o.calls) {
    w.StartArray();
    w.String(c.op.c_str());
    w.Int(c.code);
    w.Double(c.ms);
    w.Bool(c.message_set);
    w.EndArray();
  }
  w.EndArray();
  WriteStrings(w, "logs", o.logs);
  WriteStrings(w, "messages", o.messages);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

bool Deserialize(const std::string& text, CaseOutcome* o) {
  rapidjson::Document d;
  d.Parse(text.c_str(), text.size());
  if (d.HasParseError() || !d.IsObject()) return false;
  o->verdict = Verdict(d["verdict"].GetInt());
  o->reason = d["reason"].GetString();
  for (const auto& c : d["calls"].GetArray())
    o->calls.push_back({c[0].GetString(), c[1].GetInt(), c[2].GetDouble(), c[3].GetBool()});
  for (const auto& s : d["logs"].GetArray()) o->logs.push_back(s.GetString());
  for (const auto& s : d["messages"].GetArray()) o->messages.push_back(s.GetString());
  return true;
}

// The case's body, in the forked process.
CaseOutcome RunInChild(const CaseDef& def, Fixture& fixture, const FixtureSetup& setup,
                       const std::vector<Volume>& volumes, const SuiteOptions& options,
                       uint64_t seed) {
  CaseOutcome o;
  CaseContext ctx(fixture, setup, volumes, options, seed);
  try {
    ctx.Open();
    ctx.TakeResidueBaseline();
    if (!def.needs.empty()) ctx.NeedCapability(def.needs);
    def.run(ctx);
    if (auto left = ctx.NewResidue(); !left.empty()) {
      std::string text = "left behind: " + left[0];
      for (size_t i = 1; i < left.size() && i < 8; ++i) text += "; " + left[i];
      if (left.size() > 8) text += "; and " + std::to_string(left.size() - 8) + " more";
      Fail(text);
    }
    if (!ctx.notes().empty()) Warn(ctx.notes().front());
  } catch (const CaseEnd& end) {
    o.verdict = end.verdict;
    o.reason = end.reason;
    // A pass with its evidence, and notes: a warning that keeps both.
    if (end.verdict == Verdict::kPass && !ctx.notes().empty()) {
      o.verdict = Verdict::kWarn;
      o.reason = ctx.notes().front() + (end.reason.empty() ? "" : "; " + end.reason);
    }
  } catch (const std::exception& e) {
    o.verdict = Verdict::kFail;
    o.reason = std::string("the suite stopped on an error: ") + e.what();
  }
  try {
    o.calls = ctx.host().calls();
    o.logs = ctx.host().logs();
    o.messages = ctx.host().messages();
  } catch (...) {  // Open failed before there was a host
  }
  return o;
}

// A case that died may have left a filesystem frozen: thaw the fixture's,
// which only the suite's own cases freeze.
void ThawFixtureFilesystems(const std::vector<Volume>& volumes) {
  for (const Volume& v : volumes) {
    if (v.mount_point.empty()) continue;
    int fd = ::open(v.mount_point.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) continue;
    (void)::ioctl(fd, FITHAW, 0);
    ::close(fd);
  }
}

std::string SignalText(int sig) {
  const char* name = sigabbrev_np(sig);
  return std::string("signal ") + std::to_string(sig) +
         (name ? std::string(" (SIG") + name + ")" : "");
}

CaseOutcome RunOne(const CaseDef& def, Fixture& fixture, const FixtureSetup& setup,
                   const std::vector<Volume>& volumes, const SuiteOptions& options, uint64_t seed) {
  int fds[2];
  CaseOutcome o;
  o.name = def.name;
  o.relies = def.relies;
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    o.verdict = Verdict::kFail;
    o.reason = std::string("cannot make a pipe: ") + std::strerror(errno);
    return o;
  }
  std::cout.flush();
  std::cerr.flush();
  const auto start = std::chrono::steady_clock::now();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    ::signal(SIGINT, SIG_DFL);
    ::signal(SIGTERM, SIG_DFL);
    const std::string text = Serialize(RunInChild(def, fixture, setup, volumes, options, seed));
    size_t off = 0;
    while (off < text.size()) {
      ssize_t n = ::write(fds[1], text.data() + off, text.size() - off);
      if (n <= 0) break;
      off += size_t(n);
    }
    ::_exit(0);  // no destructors: the fixture belongs to the parent
  }
  ::close(fds[1]);
  std::string text;
  bool timed_out = false;
  const auto limit = start + std::chrono::seconds(def.timeout_s);
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          limit - std::chrono::steady_clock::now())
                          .count();
    if (left <= 0 || g_interrupted) {
      timed_out = !g_interrupted;
      ::kill(pid, SIGKILL);
      // A thread of the killed case blocked on a frozen filesystem keeps
      // it from dying: thaw first, or waitpid below never returns.
      ThawFixtureFilesystems(volumes);
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    int r = ::poll(&p, 1, int(std::min<long long>(left, 200)));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    char buf[65536];
    ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n <= 0) break;
    text.append(buf, size_t(n));
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  o.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (timed_out) {
    ThawFixtureFilesystems(volumes);
    o.verdict = Verdict::kFail;
    o.reason = "hung: the case did not finish within " + std::to_string(def.timeout_s) +
               " s (a provider call never returned?); its process was killed";
    return o;
  }
  if (g_interrupted) {
    ThawFixtureFilesystems(volumes);
    o.verdict = Verdict::kFail;
    o.reason = "interrupted";
    return o;
  }
  if (WIFSIGNALED(status)) {
    ThawFixtureFilesystems(volumes);
    o.verdict = Verdict::kFail;
    o.reason = "the host process died of " + SignalText(WTERMSIG(status)) +
               ": a provider must never abort or crash its host";
    return o;
  }
  if (!Deserialize(text, &o)) {
    o.verdict = Verdict::kFail;
    o.reason = "the case's process exited with status " + std::to_string(WEXITSTATUS(status)) +
               " without a result (did the provider call exit()?)";
  }
  return o;
}

// Parent-side case: no log line or message of any case holds a secret.
CaseOutcome CheckSecrets(const CaseDef& def, const std::vector<CaseOutcome>& ran,
                         const std::vector<std::string>& secrets) {
  CaseOutcome o;
  o.name = def.name;
  o.relies = def.relies;
  if (secrets.empty()) {
    o.verdict = Verdict::kSkip;
    o.reason = "no secret strings: the fixture configured none and no --secret was given";
    return o;
  }
  for (const auto& c : ran) {
    for (const auto* list : {&c.logs, &c.messages}) {
      for (const auto& line : *list) {
        for (const auto& secret : secrets) {
          if (secret.empty() || line.find(secret) == std::string::npos) continue;
          std::string shown = line;
          for (size_t at; (at = shown.find(secret)) != std::string::npos;)
            shown.replace(at, secret.size(), "<secret>");
          o.verdict = Verdict::kFail;
          o.reason = "a secret appears in " +
                     std::string(list == &c.logs ? "a log line" : "a message") + " during " +
                     c.name + ": \"" + shown + "\"";
          return o;
        }
      }
    }
  }
  o.reason = "no secret in " + std::to_string(ran.size()) + " cases' log lines and messages";
  return o;
}

}  // namespace

bool Interrupted() { return g_interrupted != 0; }

void InstallInterruptHandlers() {
  struct sigaction sa {};
  sa.sa_handler = &OnInterrupt;
  ::sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
}

std::vector<const CaseDef*> SelectCases(const std::string& filter) {
  std::vector<const CaseDef*> out;
  const std::regex re(filter.empty() ? std::string(".*") : filter);
  for (const CaseDef& c : Cases())
    if (std::regex_search(c.name, re)) out.push_back(&c);
  // Cases that judge the others' records (no run of their own) go last.
  std::stable_partition(out.begin(), out.end(), [](const CaseDef* c) { return bool(c->run); });
  return out;
}

std::vector<CaseOutcome> RunCases(Fixture& fixture, const FixtureSetup& setup,
                                  const std::vector<Volume>& volumes, const SuiteOptions& options,
                                  const RunOptions& run) {
  const auto selected = SelectCases(run.filter);
  std::vector<CaseOutcome> out;
  std::vector<std::string> secrets = options.secrets;
  for (const auto& s : fixture.secrets()) secrets.push_back(s);
  const bool tty = ::isatty(STDERR_FILENO);
  const size_t total = selected.size() * size_t(std::max(run.repeat, 1));
  size_t done = 0, failed = 0;
  for (int round = 0; round < std::max(run.repeat, 1) && !g_interrupted; ++round) {
    for (const CaseDef* def : selected) {
      if (g_interrupted) break;
      if (run.progress) {
        std::cerr << (tty ? "\r\033[K" : "") << "[" << done + 1 << "/" << total << "] " << def->name
                  << (failed ? " (" + std::to_string(failed) + " failed)" : "") << (tty ? "" : "\n")
                  << std::flush;
      }
      CaseOutcome o =
          def->run ? RunOne(*def, fixture, setup, volumes, options, options.seed + done * 7919)
                   : CheckSecrets(*def, out, secrets);
      o.round = round;
      if (o.verdict == Verdict::kFail) ++failed;
      out.push_back(std::move(o));
      ++done;
    }
  }
  if (run.progress && tty) std::cerr << "\r\033[K" << std::flush;
  return out;
}

}  // namespace snapset::conformance
