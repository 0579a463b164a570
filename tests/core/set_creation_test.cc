// Snapshot sets as a backup application relies on them: the event order,
// all or none under every failure, "set in progress", bad input refused with
// nothing created, and the commit window on a real ext4 filesystem.
#define BOOST_TEST_MODULE set_creation
#include <boost/test/unit_test.hpp>

#include <snapset/provider.h>
#include <snapset/requestor.hpp>

#include <fcntl.h>
#include <linux/fs.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "core/set_creation.hpp"
#include "tests/support/command.hpp"
#include "tests/support/loop_filesystem.hpp"
#include "tests/support/prerequisites.hpp"
#include "tests/support/temp_dir.hpp"

using namespace snapset;
using snapset::test::LoopFilesystem;
using snapset::test::TempDir;

namespace {

const std::string kPlugins = SNAPSET_TEST_PLUGIN_DIR;
const std::vector<std::string> kEvents = {
    "begin_prepare_snapshot",     "end_prepare_snapshots",      "pre_commit_snapshots",
    "commit_snapshots",           "post_commit_snapshots",      "pre_final_commit_snapshots",
    "post_final_commit_snapshots"};

// A config and state directory with scripted providers registered.
struct World {
  TempDir dir;
  std::string config() const { return dir.str() + "/config"; }
  std::string state() const { return dir.str() + "/state"; }

  World() { std::filesystem::create_directories(config() + "/providers.d"); ::chmod(config().c_str(), 0755); }

  void AddProvider(const std::string& name, const std::string& type, const std::string& config_json,
                   int priority = 0, const std::string& library = "libscripted_provider.so") {
    dir.Write("config/providers.d/" + name + ".json",
              "{\"id\": \"" + NewUuid() + "\", \"name\": \"" + name + "\", \"type\": \"" + type +
                  "\", \"library\": \"" + kPlugins + "/" + library + "\", \"priority\": " +
                  std::to_string(priority) + ", \"config\": " + config_json + "}");
  }
  // A scripted provider that also holds writes (a write gate per volume).
  void AddGateProvider(const std::string& name, const std::string& config_json) {
    AddProvider(name, "software", config_json, 0, "libscripted_gate_provider.so");
  }

  std::unique_ptr<Requestor> Open() const {
    RequestorOptions o;
    o.config_dir = config();
    o.state_dir = state();
    o.log_level = SNAPSET_LOG_ERROR;
    if (const char* g = std::getenv("SNAPSET_THAW_GUARD")) o.thaw_guard = g;
    auto r = Requestor::Open(o);
    BOOST_TEST_REQUIRE(r.ok(), r.status().ToString());
    return std::move(*r);
  }
};

// Spans of one lane: step -> [begin, end].
struct Span {
  int64_t begin = -1, end = -1;
};
std::map<std::string, std::map<std::string, Span>> Spans(const TimelineData& t) {
  std::map<std::string, std::map<std::string, Span>> out;
  for (const auto& e : t.events) {
    if (e.kind == TimelineKind::kBegin) out[e.lane][e.step].begin = e.t_ns;
    if (e.kind == TimelineKind::kEnd) out[e.lane][e.step].end = e.t_ns;
  }
  return out;
}

bool SawEvent(const TimelineData& t, const std::string& lane, const std::string& step) {
  for (const auto& e : t.events)
    if (e.lane == lane && e.step == step && e.kind == TimelineKind::kBegin) return true;
  return false;
}

std::vector<std::string> CowVolumes(int n) {
  // Three prefixes, one per provider: cow:h-*, cow:s-*, cow:y-*.
  static const char* kPrefix[] = {"cow:h-", "cow:s-", "cow:y-"};
  std::vector<std::string> v;
  for (int i = 0; i < n; ++i) v.push_back(kPrefix[i % 3] + std::to_string(i));
  return v;
}

void AddThreeProviders(World& w, const std::string& extra = "") {
  w.AddProvider("hw", "hardware", R"({"supports": ["name-prefix:cow:h-"])" + extra + "}");
  w.AddProvider("sw", "software", R"({"supports": ["name-prefix:cow:s-"])" + extra + "}");
  w.AddProvider("sys", "system", R"({"supports": ["name-prefix:cow:y-"])" + extra + "}");
}

// Nothing on any provider that the catalog does not know, and the reverse.
void ExpectConsistent(Requestor& r) {
  auto findings = r.Verify();
  BOOST_TEST_REQUIRE(findings.ok(), findings.status().ToString());
  for (const auto& f : *findings) BOOST_TEST_MESSAGE("difference: " << f.snapshot_id << " " << f.problem);
  BOOST_TEST(findings->empty());
}

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// A child process that appends and fsyncs a file in a loop and reports each
// completed write as 8 bytes of CLOCK_MONOTONIC time on a pipe.
class Writer {
 public:
  explicit Writer(const std::string& file) {
    int fds[2];
    BOOST_TEST_REQUIRE(::pipe(fds) == 0);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::close(fds[0]);
      int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      char block[4096] = {};
      for (;;) {
        if (::write(fd, block, sizeof block) < 0 || ::fsync(fd) != 0) ::_exit(1);
        int64_t t = NowNs();
        if (::write(fds[1], &t, sizeof t) != sizeof t) ::_exit(0);
        ::usleep(5000);
      }
    }
    ::close(fds[1]);
    read_fd_ = fds[0];
    ::fcntl(read_fd_, F_SETFL, O_NONBLOCK);
    reader_ = std::thread([this] {
      while (!stop_) {
        int64_t t;
        ssize_t n = ::read(read_fd_, &t, sizeof t);
        if (n == sizeof t) {
          std::lock_guard<std::mutex> lock(mu_);
          progress_.push_back(t);
        } else {
          ::usleep(1000);
        }
      }
    });
  }
  // The caller must have thawed the filesystem: a writer blocked on a frozen
  // filesystem cannot be killed.
  ~Writer() {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    stop_ = true;
    reader_.join();
    ::close(read_fd_);
  }
  std::vector<int64_t> progress() {
    std::lock_guard<std::mutex> lock(mu_);
    return progress_;
  }

 private:
  pid_t pid_;
  int read_fd_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<int64_t> progress_;
  std::thread reader_;
};

}  // namespace

// ------------------------------------------------------------- event order

BOOST_AUTO_TEST_CASE(event_order_for_1_8_and_64_volumes_across_3_providers) {
  for (int n : {1, 8, 64}) {
    BOOST_TEST_CONTEXT(n << " volumes") {
      World w;
      AddThreeProviders(w);
      auto r = w.Open();
      SetRequest req;
      req.volumes = CowVolumes(n);
      std::vector<PlannedVolume> seen_plan;
      SetResult res = r->CreateSet(req, [&](const auto& plan) { seen_plan = plan; });
      BOOST_TEST_REQUIRE(res.status.ok(), res.status.ToString());
      BOOST_TEST(res.snapshots.size() == size_t(n));
      BOOST_TEST(seen_plan.size() == size_t(n));
      for (const auto& p : seen_plan) {
        const std::string want = p.volume.rfind("cow:h-", 0) == 0   ? "hw"
                                 : p.volume.rfind("cow:s-", 0) == 0 ? "sw"
                                                                    : "sys";
        BOOST_TEST(p.provider == want);
        BOOST_TEST(p.crash_consistent);  // cow volumes have no hold until the cow provider
      }
      auto spans = Spans(res.timeline);
      std::vector<std::string> lanes;
      for (const char* p : {"hw", "sw", "sys"})
        if (spans.count(std::string("provider:") + p)) lanes.push_back(std::string("provider:") + p);
      BOOST_TEST(lanes.size() == size_t(std::min(n, 3)));
      // Within each provider: every event, in order, each ended before the next.
      for (const auto& lane : lanes) {
        int64_t last_end = 0;
        for (const auto& ev : kEvents) {
          const Span& s = spans[lane][ev];
          BOOST_TEST_REQUIRE(s.begin >= 0, lane << " never got " << ev);
          BOOST_TEST(s.begin >= last_end, lane << ": " << ev << " began before the previous event ended");
          BOOST_TEST(s.end >= s.begin);
          last_end = s.end;
        }
      }
      // Across providers: a phase starts only after every provider ended the
      // previous one.
      for (size_t k = 1; k < kEvents.size(); ++k) {
        int64_t prev_end = 0, next_begin = INT64_MAX;
        for (const auto& lane : lanes) {
          prev_end = std::max(prev_end, spans[lane][kEvents[k - 1]].end);
          next_begin = std::min(next_begin, spans[lane][kEvents[k]].begin);
        }
        BOOST_TEST(prev_end <= next_begin, kEvents[k] << " started before every provider finished "
                                                      << kEvents[k - 1]);
      }
      auto sets = r->ListSets();
      BOOST_TEST_REQUIRE(sets.ok());
      BOOST_TEST_REQUIRE(sets->size() == 1u);
      BOOST_TEST(sets->front().state == "complete");
      BOOST_TEST(sets->front().snapshots.size() == size_t(n));
      ExpectConsistent(*r);
    }
  }
}

BOOST_AUTO_TEST_CASE(provider_calls_of_one_phase_run_in_parallel) {
  World w;
  AddThreeProviders(w, R"(, "delay_ms": {"commit_snapshots": 300, "pre_commit_snapshots": 300})");
  auto r = w.Open();
  SetRequest req;
  req.volumes = CowVolumes(3);
  SetResult res = r->CreateSet(req);
  BOOST_TEST_REQUIRE(res.status.ok(), res.status.ToString());
  auto spans = Spans(res.timeline);
  for (const char* ev : {"commit_snapshots", "pre_commit_snapshots"}) {
    int64_t last_begin = 0, first_end = INT64_MAX;
    for (const char* p : {"provider:hw", "provider:sw", "provider:sys"}) {
      last_begin = std::max(last_begin, spans[p][ev].begin);
      first_end = std::min(first_end, spans[p][ev].end);
    }
    // Each call sleeps 300 ms: run one after another, the last would begin
    // after the first ended.
    BOOST_TEST(last_begin < first_end, ev << " calls did not overlap");
  }
}

// ------------------------------------------------------------ all or none

BOOST_AUTO_TEST_CASE(failure_matrix_leaves_nothing_behind) {
  // One real ext4 volume joins the set, so "no volume left held" is tested
  // on a real hold.
  std::unique_ptr<LoopFilesystem> fs;
  if (test::LoopFilesystemsAvailable()) {
    auto made = LoopFilesystem::Create(32ull << 20);
    BOOST_TEST_REQUIRE(made.ok(), made.status().ToString());
    fs = std::move(*made);
  }
  struct Mode {
    std::string name;
    std::string config;  // fragment for the failing provider
    Code expected_on_commit;
  };
  for (const auto& event : kEvents) {
    const std::vector<Mode> modes = {
        {"error", R"("fail": {")" + event + R"(": "provider-veto"})", Code::kProviderVeto},
        {"exception", R"("throw": [")" + event + R"("])", Code::kInternal},
        {"hang", R"("delay_ms": {")" + event + R"(": 2500})", Code::kHoldWritesTimeout},
    };
    for (const auto& mode : modes) {
      BOOST_TEST_CONTEXT(event << " x " << mode.name) {
        World w;
        w.AddProvider("hw", "hardware", R"({"supports": ["name-prefix:cow:h-", "kind:filesystem"]})");
        w.AddProvider("sw", "software", R"({"supports": ["name-prefix:cow:s-"], )" + mode.config + "}");
        w.AddProvider("sys", "system", R"({"supports": ["name-prefix:cow:y-"]})");
        auto r = w.Open();
        SetRequest req;
        req.volumes = CowVolumes(6);
        if (fs) req.volumes.push_back(fs->mount_point());
        req.window = std::chrono::milliseconds(400);
        req.provider_timeout = std::chrono::milliseconds(400);
        req.replan_on_prepare_failure = false;
        SetResult res = r->CreateSet(req);
        BOOST_TEST(!res.status.ok());
        BOOST_TEST(res.snapshots.empty());
        if (event == "commit_snapshots") BOOST_TEST((res.status.code() == mode.expected_on_commit), res.status.ToString());
        if (mode.name == "error") BOOST_TEST(res.status.message().find("scripted failure in " + event) != std::string::npos, res.status.message());
        // Abort went to every provider that saw the set: all three saw it,
        // since begin_prepare is the first event.
        std::set<std::string> aborted;
        for (const auto& a : res.aborts) aborted.insert(a.provider);
        BOOST_TEST((aborted == std::set<std::string>{"hw", "sw", "sys"}));
        for (const char* p : {"provider:hw", "provider:sw", "provider:sys"})
          BOOST_TEST(SawEvent(res.timeline, p, "abort_snapshots"), p << " got no abort");
        // Nothing in the catalog but the failed set's record.
        auto sets = r->ListSets(false);
        BOOST_TEST_REQUIRE(sets.ok());
        BOOST_TEST(sets->empty());
        auto all = r->ListSets(true);
        BOOST_TEST_REQUIRE(all.ok());
        BOOST_TEST_REQUIRE(all->size() == 1u);
        BOOST_TEST(all->front().state == "aborted");
        BOOST_TEST(all->front().snapshots.empty());
        BOOST_TEST(!all->front().error.empty());
        ExpectConsistent(*r);
        if (fs) BOOST_TEST(!test::IsFrozen(fs->mount_point()), "the filesystem was left frozen");
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(a_provider_failing_to_prepare_hands_its_volumes_to_the_next) {
  World w;
  w.AddProvider("hw", "hardware", R"({"supports": ["*"], "fail": {"begin_prepare_snapshot": "unavailable"}})");
  w.AddProvider("sw", "software", R"({"supports": ["*"]})");
  auto r = w.Open();
  SetRequest req;
  req.volumes = {"cow:a", "cow:b"};
  SetResult res = r->CreateSet(req);
  BOOST_TEST_REQUIRE(res.status.ok(), res.status.ToString());
  for (const auto& s : res.snapshots) BOOST_TEST(s.provider == "sw");
  BOOST_TEST(SawEvent(res.timeline, "provider:hw", "abort_snapshots"));
  BOOST_TEST_REQUIRE(res.plan.size() == 2u);
  BOOST_TEST(res.plan[0].provider == "sw");
  ExpectConsistent(*r);
}

BOOST_AUTO_TEST_CASE(a_hung_provider_is_unhealthy_for_the_rest_of_the_process) {
  World w;
  w.AddProvider("hw", "hardware", R"({"supports": ["*"], "delay_ms": {"commit_snapshots": 1500}})");
  w.AddProvider("sw", "software", R"({"supports": ["*"]})");
  auto r = w.Open();
  SetRequest req;
  req.volumes = {"cow:a"};
  req.window = std::chrono::milliseconds(200);
  SetResult first = r->CreateSet(req);
  BOOST_TEST(first.status.Is(Code::kHoldWritesTimeout), first.status.ToString());
  SetResult second = r->CreateSet(req);
  BOOST_TEST_REQUIRE(second.status.ok(), second.status.ToString());
  BOOST_TEST(second.snapshots.front().provider == "sw");
}

// -------------------------------------------------------- set in progress

BOOST_AUTO_TEST_CASE(overlapping_sets_get_set_in_progress_disjoint_sets_run_together) {
  World w;
  w.AddProvider("slow", "software", R"({"supports": ["*"], "delay_ms": {"end_prepare_snapshots": 1500}})");
  auto r1 = w.Open();
  auto r2 = w.Open();  // another requestor on the same state: as another process would
  SetRequest first;
  first.volumes = {"cow:x", "cow:y"};
  SetResult first_result;
  std::thread t([&] { first_result = r1->CreateSet(first); });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));

  SetRequest overlapping;
  overlapping.volumes = {"cow:z", "cow:y"};
  SetResult busy = r2->CreateSet(overlapping);
  BOOST_TEST(busy.status.IsBadState(), busy.status.ToString());
  BOOST_TEST(busy.status.message().find("set in progress: cow:y") != std::string::npos,
             busy.status.message());

  SetRequest disjoint;
  disjoint.volumes = {"cow:z"};
  SetResult other = r2->CreateSet(disjoint);
  t.join();
  BOOST_TEST(first_result.status.ok(), first_result.status.ToString());
  BOOST_TEST(other.status.ok(), other.status.ToString());
  auto sets = r2->ListSets(true);
  BOOST_TEST_REQUIRE(sets.ok());
  BOOST_TEST(sets->size() == 2u);  // the refused set left no record
}

BOOST_AUTO_TEST_CASE(creating_a_set_is_idempotent_on_its_id) {
  World w;
  w.AddProvider("p", "software", R"({"supports": ["*"]})");
  auto r = w.Open();
  SetRequest req;
  req.volumes = {"cow:a", "cow:b"};
  req.set_id = NewUuid();
  SetResult one = r->CreateSet(req);
  BOOST_TEST_REQUIRE(one.status.ok(), one.status.ToString());
  SetResult two = r->CreateSet(req);
  BOOST_TEST_REQUIRE(two.status.ok(), two.status.ToString());
  BOOST_TEST(two.set_id == one.set_id);
  BOOST_TEST_REQUIRE(two.snapshots.size() == 2u);
  std::set<std::string> a, b;
  for (const auto& s : one.snapshots) a.insert(s.snapshot_id);
  for (const auto& s : two.snapshots) b.insert(s.snapshot_id);
  BOOST_TEST((a == b));
  ExpectConsistent(*r);  // no second copy on the provider
}

// -------------------------------------------------------------- bad input

BOOST_AUTO_TEST_CASE(bad_input_is_refused_clearly_and_creates_nothing) {
  struct Case {
    std::string what;
    std::function<void(SetRequest&, World&)> setup;
    Code code;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"unknown volume", [](SetRequest& r, World&) { r.volumes = {"cow:a", "/no/such/volume"}; },
       Code::kNotFound, "no such file, device or mount point: /no/such/volume"},
      {"duplicate volume", [](SetRequest& r, World&) { r.volumes = {"cow:a", "cow:a"}; },
       Code::kInvalidArgument, "volume cow:a is named twice in the set"},
      {"more than the limit",
       [](SetRequest& r, World&) {
         r.volumes = CowVolumes(5);
         r.max_volumes = 4;
       },
       Code::kMaxVolumes, "the set has 5 volumes; the limit is 4"},
      {"more than the default limit of 64",
       [](SetRequest& r, World&) { r.volumes = CowVolumes(65); }, Code::kMaxVolumes,
       "the limit is 64"},
      {"window above 10 s",
       [](SetRequest& r, World&) {
         r.volumes = {"cow:a"};
         r.window = std::chrono::milliseconds(10001);
       },
       Code::kInvalidArgument, "it must be from 1 to 10000 ms"},
      {"hook writer that is not executable",
       [](SetRequest& r, World& w) {
         r.volumes = {"cow:a"};
         w.dir.Write("config/writers.d/10-db", "#!/bin/sh\nexit 0\n");  // 0644
       },
       Code::kInvalidArgument, "10-db"},
      {"bad set id",
       [](SetRequest& r, World&) {
         r.volumes = {"cow:a"};
         r.set_id = "yesterday";
       },
       Code::kInvalidArgument, "is not a UUID"},
      {"unknown pinned provider",
       [](SetRequest& r, World&) {
         r.volumes = {"cow:a"};
         r.pins["cow:a"] = "acme";
       },
       Code::kInvalidArgument, "unknown provider \"acme\""},
  };
  for (const auto& c : cases) {
    BOOST_TEST_CONTEXT(c.what) {
      World w;
      w.AddProvider("p", "software", R"({"supports": ["*"]})");
      SetRequest req;
      c.setup(req, w);
      auto r = w.Open();
      SetResult res = r->CreateSet(req);
      BOOST_TEST((res.status.code() == c.code), res.status.ToString());
      BOOST_TEST(res.status.message().find(c.message) != std::string::npos, res.status.message());
      auto sets = r->ListSets(true);
      BOOST_TEST_REQUIRE(sets.ok());
      BOOST_TEST(sets->empty());
      BOOST_TEST(res.aborts.empty());  // no provider ever saw the set
      ExpectConsistent(*r);
    }
  }
}

// ------------------------------------------- the commit window, for real

BOOST_AUTO_TEST_CASE(two_ext4_filesystems_are_held_only_around_commit) {
  if (!test::LoopFilesystemsAvailable()) return;
  auto a = LoopFilesystem::Create(64ull << 20);
  auto b = LoopFilesystem::Create(64ull << 20);
  BOOST_TEST_REQUIRE(a.ok(), a.status().ToString());
  BOOST_TEST_REQUIRE(b.ok(), b.status().ToString());
  World w;
  w.AddProvider("fs", "software", R"({"supports": ["kind:filesystem"]})");
  auto r = w.Open();
  SetRequest req;
  req.volumes = {(*a)->mount_point(), (*b)->mount_point()};
  SetResult res = r->CreateSet(req);
  BOOST_TEST_REQUIRE(res.status.ok(), res.status.ToString());
  for (const auto& p : res.plan) {
    BOOST_TEST(p.hold == "fsfreeze");
    BOOST_TEST(!p.crash_consistent);
  }
  BOOST_TEST(!test::IsFrozen((*a)->mount_point()));
  BOOST_TEST(!test::IsFrozen((*b)->mount_point()));
  BOOST_TEST(res.hold_ns > 0);
  BOOST_TEST(res.hold_ns < 10'000'000'000);
  // Holds wrap the commit: every pre-commit ended before the first hold,
  // every hold began before commit, and release came after the last commit
  // returned and before post-commit.
  auto spans = Spans(res.timeline);
  const Span& pre = spans["provider:fs"]["pre_commit_snapshots"];
  const Span& commit = spans["provider:fs"]["commit_snapshots"];
  const Span& post = spans["provider:fs"]["post_commit_snapshots"];
  for (const auto& v : req.volumes) {
    const Span& hold = spans["volume:" + v]["hold"];
    BOOST_TEST(pre.end <= hold.begin);
    BOOST_TEST(hold.begin <= commit.begin);
    BOOST_TEST(commit.end <= hold.end);
    BOOST_TEST(hold.end <= post.begin);
  }
}

BOOST_AUTO_TEST_CASE(a_writer_is_blocked_during_the_hold_and_resumes_by_the_deadline) {
  if (!test::LoopFilesystemsAvailable()) return;
  auto fs = LoopFilesystem::Create(64ull << 20);
  BOOST_TEST_REQUIRE(fs.ok(), fs.status().ToString());
  const std::string mnt = (*fs)->mount_point();
  World w;
  // The provider hangs in commit far past the 1 s window.
  w.AddProvider("fs", "software",
                R"({"supports": ["kind:filesystem"], "delay_ms": {"commit_snapshots": 4000}})");
  auto r = w.Open();
  Writer writer(mnt + "/busy.dat");
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  SetRequest req;
  req.volumes = {mnt};
  req.window = std::chrono::milliseconds(1000);
  SetResult res = r->CreateSet(req);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  snapset::test::RunCommand({"fsfreeze", "--unfreeze", mnt});  // never leave it frozen
  BOOST_TEST(res.status.Is(Code::kHoldWritesTimeout), res.status.ToString());

  auto spans = Spans(res.timeline);
  const Span& hold = spans["volume:" + mnt]["hold"];
  BOOST_TEST_REQUIRE(hold.begin > 0);
  int64_t window_start = 0;
  for (const auto& e : res.timeline.events)
    if (e.step == "commit window") window_start = e.t_ns;
  const int64_t deadline = window_start + 1'000'000'000;
  auto progress = writer.progress();
  // Blocked: no write completed between the freeze taking hold and the
  // release. The freeze has taken hold once commit begins; before that, a
  // write already in flight may still finish while FIFREEZE syncs (longer
  // than any fixed grace on a loaded machine).
  const Span& commit = spans["provider:fs"]["commit_snapshots"];
  BOOST_TEST_REQUIRE(commit.begin >= hold.begin);
  int64_t resumed = 0;
  for (int64_t t : progress) {
    BOOST_TEST(!(t > commit.begin && t < hold.end), "a write completed while held");
    if (t > hold.begin && !resumed) resumed = t;
  }
  BOOST_TEST_REQUIRE(resumed > 0, "the writer never resumed");
  BOOST_TEST(resumed <= deadline + 500'000'000,
             "writer resumed " << (resumed - deadline) / 1e6 << " ms after the deadline");
  BOOST_TEST(!test::IsFrozen(mnt));
}

BOOST_AUTO_TEST_CASE(kill_9_of_the_coordinator_during_the_hold_is_thawed_by_the_guard) {
  if (!test::LoopFilesystemsAvailable()) return;
  auto fs = LoopFilesystem::Create(64ull << 20);
  BOOST_TEST_REQUIRE(fs.ok(), fs.status().ToString());
  const std::string mnt = (*fs)->mount_point();
  World w;
  w.AddProvider("fs", "software",
                R"({"supports": ["kind:filesystem"], "delay_ms": {"commit_snapshots": 8000}})");
  Writer writer(mnt + "/busy.dat");
  std::this_thread::sleep_for(std::chrono::milliseconds(200));

  // The real CLI, as a user runs it, with a 3 s window.
  pid_t cli = ::fork();
  if (cli == 0) {
    int devnull = ::open("/dev/null", O_WRONLY);
    ::dup2(devnull, 1);
    ::dup2(devnull, 2);
    ::execl(SNAPSET_CLI, SNAPSET_CLI, "--config-dir", w.config().c_str(), "--state-dir",
            w.state().c_str(), "create", mnt.c_str(), "--window-ms", "3000", (char*)nullptr);
    ::_exit(127);
  }
  // Wait for the hold: the writer stops making progress.
  int64_t stalled = 0;
  const int64_t give_up = NowNs() + 5'000'000'000;
  while (!stalled && NowNs() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    auto p = writer.progress();
    if (!p.empty() && NowNs() - p.back() > 300'000'000) stalled = p.back();
  }
  BOOST_TEST_REQUIRE(stalled > 0, "the filesystem was never held");
  const int64_t killed = NowNs();
  ::kill(cli, SIGKILL);
  ::waitpid(cli, nullptr, 0);
  // The guard thaws at once on the coordinator's death.
  int64_t resumed = 0;
  while (!resumed && NowNs() < killed + 4'000'000'000) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    for (int64_t t : writer.progress())
      if (t > killed) resumed = t;
  }
  snapset::test::RunCommand({"fsfreeze", "--unfreeze", mnt});  // never leave it frozen
  BOOST_TEST_REQUIRE(resumed > 0, "the filesystem stayed frozen after kill -9");
  BOOST_TEST(resumed - killed < 1'000'000'000, "thawed " << (resumed - killed) / 1e6 << " ms after the kill");
  BOOST_TEST(resumed < stalled + 3'000'000'000 + 500'000'000, "thawed after the deadline");

  // The next start recovers the set the killed coordinator left behind.
  auto r = w.Open();
  auto sets = r->ListSets(true);
  BOOST_TEST_REQUIRE(sets.ok());
  BOOST_TEST_REQUIRE(sets->size() == 1u);
  BOOST_TEST(sets->front().state == "aborted");
  BOOST_TEST(sets->front().error.find("coordinator stopped") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(maximum_snapshots_reached_creates_nothing_and_is_not_replanned) {
  World w;
  w.AddProvider("hw", "hardware", R"({"supports": ["*"], "fail": {"begin_prepare_snapshot": "max-snapshots"}})");
  w.AddProvider("sw", "software", R"({"supports": ["*"]})");
  auto r = w.Open();
  SetRequest req;
  req.volumes = {"cow:a", "cow:b"};
  SetResult res = r->CreateSet(req);
  BOOST_TEST(res.status.Is(Code::kMaxSnapshots), res.status.ToString());
  BOOST_TEST(res.snapshots.empty());
  BOOST_TEST(!SawEvent(res.timeline, "provider:sw", "begin_prepare_snapshot"));
  auto sets = r->ListSets(false);
  BOOST_TEST_REQUIRE(sets.ok());
  BOOST_TEST(sets->empty());
  ExpectConsistent(*r);
}

BOOST_AUTO_TEST_CASE(auto_release_sets_live_as_long_as_their_requestor) {
  World w;
  w.AddProvider("p", "software", R"({"supports": ["*"]})");
  std::string kept, released;
  {
    auto r = w.Open();
    SetRequest req;
    req.volumes = {"cow:a"};
    req.auto_release = true;
    SetResult a = r->CreateSet(req);
    BOOST_TEST_REQUIRE(a.status.ok(), a.status.ToString());
    released = a.set_id;
    req.volumes = {"cow:b"};
    req.auto_release = false;
    SetResult b = r->CreateSet(req);
    BOOST_TEST_REQUIRE(b.status.ok(), b.status.ToString());
    kept = b.set_id;
    BOOST_TEST(r->GetSet(released).ok());
  }
  auto r = w.Open();
  BOOST_TEST(r->GetSet(released).status().IsNotFound());
  BOOST_TEST(r->GetSet(kept).ok());
}

// --------------------------------------------------- providers' write holds

BOOST_AUTO_TEST_CASE(a_provider_that_holds_writes_holds_them_below_the_frozen_filesystems) {
  std::unique_ptr<LoopFilesystem> fs;
  if (test::LoopFilesystemsAvailable()) {
    auto made = LoopFilesystem::Create(32ull << 20);
    BOOST_TEST_REQUIRE(made.ok(), made.status().ToString());
    fs = std::move(*made);
  }
  World w;
  w.AddGateProvider("gate", R"({"supports": ["kind:cow"]})");
  w.AddProvider("fs", "system", R"({"supports": ["kind:filesystem"]})");
  auto r = w.Open();
  SetRequest req;
  req.volumes = {"cow:db"};
  if (fs) req.volumes.push_back(fs->mount_point());
  SetResult res = r->CreateSet(req);
  BOOST_TEST_REQUIRE(res.status.ok(), res.status.ToString());
  BOOST_TEST(res.plan[0].hold == "write-gate");
  BOOST_TEST(!res.plan[0].crash_consistent);
  BOOST_TEST(!res.snapshots[0].crash_consistent);
  auto spans = Spans(res.timeline);
  const Span& gate = spans["volume:cow:db"]["hold"];
  const Span& commit = spans["provider:gate"]["commit_snapshots"];
  BOOST_TEST_REQUIRE(gate.begin > 0);
  BOOST_TEST(gate.begin <= commit.begin);
  BOOST_TEST(commit.end <= gate.end);
  if (fs) {
    // Top-down hold, bottom-up release: the filesystem is frozen before
    // the gate closes, and thawed after it opens.
    const Span& freeze = spans["volume:" + fs->mount_point()]["hold"];
    BOOST_TEST(freeze.begin < gate.begin);
    BOOST_TEST(gate.end <= freeze.end);
    BOOST_TEST(!test::IsFrozen(fs->mount_point()));
  }
}

BOOST_AUTO_TEST_CASE(a_failing_or_hanging_write_hold_fails_the_set_and_releases_the_rest) {
  std::unique_ptr<LoopFilesystem> fs;
  if (test::LoopFilesystemsAvailable()) {
    auto made = LoopFilesystem::Create(32ull << 20);
    BOOST_TEST_REQUIRE(made.ok(), made.status().ToString());
    fs = std::move(*made);
  }
  for (const std::string fault : {R"("fail": {"hold_writes": "unavailable"})",
                                  R"("delay_ms": {"hold_writes": 2000})"}) {
    BOOST_TEST_CONTEXT(fault) {
      World w;
      w.AddGateProvider("gate", R"({"supports": ["kind:cow"], )" + fault + "}");
      w.AddProvider("fs", "system", R"({"supports": ["kind:filesystem"]})");
      auto r = w.Open();
      SetRequest req;
      req.volumes = {"cow:db"};
      if (fs) req.volumes.push_back(fs->mount_point());
      req.window = std::chrono::milliseconds(500);
      SetResult res = r->CreateSet(req);
      BOOST_TEST(!res.status.ok());
      BOOST_TEST(res.status.message().find("cow:db") != std::string::npos, res.status.message());
      BOOST_TEST(SawEvent(res.timeline, "provider:gate", "abort_snapshots"));
      if (fs) BOOST_TEST(!test::IsFrozen(fs->mount_point()));
      ExpectConsistent(*r);
    }
  }
}

BOOST_AUTO_TEST_CASE(verify_reports_every_difference_between_catalog_and_providers) {
  World w;
  const std::string store = w.dir.str() + "/provider-state";
  w.AddProvider("p", "software", R"({"supports": ["*"], "state_dir": ")" + store + R"("})");
  std::string lost;
  {
    auto r = w.Open();
    SetRequest req;
    req.volumes = {"cow:a", "cow:b"};
    SetResult res = r->CreateSet(req);
    BOOST_TEST_REQUIRE(res.status.ok(), res.status.ToString());
    ExpectConsistent(*r);
    lost = res.snapshots[0].snapshot_id;
  }
  // The provider loses one snapshot behind the catalog's back.
  {
    std::ifstream in(store + "/scripted-state.json");
    std::stringstream text;
    text << in.rdbuf();
    std::string state = text.str();
    size_t at = state.find(lost);
    BOOST_TEST_REQUIRE(at != std::string::npos);
    state.replace(at, lost.size(), std::string(lost.size(), '0'));
    std::ofstream(store + "/scripted-state.json") << state;
  }
  auto r = w.Open();
  auto findings = r->Verify();
  BOOST_TEST_REQUIRE(findings.ok(), findings.status().ToString());
  std::map<std::string, std::string> problems;
  for (const auto& f : *findings) problems[f.snapshot_id] = f.problem;
  BOOST_TEST(problems.size() == 2u);
  BOOST_TEST(problems[lost] == "in the catalog but not on the provider");
  BOOST_TEST(problems[std::string(lost.size(), '0')] == "on the provider but not in the catalog");
}

BOOST_AUTO_TEST_CASE(a_provider_hanging_in_is_volume_supported_is_passed_over) {
  World w;
  w.AddProvider("hw", "hardware", R"({"supports": ["*"], "delay_ms": {"is_volume_supported": 3000}})");
  w.AddProvider("sw", "software", R"({"supports": ["*"]})");
  auto r = w.Open();
  SetRequest req;
  req.volumes = {"cow:a"};
  req.provider_timeout = std::chrono::milliseconds(300);
  const auto start = std::chrono::steady_clock::now();
  SetResult res = r->CreateSet(req);
  BOOST_TEST_REQUIRE(res.status.ok(), res.status.ToString());
  BOOST_TEST(res.snapshots[0].provider == "sw");
  // It did not wait for the 3 s answer.
  const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now() - start)
                          .count();
  BOOST_TEST(waited < 2500);
}
