// SPDX-License-Identifier: Apache-2.0
//
// Crash: a host process taking a set is killed with SIGKILL at random
// moments of the set's life; a new instance recovers as the coordinator's
// next start does -- abort_snapshots, then delete_snapshot of each of the
// set's snapshot ids -- and nothing is left, in list_snapshots or on the
// storage.
//
// The host that dies is a fresh process: this binary run again with
// --internal-crash-worker (RunCrashWorker), so it shares nothing with the
// case's own instance.
#include <fcntl.h>
#include <linux/fs.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "conformance/runner.hpp"
#include "conformance/suite.hpp"
#include "core/volume_resolver.hpp"

namespace snapset::conformance {

namespace {

constexpr int kKills = 5;

// The worker needs no fixture: it only drives the provider.
class NoFixture : public Fixture {
 public:
  std::string Describe() const override { return "none"; }
  Result<FixtureSetup> Start(int) override { return FixtureSetup{}; }
  const std::vector<std::string>& volumes() const override { return names_; }
  Status WriteRecord(int, const std::string&) override { return Status::NotImplemented("-"); }
  Result<std::string> ReadRecord(int) override { return Status::NotImplemented("-"); }
  Result<std::string> ReadExposedRecord(int, const std::string&) override {
    return Status::NotImplemented("-");
  }
  Status TryWriteExposed(int, const std::string&) override { return Status::NotImplemented("-"); }
  void Stop() override {}

 private:
  std::vector<std::string> names_;
};

// What the thaw guard does for a dead coordinator: thaw what it froze.
void Thaw(const Volume& v) {
  if (v.mount_point.empty()) return;
  int fd = ::open(v.mount_point.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  (void)::ioctl(fd, FITHAW, 0);
  ::close(fd);
}

std::string SelfPath() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, size_t(n)) : std::string("/proc/self/exe");
}

pid_t StartWorker(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    int null = ::open("/dev/null", O_WRONLY);
    if (null >= 0) ::dup2(null, STDOUT_FILENO), ::dup2(null, STDERR_FILENO);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

void KillAtRandomMoments(CaseContext& ctx) {
  // How long one set takes here, so the kills spread over its whole life.
  const auto t0 = Clock::now();
  SetRun timing = ctx.CreateSet({0, 1});
  const double set_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  ctx.DeleteSet(timing);

  char config_path[] = "/tmp/snapset-conformance-config.XXXXXX";
  const int fd = ::mkstemp(config_path);
  if (fd < 0) Fail(std::string("cannot make a temporary file: ") + std::strerror(errno));
  const std::string& config = ctx.setup().provider_config;
  const bool written = ::write(fd, config.data(), config.size()) == ssize_t(config.size());
  ::close(fd);
  struct Unlink {
    const char* path;
    ~Unlink() { ::unlink(path); }
  } unlink_config{config_path};
  if (!written) Fail("cannot write the provider's config to a temporary file");

  std::string notes;
  for (int k = 0; k < kKills; ++k) {
    // Process start-up and on_load come first; spread over them and the set.
    const int delay_ms = 20 + int(ctx.rng()() % uint64_t(set_ms * 1.5 + 200));
    // The host records the set's ids before it prepares (snapset's catalog
    // does), so its recovery knows them.
    const std::string set_id = CaseContext::NewUuid();
    const std::vector<std::string> ids = {CaseContext::NewUuid(), CaseContext::NewUuid()};
    const pid_t pid = StartWorker({SelfPath(), "--internal-crash-worker",
                                   ctx.setup().provider_library, config_path, set_id, ids[0],
                                   ids[1], ctx.resolved(0).name, ctx.resolved(1).name});
    if (pid < 0) Fail(std::string("cannot fork: ") + std::strerror(errno));
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    ::kill(pid, SIGKILL);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
      Fail("the crash worker failed before it was killed (exit " +
           std::to_string(WEXITSTATUS(status)) + "): it could not drive a set");
    Thaw(ctx.resolved(0));
    Thaw(ctx.resolved(1));
    // The next host, as snapset's recovery does: a new instance aborts the
    // set, then deletes each of its snapshots by id (NOT_FOUND: never made,
    // or undone by the abort).
    ctx.Reload();
    Answer abort = ctx.host().SetEvent(Event::kAbort, set_id);
    if (!abort.ok() && abort.code != SNAPSET_E_BAD_STATE)
      Fail("after a kill at " + std::to_string(delay_ms) +
           " ms, a new instance's abort_snapshots failed: " + abort.Describe());
    for (const std::string& id : ids) {
      Answer d = ctx.host().Delete(id);
      if (!d.ok() && d.code != SNAPSET_E_NOT_FOUND)
        Fail("after a kill at " + std::to_string(delay_ms) + " ms, deleting snapshot " + id +
             " failed: " + d.Describe());
    }
    if (auto left = ctx.NewResidue(); !left.empty())
      Fail("after a kill at " + std::to_string(delay_ms) +
           " ms and the recovery, left behind: " + left[0] +
           (left.size() > 1 ? " (and " + std::to_string(left.size() - 1) + " more)" : ""));
    notes += (notes.empty() ? "" : ", ") + std::to_string(delay_ms);
  }
  throw CaseEnd{Verdict::kPass, std::to_string(kKills) + " kills (at " + notes +
                                    " ms of a set taking about " + std::to_string(int(set_ms)) +
                                    " ms), each recovered with nothing left"};
}

const CaseRegistrar registrar({
    {"crash.kill-host",
     "a host killed at any moment of a set leaves nothing once a new instance recovers", "", 240,
     KillAtRandomMoments},
});

}  // namespace

int RunCrashWorker(int argc, char** argv) {
  // --internal-crash-worker LIBRARY CONFIG_FILE SET_ID SNAPSHOT_ID SNAPSHOT_ID VOLUME VOLUME
  if (argc != 9) return 2;
  std::ifstream in(argv[3]);
  std::stringstream config;
  config << in.rdbuf();
  FixtureSetup setup{argv[2], config.str(), "worker"};
  std::vector<Volume> volumes;
  for (int i = 7; i < 9; ++i) {
    auto v = ResolveVolume(argv[i]);
    if (!v.ok()) return 3;
    volumes.push_back(std::move(*v));
  }
  NoFixture fixture;
  SuiteOptions options;
  try {
    CaseContext ctx(fixture, setup, volumes, options, 1);
    ctx.Open();
    SetRun set;
    set.set_id = argv[4];
    set.volumes = {0, 1};
    for (int i = 0; i < 2; ++i) {
      Answer a = ctx.host().BeginPrepare(set.set_id, argv[5 + i], ctx.volume(i));
      if (!a.ok()) Fail("begin_prepare_snapshot failed: " + a.Describe());
      set.snapshot_ids.push_back(argv[5 + i]);
    }
    set.state = SNAPSET_STATE_PREPARING;
    ctx.DriveTo(set, SNAPSET_STATE_COMPLETE);
  } catch (const CaseEnd& e) {
    std::cerr << e.reason << "\n";
    return 4;
  }
  // Complete: wait to be killed, as a coordinator would still be running.
  for (;;) ::pause();
}

}  // namespace snapset::conformance
