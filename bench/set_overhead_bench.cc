// set_overhead_bench: what the coordinator itself adds to the commit window
// (DESIGN §4) on real ext4 filesystems, for 1, 8 and 64 volumes spread over
// three providers whose events cost nothing.
//
// Two quantities per set size N:
//   hold       SetResult.hold_ns: first hold to last release
//   whole set  the wall clock of Requestor::CreateSet
// Each is compared with a baseline measured in the same run on the same N
// filesystems, with nothing else in the way: FIFREEZE on every filesystem,
// then FITHAW on each in reverse order. Writes stop when the first FIFREEZE
// begins (freeze_super blocks new writers before it syncs), so the bare hold
// runs from the first FIFREEZE call to the return of the last FITHAW.
//
// Two bare baselines:
//   parallel    one FIFREEZE per thread, all at once (threads started
//               beforehand), then FITHAW in reverse: the floor for a
//               coordinator that freezes in parallel, as HoldSet::HoldAll
//               does. The overhead is measured against this one.
//   sequential  FIFREEZE in order, then FITHAW in reverse: the naive floor,
//               for reference. FIFREEZE on an idle ext4 is not a flush of
//               dirty data: it waits for three RCU grace periods
//               (percpu_down_write in freeze_super, one per freeze level) and
//               a journal commit, so one after another it costs N times that.
// The arms are interleaved (bare, set, bare, set, ..., bare) and each set is
// paired with the mean of the two parallel bare runs around it, so drift on
// a noisy machine hits both sides of the difference alike. Before every
// freezing arm the benchmark sleeps --settle-ms: the RCU state that makes a
// FIFREEZE fast or slow depends on how recently the filesystem was frozen
// (and on threads that exited just before: measured, a cold FIFREEZE takes
// twice as long right after a few thread exits, and the same again 60 ms
// later), and each arm must start from the same (cold) state, as a real set
// does.
//
// The loop devices' backing files go on tmpfs (/dev/shm) by default: on a
// disk, each FIFREEZE and FITHAW also writes the superblock through the loop
// device and fsyncs the backing file on the host disk, tens of ms of noise
// that would bury the coordinator's few ms. --backing DIR puts them
// elsewhere. The coordinator's state (catalog, locks) stays on the system
// temp directory, as in real use.
//
// To say where the time goes it also reads the set's timeline (freeze,
// commit and release phases) and times thaw-guard round trips alone, on a
// guard of its own.
//
// Needs root, loop devices, mkfs.ext4 and fsfreeze; exits 2 when they are
// missing, 1 on any error, 130 when interrupted, 0 otherwise: a missed
// target is reported, not an error. Usage:
//   set_overhead_bench [--runs N] [--warmup N] [--volumes 1,8,64]
//                      [--settle-ms MS] [--backing DIR]
//                      [--plugin PATH] [--thaw-guard PATH] [--dump-timeline]
#include <snapset/provider.h>
#include <snapset/requestor.hpp>

#include <fcntl.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/run_command.hpp"
#include "core/set_creation.hpp"  // NewUuid
#include "core/thaw_guard.hpp"
#include "tests/support/freeze_probe.hpp"
#include "tests/support/loop_filesystem.hpp"
#include "tests/support/temp_dir.hpp"

namespace snapset::bench {
namespace {

using snapset::test::LoopFilesystem;
using snapset::test::TempDir;

constexpr uint64_t kFilesystemBytes = 16ull << 20;
constexpr double kTargetHoldOverheadMs = 5.0;  // p99 at 64 volumes (the target)

// A signal only asks to stop: the loop finishes the arm it is in and unwinds,
// so every destructor thaws, unmounts and detaches. Dying in the middle would
// leave 64 mounts and loop devices behind.
volatile sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

int64_t NowNs() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);  // the timeline's clock
  return int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

void Settle(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

// True when `dir` exists and is on tmpfs.
bool OnTmpfs(const std::string& dir) {
  struct statfs s {};
  return ::statfs(dir.c_str(), &s) == 0 && s.f_type == TMPFS_MAGIC;
}

struct Options {
  int runs = 60;
  int warmup = 3;
  int settle_ms = 100;
  std::vector<size_t> sizes = {1, 8, 64};
  std::string backing = OnTmpfs("/dev/shm") ? "/dev/shm" : "";  // "": the temp directory
  std::string plugin = SNAPSET_BENCH_PLUGIN;
  std::string thaw_guard = SNAPSET_BENCH_THAW_GUARD;
  bool dump_timeline = false;  // the last measured set of each size, to stderr
};

bool ParseSizes(const std::string& text, std::vector<size_t>* out) {
  out->clear();
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    char* end = nullptr;
    unsigned long n = std::strtoul(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || n == 0 || n > 64) return false;
    out->push_back(n);
  }
  return !out->empty();
}

// Returns false (after saying why) on bad arguments.
bool ParseArgs(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    const char* v = nullptr;
    if (a == "--runs" && (v = value())) {
      o->runs = std::atoi(v);
    } else if (a == "--warmup" && (v = value())) {
      o->warmup = std::max(0, std::atoi(v));
    } else if (a == "--settle-ms" && (v = value())) {
      o->settle_ms = std::max(0, std::atoi(v));
    } else if (a == "--volumes" && (v = value())) {
      if (!ParseSizes(v, &o->sizes)) {
        std::fprintf(stderr, "--volumes wants a list like 1,8,64 (each 1..64)\n");
        return false;
      }
    } else if (a == "--backing" && (v = value())) {
      o->backing = v;
    } else if (a == "--plugin" && (v = value())) {
      o->plugin = v;
    } else if (a == "--thaw-guard" && (v = value())) {
      o->thaw_guard = v;
    } else if (a == "--dump-timeline") {
      o->dump_timeline = true;
    } else {
      std::fprintf(stderr,
                   "usage: %s [--runs N (>= 50)] [--warmup N] [--volumes 1,8,64] "
                   "[--settle-ms MS] [--backing DIR] [--plugin PATH] [--thaw-guard PATH] "
                   "[--dump-timeline]\n",
                   argv[0]);
      return false;
    }
  }
  if (o->runs < 50) {
    std::fprintf(stderr, "--runs must be at least 50: fewer give no meaningful p99\n");
    return false;
  }
  if (const char* g = std::getenv("SNAPSET_THAW_GUARD"); g && *g) o->thaw_guard = g;
  return true;
}

// ------------------------------------------------------------------ stats

// Nearest-rank percentile: with 60 samples p99 is the largest, with 200 the
// second largest. No interpolation: every number printed was measured.
int64_t Percentile(std::vector<int64_t> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t rank = size_t(std::ceil(p * double(v.size())));
  return v[std::clamp<size_t>(rank, 1, v.size()) - 1];
}
int64_t P50(const std::vector<int64_t>& v) { return Percentile(v, 0.50); }
int64_t P99(const std::vector<int64_t>& v) { return Percentile(v, 0.99); }

std::string Ms(int64_t ns) {
  char b[32];
  std::snprintf(b, sizeof b, "%.3f", double(ns) / 1e6);
  return b;
}
std::string Us(int64_t ns) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f", double(ns) / 1e3);
  return b;
}

// ------------------------------------------------------- the bare baselines

// Mount-point descriptors, opened once as the coordinator opens its holds at
// plan time, so neither side pays for a path lookup inside the window.
class MountFds {
 public:
  MountFds() = default;
  ~MountFds() {
    for (int fd : fds_) ::close(fd);
  }
  MountFds(const MountFds&) = delete;
  MountFds& operator=(const MountFds&) = delete;

  Status Open(const std::string& mount_point) {
    int fd = ::open(mount_point.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return Status::Unavailable("open " + mount_point + ": " + std::strerror(errno));
    fds_.push_back(fd);
    return Status::Ok();
  }
  int operator[](size_t i) const { return fds_[i]; }

 private:
  std::vector<int> fds_;
};

// Thaws, in reverse, whatever it was told is frozen: on every way out of a
// bare run, including errors.
class BareHolds {
 public:
  BareHolds(const MountFds& fds, size_t n) : fds_(fds), frozen_(n) {
    for (auto& f : frozen_) f.store(false);
  }
  ~BareHolds() { (void)ThawAll(); }
  BareHolds(const BareHolds&) = delete;
  BareHolds& operator=(const BareHolds&) = delete;

  // Returns 0 or the errno of FIFREEZE.
  int Freeze(size_t i) {
    if (::ioctl(fds_[i], FIFREEZE, 0) != 0) return errno;
    frozen_[i].store(true);
    return 0;
  }
  // Returns 0 or the errno of the first failed FITHAW; tries them all.
  int ThawAll() {
    int first = 0;
    for (size_t i = frozen_.size(); i-- > 0;) {
      if (!frozen_[i].exchange(false)) continue;
      if (::ioctl(fds_[i], FITHAW, 0) != 0 && first == 0) first = errno;
    }
    return first;
  }

 private:
  const MountFds& fds_;
  std::vector<std::atomic<bool>> frozen_;
};

// Writes back what is dirty, as the coordinator's flush step does before its
// window, so that neither side's FIFREEZE pays for a flush the other skipped.
void SyncAll(const MountFds& fds, size_t n) {
  for (size_t i = 0; i < n; ++i) (void)::syncfs(fds[i]);
}

struct BareSample {
  int64_t hold_ns;    // first FIFREEZE call to last FITHAW return
  int64_t freeze_ns;  // until every FIFREEZE returned
  int64_t thaw_ns;    // all FITHAW, in reverse
};

Result<BareSample> Thaw(BareHolds& holds, int64_t t0, int64_t t1) {
  int err = holds.ThawAll();
  const int64_t t2 = NowNs();
  if (err) return Status::Unavailable(std::string("bare FITHAW failed: ") + std::strerror(err));
  return BareSample{t2 - t0, t1 - t0, t2 - t1};
}

Result<BareSample> SequentialFreezeThaw(const MountFds& fds, size_t n) {
  SyncAll(fds, n);
  BareHolds holds(fds, n);
  const int64_t t0 = NowNs();
  for (size_t i = 0; i < n; ++i)
    if (int err = holds.Freeze(i))
      return Status::Unavailable(std::string("bare FIFREEZE failed: ") + std::strerror(err));
  return Thaw(holds, t0, NowNs());
}

// One FIFREEZE per thread, the threads started and waiting before the clock
// starts: creating them is a cost of the coordinator, not of the kernel.
Result<BareSample> ParallelFreezeThaw(const MountFds& fds, size_t n) {
  SyncAll(fds, n);
  BareHolds holds(fds, n);
  std::mutex mu;
  std::condition_variable cv;
  bool go = false;
  bool abandon = true;  // until every thread has started: then they wake only to leave
  size_t done = 0;
  std::vector<int> errors(n, 0);
  // Joins on every way out, also when starting a thread throws: a joinable
  // std::thread would terminate the process past the cleanup destructors.
  struct Threads {
    std::mutex& mu;
    std::condition_variable& cv;
    bool& go;
    std::vector<std::thread> all;
    ~Threads() {
      {
        std::lock_guard<std::mutex> lock(mu);
        go = true;
      }
      cv.notify_all();
      for (auto& t : all)
        if (t.joinable()) t.join();
    }
  } threads{mu, cv, go, {}};
  for (size_t i = 0; i < n; ++i) {
    threads.all.emplace_back([&, i] {
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return go; });
        if (abandon) return;
      }
      int err = holds.Freeze(i);
      std::lock_guard<std::mutex> lock(mu);
      errors[i] = err;
      if (++done == n) cv.notify_all();
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(2));  // all of them parked on `cv`
  int64_t t0, t1;
  {
    std::unique_lock<std::mutex> lock(mu);
    t0 = NowNs();
    abandon = false;
    go = true;
    cv.notify_all();
    cv.wait(lock, [&] { return done == n; });
    t1 = NowNs();
  }
  // Thawed before the threads are joined: their exits are not the kernel's
  // floor. Every thread has counted itself done, so `errors` is final.
  Result<BareSample> sample = Thaw(holds, t0, t1);
  for (int err : errors)
    if (err) return Status::Unavailable(std::string("bare FIFREEZE failed: ") + std::strerror(err));
  return sample;
}

// -------------------------------------------------------- the coordinator

struct SetSample {
  int64_t hold_ns;
  int64_t set_ns;
  // From the timeline. The window opens at the "commit window" instant.
  int64_t to_last_freeze_ns;  // "holds begin" -> the last volume's "hold" span begins
  int64_t freeze_phase_ns;    // -> commit_snapshots begins (every FIFREEZE returned)
  int64_t commit_phase_ns;    // -> the first release is done
  int64_t release_phase_ns;   // -> the last release is done
  int64_t slowest_commit_ns;  // the longest provider commit_snapshots call
};

// Reads the phases of the hold off the timeline: each volume's "hold" span
// begins just before its FIFREEZE (after its guard registration) and ends
// just after its FITHAW (before its guard unregistration).
Result<SetSample> Phases(const TimelineData& t, const std::vector<std::string>& volumes) {
  std::map<std::pair<std::string, std::string>, std::pair<int64_t, int64_t>> spans;
  int64_t window = 0, holds_begin = 0;
  for (const auto& e : t.events) {
    auto& s = spans[{e.lane, e.step}];
    if (e.kind == TimelineKind::kBegin) s.first = e.t_ns;
    if (e.kind == TimelineKind::kEnd) s.second = e.t_ns;
    if (e.kind == TimelineKind::kInstant && e.lane == "set" && e.step == "commit window")
      window = e.t_ns;
    if (e.kind == TimelineKind::kInstant && e.lane == "set" && e.step == "holds begin")
      holds_begin = e.t_ns;
  }
  int64_t first_begin = INT64_MAX, last_begin = 0, first_end = INT64_MAX, last_end = 0;
  for (const auto& v : volumes) {
    auto it = spans.find({"volume:" + v, "hold"});
    if (it == spans.end() || !it->second.first || !it->second.second)
      return Status::Internal("the timeline has no complete hold span for " + v);
    first_begin = std::min(first_begin, it->second.first);
    last_begin = std::max(last_begin, it->second.first);
    first_end = std::min(first_end, it->second.second);
    last_end = std::max(last_end, it->second.second);
  }
  auto commit = spans.find({"set", "commit_snapshots"});
  if (commit == spans.end() || !commit->second.first)
    return Status::Internal("the timeline has no commit_snapshots span");
  if (!window) window = first_begin;
  int64_t slowest = 0;
  for (const auto& [key, s] : spans)
    if (key.first.rfind("provider:", 0) == 0 && key.second == "commit_snapshots")
      slowest = std::max(slowest, s.second - s.first);
  // The hold begins when the freeze threads are let go, after the guard
  // registrations: those are in the window but not in the hold.
  if (!holds_begin) holds_begin = window;
  SetSample out{};
  out.to_last_freeze_ns = last_begin - holds_begin;
  out.freeze_phase_ns = commit->second.first - window;
  out.commit_phase_ns = first_end - commit->second.first;
  out.release_phase_ns = last_end - first_end;
  out.slowest_commit_ns = slowest;
  return out;
}

Result<SetSample> CreateOneSet(Requestor& r, const std::vector<std::string>& volumes,
                               TimelineData* timeline = nullptr) {
  SetRequest req;
  req.volumes = volumes;
  const int64_t t0 = NowNs();
  SetResult res = r.CreateSet(req);
  const int64_t t1 = NowNs();
  if (!res.status.ok()) return res.status.WithContext("CreateSet");
  if (res.hold_ns <= 0) return Status::Internal("CreateSet reported no hold");
  auto sample = Phases(res.timeline, volumes);
  if (!sample.ok()) return sample.status();
  sample->hold_ns = res.hold_ns;
  sample->set_ns = t1 - t0;
  if (timeline) *timeline = res.timeline;
  // Not timed: keeps the catalog and the providers' lists the same size in
  // every run, so run 60 does not pay for the 59 sets before it.
  if (Status s = r.DeleteSet(res.set_id); !s.ok()) return s.WithContext("DeleteSet");
  return sample;
}

// Thaw-guard round trips alone: register every volume, then unregister it,
// as a set does (2N trips, nearly all inside the window). Nothing is frozen;
// the guard only opens the mount points.
Result<int64_t> GuardRoundTrips(ThawGuard& guard, const std::vector<std::string>& volumes) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  const int64_t t0 = NowNs();
  for (const auto& v : volumes) SNAPSET_RETURN_IF_ERROR(guard.Register(v, deadline));
  for (size_t i = volumes.size(); i-- > 0;) SNAPSET_RETURN_IF_ERROR(guard.Unregister(volumes[i]));
  return NowNs() - t0;
}

// ------------------------------------------------------------------- setup

// A config and state directory with the three scripted providers, each
// taking every third volume by name. Their events have no delay: whatever
// the set costs beyond the bare freeze is the coordinator's.
Result<std::unique_ptr<Requestor>> OpenRequestor(const TempDir& dir, const Options& o,
                                                 const std::vector<std::string>& mounts) {
  std::filesystem::create_directories(dir.path() / "config" / "providers.d");
  ::chmod((dir.path() / "config").c_str(), 0755);
  const char* names[] = {"hw", "sw", "sys"};
  const char* types[] = {"hardware", "software", "system"};
  for (size_t p = 0; p < 3; ++p) {
    std::string rules;
    for (size_t i = p; i < mounts.size(); i += 3)
      rules += std::string(rules.empty() ? "" : ", ") + "\"name:" + mounts[i] + "\"";
    dir.Write("config/providers.d/" + std::string(names[p]) + ".json",
              snapset::test::Registration(NewUuid(), names[p], types[p], o.plugin,
                                          "{\"supports\": [" + rules + "]}"));
  }
  RequestorOptions ro;
  ro.config_dir = dir.str() + "/config";
  ro.state_dir = dir.str() + "/state";
  ro.log_level = SNAPSET_LOG_ERROR;
  ro.thaw_guard = o.thaw_guard;
  return Requestor::Open(ro);
}

// The plan must be what the benchmark claims: every volume frozen, each on
// the provider its rule names.
Status CheckPlan(Requestor& r, const std::vector<std::string>& mounts) {
  SetRequest req;
  req.volumes = mounts;
  auto plan = r.PlanSet(req);
  if (!plan.ok()) return plan.status().WithContext("planning all volumes");
  const char* names[] = {"hw", "sw", "sys"};
  for (size_t i = 0; i < plan->size(); ++i) {
    const PlannedVolume& p = (*plan)[i];
    if (p.hold != "fsfreeze" || p.provider != names[i % 3])
      return Status::Internal("volume " + p.volume + " planned on \"" + p.provider +
                              "\" with hold " + p.hold + "; expected " + names[i % 3] +
                              " with fsfreeze");
  }
  return Status::Ok();
}

// LoopFilesystem puts its backing file in a TempDir, which follows TMPDIR;
// pointing TMPDIR at `dir` for the duration is how to choose where.
Result<std::unique_ptr<LoopFilesystem>> CreateFilesystemIn(const std::string& dir) {
  if (dir.empty()) return LoopFilesystem::Create(kFilesystemBytes, "ext4");
  const char* old = std::getenv("TMPDIR");
  const std::string saved = old ? old : "";
  ::setenv("TMPDIR", dir.c_str(), 1);
  auto fs = LoopFilesystem::Create(kFilesystemBytes, "ext4");
  if (old) {
    ::setenv("TMPDIR", saved.c_str(), 1);
  } else {
    ::unsetenv("TMPDIR");
  }
  return fs;
}

// ---------------------------------------------------------------- measuring

struct SizeResult {
  size_t volumes = 0;
  std::vector<int64_t> hold, bare_hold, hold_overhead;
  std::vector<int64_t> own_before, own_after, own_work;
  std::vector<int64_t> set, set_overhead;
  std::vector<int64_t> seq_hold, seq_freeze, seq_thaw;
  std::vector<int64_t> to_last_freeze, freeze_phase, bare_freeze, commit_phase, slowest_commit;
  std::vector<int64_t> release_phase, bare_thaw, guard_trips;
};

// One set's timeline, times from its first event, for reading by eye.
void DumpTimeline(const TimelineData& t, size_t n) {
  static const char* kKinds[] = {"begin", "end", "instant"};
  const int64_t t0 = t.events.empty() ? 0 : t.events.front().t_ns;
  std::fprintf(stderr, "timeline of the last %zu-volume set (ms from its first event):\n", n);
  for (const auto& e : t.events)
    std::fprintf(stderr, "  %9.3f %-7s %-28s %s %s\n", double(e.t_ns - t0) / 1e6,
                 kKinds[int(e.kind)], e.lane.c_str(), e.step.c_str(), e.detail.c_str());
}

Status Measure(Requestor& r, const MountFds& fds, const std::vector<std::string>& mounts,
               const Options& o, size_t n, SizeResult* out) {
  const std::vector<std::string> volumes(mounts.begin(), mounts.begin() + long(n));
  auto guard = ThawGuard::Start(o.thaw_guard);
  if (!guard.ok()) return guard.status().WithContext("starting a thaw guard to time round trips");
  out->volumes = n;

  for (int i = 0; i < o.warmup; ++i) {
    SNAPSET_RETURN_IF_ERROR(ParallelFreezeThaw(fds, n).status());
    SNAPSET_RETURN_IF_ERROR(CreateOneSet(r, volumes).status());
    SNAPSET_RETURN_IF_ERROR(SequentialFreezeThaw(fds, n).status());
    SNAPSET_RETURN_IF_ERROR(GuardRoundTrips(**guard, volumes).status());
  }
  // bare[i] and bare[i + 1] bracket set i.
  std::vector<BareSample> bare;
  std::vector<SetSample> sets;
  for (int i = 0; i <= o.runs; ++i) {
    if (g_stop) return Status::Unavailable("interrupted by a signal");
    Settle(o.settle_ms);
    auto b = ParallelFreezeThaw(fds, n);
    if (!b.ok()) return b.status();
    bare.push_back(*b);
    if (i == o.runs) break;

    Settle(o.settle_ms);
    TimelineData timeline;
    auto s = CreateOneSet(r, volumes, &timeline);
    if (!s.ok()) return s.status();
    sets.push_back(*s);
    if (o.dump_timeline && i == o.runs - 1) DumpTimeline(timeline, n);

    Settle(o.settle_ms);
    auto q = SequentialFreezeThaw(fds, n);
    if (!q.ok()) return q.status();
    out->seq_hold.push_back(q->hold_ns);
    out->seq_freeze.push_back(q->freeze_ns);
    out->seq_thaw.push_back(q->thaw_ns);

    auto g = GuardRoundTrips(**guard, volumes);
    if (!g.ok()) return g.status();
    out->guard_trips.push_back(*g);
  }
  for (int i = 0; i < o.runs; ++i) {
    const SetSample& s = sets[i];
    const int64_t floor = (bare[i].hold_ns + bare[i + 1].hold_ns) / 2;
    out->hold.push_back(s.hold_ns);
    out->bare_hold.push_back(bare[i].hold_ns);
    out->hold_overhead.push_back(s.hold_ns - floor);
    // What the coordinator adds on the window's critical path, read off its
    // own timeline rather than as a difference of two kernel-dominated
    // times: getting every FIFREEZE started, then from the end of freezing
    // to the last release, less the thaws themselves (the paired bare ones).
    // Leaves out the kernel's FIFREEZE wait, whose jitter (whole scheduler
    // ticks per RCU grace period) is larger than the target. An upper bound:
    // the work before the last FIFREEZE starts may overlap earlier freezes.
    const int64_t thaw = (bare[i].thaw_ns + bare[i + 1].thaw_ns) / 2;
    out->own_before.push_back(s.to_last_freeze_ns);
    out->own_after.push_back(s.commit_phase_ns + s.release_phase_ns - thaw);
    out->own_work.push_back(out->own_before.back() + out->own_after.back());
    out->set.push_back(s.set_ns);
    out->set_overhead.push_back(s.set_ns - floor);
    out->to_last_freeze.push_back(s.to_last_freeze_ns);
    out->freeze_phase.push_back(s.freeze_phase_ns);
    out->bare_freeze.push_back(bare[i].freeze_ns);
    out->commit_phase.push_back(s.commit_phase_ns);
    out->slowest_commit.push_back(s.slowest_commit_ns);
    out->release_phase.push_back(s.release_phase_ns);
    out->bare_thaw.push_back(bare[i].thaw_ns);
  }
  return Status::Ok();
}

void PrintTables(const std::vector<SizeResult>& results, const Options& o) {
  std::printf("### Hold: first hold to last release (ms)\n\n");
  std::printf("| volumes | runs | coordinator p50 | coordinator p99 | bare parallel p50 "
              "| bare parallel p99 | **overhead p50** | **overhead p99** "
              "| bare sequential p50 |\n");
  std::printf("|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  for (const auto& r : results)
    std::printf("| %zu | %d | %s | %s | %s | %s | **%s** | **%s** | %s |\n", r.volumes, o.runs,
                Ms(P50(r.hold)).c_str(), Ms(P99(r.hold)).c_str(), Ms(P50(r.bare_hold)).c_str(),
                Ms(P99(r.bare_hold)).c_str(), Ms(P50(r.hold_overhead)).c_str(),
                Ms(P99(r.hold_overhead)).c_str(), Ms(P50(r.seq_hold)).c_str());
  std::printf("\noverhead: hold_ns less the mean of the two bare parallel runs around it.\n");

  std::printf("\n### Coordinator work on the window's critical path (ms, from the timeline)\n\n");
  std::printf("| volumes | before the last FIFREEZE p50 | p99 | after freezing p50 | p99 "
              "| **own work p50** | **own work p99** |\n");
  std::printf("|---:|---:|---:|---:|---:|---:|---:|\n");
  for (const auto& r : results)
    std::printf("| %zu | %s | %s | %s | %s | **%s** | **%s** |\n", r.volumes,
                Ms(P50(r.own_before)).c_str(), Ms(P99(r.own_before)).c_str(),
                Ms(P50(r.own_after)).c_str(), Ms(P99(r.own_after)).c_str(),
                Ms(P50(r.own_work)).c_str(), Ms(P99(r.own_work)).c_str());
  std::printf("\nbefore the last FIFREEZE: from the start of the hold (the freeze threads "
              "are let go; the guard registrations come before it) to the last volume's hold "
              "span (may overlap earlier freezes). after "
              "freezing: commit and release phases less the paired bare FITHAW time "
              "(provider threads, watchdog, guard unregistrations). The kernel's FIFREEZE "
              "wait is left out.\n");

  std::printf("\n### Whole set: CreateSet wall clock (ms)\n\n");
  std::printf("| volumes | runs | CreateSet p50 | CreateSet p99 | overhead p50 | overhead p99 |\n");
  std::printf("|---:|---:|---:|---:|---:|---:|\n");
  for (const auto& r : results)
    std::printf("| %zu | %d | %s | %s | %s | %s |\n", r.volumes, o.runs, Ms(P50(r.set)).c_str(),
                Ms(P99(r.set)).c_str(), Ms(P50(r.set_overhead)).c_str(),
                Ms(P99(r.set_overhead)).c_str());

  std::printf("\n### Where the hold goes (p50, ms)\n\n");
  std::printf("| volumes | last FIFREEZE starts | freeze phase | bare parallel freeze "
              "| bare sequential freeze | commit phase | slowest provider commit "
              "| release phase | bare thaw | guard 2N round trips alone | per trip (us) |\n");
  std::printf("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  for (const auto& r : results) {
    std::printf("| %zu | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", r.volumes,
                Ms(P50(r.to_last_freeze)).c_str(), Ms(P50(r.freeze_phase)).c_str(),
                Ms(P50(r.bare_freeze)).c_str(), Ms(P50(r.seq_freeze)).c_str(),
                Ms(P50(r.commit_phase)).c_str(), Ms(P50(r.slowest_commit)).c_str(),
                Ms(P50(r.release_phase)).c_str(), Ms(P50(r.bare_thaw)).c_str(),
                Ms(P50(r.guard_trips)).c_str(),
                Us(P50(r.guard_trips) / int64_t(2 * r.volumes)).c_str());
  }
  std::printf(
      "\nPhases from the set's timeline: last FIFREEZE starts = from the start of the hold "
      "to the last volume's hold span; the others from the \"commit window\" instant "
      "(which precedes the guard registrations): freeze phase = "
      "commit_snapshots begins (every FIFREEZE returned, watchdog started); commit phase = "
      "from there to the first release done (provider threads, the commits, watchdog "
      "disarm, one FITHAW); release phase = first to last release done (N-1 FITHAW and "
      "guard unregisters). Guard round trips alone: N registers and N unregisters on an "
      "idle guard of the benchmark's own, nothing frozen.\n");
  for (const auto& r : results) {
    if (r.volumes != 64) continue;
    const double paired = double(P99(r.hold_overhead)) / 1e6;
    const double own = double(P99(r.own_work)) / 1e6;
    std::printf("\nTarget, p99 hold overhead at 64 volumes < %.0f ms: paired difference %s "
                "(%.3f ms), own work %s (%.3f ms)\n",
                kTargetHoldOverheadMs, paired < kTargetHoldOverheadMs ? "met" : "MISSED", paired,
                own < kTargetHoldOverheadMs ? "met" : "MISSED", own);
  }
}

std::string Machine() {
  utsname u{};
  ::uname(&u);
  return std::to_string(std::thread::hardware_concurrency()) + " CPUs, Linux " + u.release +
         " " + u.machine;
}

int Run(const Options& o) {
  std::string missing = LoopFilesystem::MissingPrerequisite("ext4");
  if (missing.empty() && !HaveProgram("fsfreeze")) missing = "fsfreeze (util-linux)";
  if (!missing.empty()) {
    std::fprintf(stderr, "set_overhead_bench: cannot run here, needs %s\n", missing.c_str());
    return 2;
  }
  for (const std::string& f : {o.plugin, o.thaw_guard}) {
    if (::access(f.c_str(), R_OK) != 0) {
      std::fprintf(stderr, "set_overhead_bench: %s not found; build the tree first\n", f.c_str());
      return 1;
    }
  }
  const size_t most = *std::max_element(o.sizes.begin(), o.sizes.end());
  const std::string backing_name =
      o.backing.empty() ? std::filesystem::temp_directory_path().string() : o.backing;
  const std::string backing_kind = OnTmpfs(backing_name) ? "tmpfs" : "not tmpfs";

  // Destroyed last: by then nothing holds a descriptor on the mounts, and the
  // fixture's destructor unfreezes before it unmounts.
  std::vector<std::unique_ptr<LoopFilesystem>> filesystems;
  std::vector<std::string> mounts;
  std::fprintf(stderr, "creating %zu ext4 filesystems of %llu MiB, backing files in %s...\n",
               most, (unsigned long long)(kFilesystemBytes >> 20), backing_name.c_str());
  for (size_t i = 0; i < most; ++i) {
    if (g_stop) return 130;
    auto fs = CreateFilesystemIn(o.backing);
    if (!fs.ok()) {
      std::fprintf(stderr, "set_overhead_bench: %s\n", fs.status().ToString().c_str());
      return 1;
    }
    // The name the resolver gives the volume, which the "name:" rules match.
    mounts.push_back(std::filesystem::canonical((*fs)->mount_point()).string());
    filesystems.push_back(std::move(*fs));
  }
  ::sync();  // nothing mkfs left behind is written back during the runs

  int rc = 0;
  {
    MountFds fds;
    for (const auto& m : mounts) {
      if (Status s = fds.Open(m); !s.ok()) {
        std::fprintf(stderr, "set_overhead_bench: %s\n", s.ToString().c_str());
        return 1;
      }
    }
    TempDir dir;
    auto requestor = OpenRequestor(dir, o, mounts);
    if (!requestor.ok()) {
      std::fprintf(stderr, "set_overhead_bench: %s\n", requestor.status().ToString().c_str());
      return 1;
    }
    if (Status s = CheckPlan(**requestor, mounts); !s.ok()) {
      std::fprintf(stderr, "set_overhead_bench: %s\n", s.ToString().c_str());
      return 1;
    }
    std::vector<SizeResult> results;
    for (size_t n : o.sizes) {
      std::fprintf(stderr, "%zu volume(s): %d warm-up + %d measured runs...\n", n, o.warmup,
                   o.runs);
      SizeResult r;
      Status s = Measure(**requestor, fds, mounts, o, n, &r);
      if (!s.ok()) {
        std::fprintf(stderr, "set_overhead_bench: %zu volumes: %s\n", n, s.ToString().c_str());
        rc = g_stop ? 130 : 1;
        break;
      }
      results.push_back(std::move(r));
    }
    if (rc == 0) {
      std::printf("## set_overhead_bench: %s; %llu MiB ext4 on loop, backing files on %s (%s); "
                  "3 providers; %d runs after %d warm-up, %d ms settle\n\n",
                  Machine().c_str(), (unsigned long long)(kFilesystemBytes >> 20),
                  backing_name.c_str(), backing_kind.c_str(), o.runs, o.warmup, o.settle_ms);
      PrintTables(results, o);
    }
  }
  for (const auto& m : mounts) {
    if (snapset::test::IsFrozen(m)) {
      std::fprintf(stderr, "set_overhead_bench: %s was left frozen; thawing it\n", m.c_str());
      RunCommand({"fsfreeze", "--unfreeze", m});
      rc = 1;
    }
  }
  return rc;
}

}  // namespace
}  // namespace snapset::bench

int main(int argc, char** argv) {
  snapset::bench::Options o;
  if (!snapset::bench::ParseArgs(argc, argv, &o)) return 1;
  struct sigaction sa {};
  sa.sa_handler = snapset::bench::OnSignal;
  sa.sa_flags = SA_RESTART;  // the coordinator's waits must not see EINTR they do not expect
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) ::sigaction(sig, &sa, nullptr);
  // Caught so that the stack unwinds: an uncaught exception would skip the
  // destructors that unmount and detach.
  try {
    return snapset::bench::Run(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "set_overhead_bench: %s\n", e.what());
    return 1;
  }
}
