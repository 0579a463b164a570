// cow_engine_bench: the speed of the software copy-on-write engine
// (snapset::cow::CowVolume, DESIGN §7) against baselines measured in the
// same run, on the same file system, on the same files.
//
// Every quantity is a ratio of two arms measured in the same repetition
// (paired), over several repetitions; the tables give the median and the
// spread (min..max) of the paired ratios, and the absolute figures of each
// arm beside them. What each arm is:
//
//   no snapshot      the engine volume with no live snapshot: every Write
//                    goes straight to the origin (page cache).
//   first write      the same writes, at the same offsets, right after a
//                    snapshot: each touches a chunk not yet copied, so the
//                    engine copies the chunk's old data into the diff area
//                    and makes it and the mapping durable (one fdatasync,
//                    shared by concurrent writers: group commit) before the
//                    origin write.
//   rewrite          the same writes again, the snapshot still live: every
//                    chunk is already copied.
//   16 snapshots     first writes after the 16th of 16 live snapshots; in
//                    between snapshots 1..15, every 16th offset of the pass
//                    was written (untimed), so those chunks carry 15 older
//                    mappings each. Compared with "first write" (1 snapshot);
//                    the two arms take turns going first.
// Every timed write pass ends with CowVolume::Flush (fdatasync of the
// origin) inside the timing, on both sides of every ratio: the engine
// returns from Write once the *old* data is durable, but the new data is
// only in the page cache until Flush, exactly as for the baseline. Untimed
// preparation is flushed before the clock starts, so no pass pays for the
// dirty data of another. Writes are issued by T threads (T = 1 and 4, like
// an iodepth) pulling the next offset from a shared counter.
//
// Workloads: 1 MiB sequential writes over a region, and 4 KiB writes at a
// random 4 KiB offset inside each of N distinct chunks picked at random
// (so each is a first write after a snapshot). The old data read by the
// copy is cached: the origin was written by the benchmark at start and the
// machine has plenty of memory (the bound for sequential first writes is
// then about 0.5: the disk writes every byte twice).
//
// Reads: the origin region vs a snapshot of it whose every chunk was copied
// to the diff area (so every snapshot read goes through the mapping to the
// diff area). Both cached (a warm-up pass first) and both uncached
// (fdatasync + POSIX_FADV_DONTNEED on the origin and the diff-area file
// before each pass; the residency left is checked with mincore and printed).
//
// Snapshot creation: CreateSnapshot on a 1 TiB sparse origin vs on a 1 GiB
// written origin (full mode), both idle and flushed, identical diff areas;
// each snapshot is deleted (untimed) before the next.
//
// Peer: qemu-img bench on a qcow2 overlay (cluster size = chunk size) over
// the engine's origin file as the raw base, against the engine doing the
// same job: 4 KiB writes at the start of N consecutive chunks (qemu-img
// bench steps; it cannot write at random offsets), depth/threads T.
//   qemu-img bench -f qcow2 -w -t writeback -c N -d T -s 4096 -S CHUNK
//                  -o OFFSET --flush-interval N overlay.qcow2
// -t writeback: the page cache, as the engine uses it. --flush-interval N:
// one flush after the last write, as the engine's final Flush. The timing
// runs from the "Sending" line (after the image is opened) to the exit of
// qemu-img, because qemu-img's own "Run completed" is printed before that
// last flush completes (checked with strace on qemu 7.2); the close flushes
// the qcow2 metadata caches too. -t none -n (O_DIRECT, native AIO) is shown
// as well, for reference only: it does not use the page cache, the engine
// does. The same job on an overlay created with extended_l2=on (32
// sub-clusters per cluster: a 4 KiB write copies nothing from the base) is
// the stronger peer. The raw base itself under qemu-img bench
// (-t writeback) is the peer's "no snapshot".
//
// Metadata memory: Stats::index_memory_bytes per GiB of copied chunk data
// (diff_bytes_used) after first writes over a region, with the growth of
// the process's anonymous RSS (RssAnon, malloc_trim'ed before and after) as
// a cross-check. It runs before the write arms, which grow the heap.
//
// The floor: at the start of every rep, the two synced writes the engine
// makes for one first write (64 KiB or 1 MiB of old data + fdatasync, then
// a 4 KiB table page + fdatasync) are timed on a plain file of the same
// file system. An fdatasync on this kind of VM costs from 0.3 to 5 ms,
// depending on what else the host does; the floor says which it was.
//
// Diagnostics: the volumes run on a FileSystem that counts the engine's
// reads, writes and fdatasyncs per file (origin / diff area) and the time
// spent in fdatasync, so the "where the time goes" table says how many
// syncs each write cost and how much of the pass they took.
//
// CPU wait: every blocking fdatasync ends with a wake-up, and on a machine
// whose CPUs are busy with other work the woken thread waits for the next
// scheduler tick (4 ms at HZ=250) before it runs. The write passes report
// the share of the writers' time spent so (/proc/thread-self/schedstat).
// --rt runs the benchmark's threads and qemu-img SCHED_FIFO (priority 1),
// which takes that wait away on both sides: the figures of the engine and
// the disk rather than of the neighbours. Needs root (CAP_SYS_NICE); the
// kernel's RT throttling still leaves the other 5% of the CPUs to others.
//
// Usage:
//   cow_engine_bench [--dir DIR] [--quick] [--json] [--reps N]
//                    [--threads 1,4] [--no-qemu] [--qemu-img PATH] [--rt]
// --dir: where the files go (a fresh subdirectory is created and removed);
// default a temporary directory under /var/tmp (the real disk, not tmpfs).
// --quick: small sizes, two repetitions, a few seconds (the smoke test).
// --json: the results as JSON on stdout (the tables go to stderr).
// Exit status: 0 measured (a missed target is reported, not an error),
// 1 error, 2 cannot run here, 130 interrupted.
#include "providers/software-cow/engine/cow_volume.hpp"
#include "providers/software-cow/engine/file_io.hpp"

#include <fcntl.h>
#include <linux/magic.h>
#include <malloc.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace snapset::bench {
namespace {

using cow::CowVolume;

constexpr uint64_t kKiB = 1024;
constexpr uint64_t kMiB = kKiB * kKiB;
constexpr uint64_t kGiB = kMiB * kKiB;
constexpr uint64_t kTiB = kGiB * kKiB;
constexpr size_t kSeqIo = 1 * kMiB;
constexpr size_t kRandIo = 4 * kKiB;
constexpr int kTouchEvery = 16;  // 16-snapshot arm: every 16th offset written between snapshots

volatile sig_atomic_t g_stop = 0;
bool g_rt = false;  // --rt: the benchmark's threads and children run SCHED_FIFO
void OnSignal(int) { g_stop = 1; }

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string Fmt(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

// ------------------------------------------------------------------ options

struct Options {
  std::string dir;  // "": a temp dir under /var/tmp
  bool quick = false;
  bool json = false;
  int reps = 0;  // 0: the mode's default
  std::vector<int> threads = {1, 4};
  bool qemu = true;
  std::string qemu_img = "qemu-img";
  bool rt = false;
};

// The sizes of one mode. Regions are disjoint so that no arm sees another
// arm's copies; every pass of an arm uses the same offsets in every rep.
struct Scale {
  uint64_t origin_bytes;
  uint64_t diff_bytes;
  uint64_t seq_bytes;     // per sequential pass, region [0, seq_bytes)
  uint64_t rand_lo, rand_hi;  // random chunks are picked in [lo, hi)
  size_t rand_n;          // 4 KiB writes per random pass
  uint64_t peer_offset;   // peer arm: peer_n chunks from here
  size_t peer_n;
  uint64_t read_bytes;    // read region [0, read_bytes)
  int cached_read_loops;  // cached sequential pass reads the region this often
  size_t cached_rand_reads, uncached_rand_reads;
  int snap_reps;          // snapshot creations per origin
  uint64_t mem_bytes;     // memory arm: first writes over [0, mem_bytes)
  int reps;
};

Scale FullScale() {
  return Scale{.origin_bytes = 1 * kGiB,
               .diff_bytes = 1 * kGiB,
               .seq_bytes = 128 * kMiB,
               .rand_lo = 256 * kMiB,
               .rand_hi = 768 * kMiB,
               .rand_n = 384,
               .peer_offset = 768 * kMiB,
               .peer_n = 384,
               .read_bytes = 128 * kMiB,
               .cached_read_loops = 4,
               .cached_rand_reads = 32768,
               .uncached_rand_reads = 4096,
               .snap_reps = 30,
               .mem_bytes = 512 * kMiB,
               .reps = 5};
}

Scale QuickScale() {
  return Scale{.origin_bytes = 64 * kMiB,
               .diff_bytes = 64 * kMiB,
               .seq_bytes = 8 * kMiB,
               .rand_lo = 16 * kMiB,
               .rand_hi = 48 * kMiB,
               .rand_n = 32,
               .peer_offset = 48 * kMiB,
               .peer_n = 32,
               .read_bytes = 8 * kMiB,
               .cached_read_loops = 1,
               .cached_rand_reads = 1024,
               .uncached_rand_reads = 256,
               .snap_reps = 3,
               .mem_bytes = 8 * kMiB,
               .reps = 2};
}

bool ParseThreads(const std::string& text, std::vector<int>* out) {
  out->clear();
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    char* end = nullptr;
    long n = std::strtol(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || n < 1 || n > 64) return false;
    out->push_back(int(n));
  }
  return !out->empty();
}

bool ParseArgs(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    const char* v = nullptr;
    if (a == "--dir" && (v = value())) {
      o->dir = v;
    } else if (a == "--quick") {
      o->quick = true;
    } else if (a == "--json") {
      o->json = true;
    } else if (a == "--reps" && (v = value())) {
      o->reps = std::atoi(v);
      if (o->reps < 1) {
        std::fprintf(stderr, "--reps wants a number >= 1\n");
        return false;
      }
    } else if (a == "--threads" && (v = value())) {
      if (!ParseThreads(v, &o->threads)) {
        std::fprintf(stderr, "--threads wants a list like 1,4 (each 1..64)\n");
        return false;
      }
    } else if (a == "--no-qemu") {
      o->qemu = false;
    } else if (a == "--qemu-img" && (v = value())) {
      o->qemu_img = v;
    } else if (a == "--rt") {
      o->rt = true;
    } else {
      std::fprintf(stderr,
                   "usage: %s [--dir DIR] [--quick] [--json] [--reps N] [--threads 1,4] "
                   "[--no-qemu] [--qemu-img PATH] [--rt]\n",
                   argv[0]);
      return false;
    }
  }
  return true;
}

// -------------------------------------------------- the counting file system

struct IoSample {
  uint64_t reads = 0, read_bytes = 0, writes = 0, write_bytes = 0, syncs = 0, sync_ns = 0;
  IoSample operator-(const IoSample& b) const {
    return {reads - b.reads,   read_bytes - b.read_bytes, writes - b.writes,
            write_bytes - b.write_bytes, syncs - b.syncs, sync_ns - b.sync_ns};
  }
};

struct IoCounters {
  std::atomic<uint64_t> reads{0}, read_bytes{0}, writes{0}, write_bytes{0}, syncs{0}, sync_ns{0};
  IoSample Sample() const {
    return {reads.load(), read_bytes.load(), writes.load(), write_bytes.load(), syncs.load(),
            sync_ns.load()};
  }
};

// Forwards to the real file and counts: a few relaxed atomic additions per
// call, on both sides of every ratio alike.
class CountingFile final : public cow::File {
 public:
  CountingFile(std::unique_ptr<cow::File> f, IoCounters* c) : f_(std::move(f)), c_(c) {}
  Status ReadAt(uint64_t offset, void* buf, size_t n) override {
    c_->reads.fetch_add(1, std::memory_order_relaxed);
    c_->read_bytes.fetch_add(n, std::memory_order_relaxed);
    return f_->ReadAt(offset, buf, n);
  }
  Status WriteAt(uint64_t offset, const void* buf, size_t n) override {
    c_->writes.fetch_add(1, std::memory_order_relaxed);
    c_->write_bytes.fetch_add(n, std::memory_order_relaxed);
    return f_->WriteAt(offset, buf, n);
  }
  Status Sync() override {
    const int64_t t0 = NowNs();
    Status s = f_->Sync();
    c_->syncs.fetch_add(1, std::memory_order_relaxed);
    c_->sync_ns.fetch_add(uint64_t(NowNs() - t0), std::memory_order_relaxed);
    return s;
  }
  Result<uint64_t> Size() override { return f_->Size(); }
  Status Allocate(uint64_t size) override { return f_->Allocate(size); }
  const std::string& path() const override { return f_->path(); }

 private:
  std::unique_ptr<cow::File> f_;
  IoCounters* c_;
};

class CountingFileSystem final : public cow::FileSystem {
 public:
  explicit CountingFileSystem(cow::FileSystem* base) : base_(base) {}
  // Files opened at these paths count as origin; every other as diff area.
  void MarkOrigin(const std::string& path) {
    std::lock_guard<std::mutex> lock(mu_);
    origins_.insert(path);
  }
  Result<std::unique_ptr<cow::File>> Open(const std::string& path,
                                          const cow::OpenOptions& o) override {
    auto f = base_->Open(path, o);
    if (!f.ok()) return f.status();
    bool origin;
    {
      std::lock_guard<std::mutex> lock(mu_);
      origin = origins_.count(path) > 0;
    }
    std::unique_ptr<cow::File> counted =
        std::make_unique<CountingFile>(std::move(*f), origin ? &origin_ : &diff_);
    return counted;
  }
  Status Remove(const std::string& path) override { return base_->Remove(path); }
  bool Exists(const std::string& path) override { return base_->Exists(path); }

  IoSample origin() const { return origin_.Sample(); }
  IoSample diff() const { return diff_.Sample(); }

 private:
  cow::FileSystem* base_;
  std::mutex mu_;
  std::set<std::string> origins_;
  IoCounters origin_, diff_;
};

// ------------------------------------------------------------------ stats

// Median (the lower middle for an even count: every number printed was
// measured), min and max.
struct Series {
  std::vector<double> v;
  void Add(double x) { v.push_back(x); }
  bool empty() const { return v.empty(); }
  double Median() const {
    if (v.empty()) return 0;
    std::vector<double> s = v;
    std::sort(s.begin(), s.end());
    return s[(s.size() - 1) / 2];
  }
  double Min() const { return v.empty() ? 0 : *std::min_element(v.begin(), v.end()); }
  double Max() const { return v.empty() ? 0 : *std::max_element(v.begin(), v.end()); }
};

// One printed row.
struct Metric {
  std::string id;     // stable key (the smoke test looks for it)
  std::string label;  // what it is
  std::string unit;   // "MiB/s", "IOPS", "ms", "x", ...
  Series s;
  std::string note;
  // Target (ratios only): kind 0 none, +1 median >= bound, -1 median <= bound.
  int kind = 0;
  double bound = 0;
  std::string target_text;
  bool na = false;  // could not be measured here (note says why)
};

class Report {
 public:
  Metric& Get(const std::string& id, const std::string& label, const std::string& unit) {
    auto it = index_.find(id);
    if (it != index_.end()) return rows_[it->second];
    index_[id] = rows_.size();
    rows_.push_back(Metric{id, label, unit, {}, {}, 0, 0, {}, false});
    return rows_.back();
  }
  Metric* Find(const std::string& id) {
    auto it = index_.find(id);
    return it == index_.end() ? nullptr : &rows_[it->second];
  }
  std::deque<Metric>& rows() { return rows_; }

 private:
  std::deque<Metric> rows_;  // a deque: references stay valid as rows are added
  std::map<std::string, size_t> index_;
};

// ------------------------------------------------------------ helpers

bool OnTmpfs(const std::string& dir) {
  struct statfs s {};
  return ::statfs(dir.c_str(), &s) == 0 && s.f_type == TMPFS_MAGIC;
}

std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

// RssAnon and VmRSS of this process, in bytes.
std::pair<uint64_t, uint64_t> Rss() {
  std::ifstream in("/proc/self/status");
  std::string line;
  uint64_t anon = 0, rss = 0;
  while (std::getline(in, line)) {
    unsigned long long kb = 0;
    if (std::sscanf(line.c_str(), "RssAnon: %llu kB", &kb) == 1) anon = kb * kKiB;
    if (std::sscanf(line.c_str(), "VmRSS: %llu kB", &kb) == 1) rss = kb * kKiB;
  }
  return {anon, rss};
}

// Writes `size` bytes of pseudo-random data into a new file and makes them
// durable: an origin whose blocks are all allocated and cached.
Status WriteFilledFile(const std::string& path, uint64_t size) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return Status::Unavailable("create " + path + ": " + std::strerror(errno));
  std::vector<uint64_t> buf(kMiB / 8);
  std::mt19937_64 rng(42);
  Status st;
  for (uint64_t off = 0; off < size && st.ok(); off += kMiB) {
    for (auto& w : buf) w = rng();
    size_t n = size_t(std::min<uint64_t>(kMiB, size - off));
    if (::pwrite(fd, buf.data(), n, off_t(off)) != ssize_t(n))
      st = Status::Unavailable("write " + path + ": " + std::strerror(errno));
  }
  if (st.ok() && ::fdatasync(fd) != 0)
    st = Status::Unavailable("fdatasync " + path + ": " + std::strerror(errno));
  ::close(fd);
  return st;
}

Status CreateSparseFile(const std::string& path, uint64_t size) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return Status::Unavailable("create " + path + ": " + std::strerror(errno));
  Status st;
  if (::ftruncate(fd, off_t(size)) != 0 || ::fsync(fd) != 0)
    st = Status::Unavailable("truncate " + path + ": " + std::strerror(errno));
  ::close(fd);
  return st;
}

// Writes back and evicts the file's cached pages; returns the fraction of
// its pages still resident afterwards (mincore), or an error.
Result<double> DropCache(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::Unavailable("open " + path + ": " + std::strerror(errno));
  struct stat st {};
  double resident = 0;
  if (::fdatasync(fd) != 0 || ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) != 0 ||
      ::fstat(fd, &st) != 0) {
    ::close(fd);
    return Status::Unavailable("evicting " + path + ": " + std::strerror(errno));
  }
  const size_t page = size_t(::sysconf(_SC_PAGESIZE));
  const size_t len = size_t(st.st_size);
  if (len > 0) {
    void* m = ::mmap(nullptr, len, PROT_READ, MAP_SHARED, fd, 0);
    if (m != MAP_FAILED) {
      std::vector<unsigned char> vec((len + page - 1) / page);
      if (::mincore(m, len, vec.data()) == 0) {
        size_t in = 0;
        for (unsigned char c : vec) in += c & 1;
        resident = double(in) / double(vec.size());
      }
      ::munmap(m, len);
    }
  }
  ::close(fd);
  return resident;
}

// Searches PATH like execvp.
bool HaveProgram(const std::string& name) {
  if (name.find('/') != std::string::npos) return ::access(name.c_str(), X_OK) == 0;
  const char* path = std::getenv("PATH");
  std::stringstream in(path ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(in, dir, ':'))
    if (!dir.empty() && ::access((dir + "/" + name).c_str(), X_OK) == 0) return true;
  return false;
}

struct Spawned {
  int exit_code = -1;
  std::string output;      // stdout and stderr
  int64_t marker_ns = 0;   // when `marker` first appeared in the output (0: never)
  int64_t start_ns = 0, exit_ns = 0;
};

// Runs argv with stdout+stderr on a pipe; notes when `marker` first shows up
// in the output, and when the process has exited.
Result<Spawned> SpawnTimed(const std::vector<std::string>& argv, const std::string& marker) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return Status::Unavailable("pipe failed");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  // --rt: the child runs SCHED_FIFO too (its threads inherit it), so both
  // sides of a comparison wait for a CPU alike.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  if (g_rt) {
    sched_param sp{};
    sp.sched_priority = 1;
    posix_spawnattr_setschedpolicy(&attr, SCHED_FIFO);
    posix_spawnattr_setschedparam(&attr, &sp);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSCHEDULER);
  }
  Spawned out;
  pid_t pid = -1;
  out.start_ns = NowNs();
  int rc = ::posix_spawnp(&pid, args[0], &fa, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  ::close(fds[1]);
  if (rc != 0) {
    ::close(fds[0]);
    return Status::Unavailable("cannot run " + argv[0] + ": " + std::strerror(rc));
  }
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.output.append(buf, size_t(n));
    if (!out.marker_ns && !marker.empty() && out.output.find(marker) != std::string::npos)
      out.marker_ns = NowNs();
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  out.exit_ns = NowNs();
  out.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return out;
}

// ------------------------------------------------------------- the runner

// Time this thread has spent runnable but waiting for a CPU (ns), from
// /proc/thread-self/schedstat; 0 when the kernel does not say.
int64_t RunQueueWaitNs() {
  std::ifstream in("/proc/thread-self/schedstat");
  unsigned long long on_cpu = 0, waiting = 0;
  in >> on_cpu >> waiting;
  return int64_t(waiting);
}

// --rt: SCHED_FIFO for the calling thread, so that a thread woken by an I/O
// completion runs at once instead of waiting for the next scheduler tick
// behind whatever else keeps the CPUs busy.
Status MakeRealtime() {
  sched_param p{};
  p.sched_priority = 1;
  if (int e = pthread_setschedparam(pthread_self(), SCHED_FIFO, &p); e != 0)
    return Status::Unavailable(std::string("SCHED_FIFO: ") + std::strerror(e));
  return Status::Ok();
}

struct Timed {
  int64_t ns = 0;         // from letting the threads go to the last one finishing
  int64_t thread_ns = 0;  // the threads' time, summed
  int64_t cpu_wait_ns = 0;  // of which runnable but waiting for a CPU, summed
};

// Runs fn(i, buffer) for i in [0, n) on `threads` threads that take the
// next i from a shared counter. The threads are started and parked before
// the clock starts. Stops at the first error and returns it.
Result<Timed> RunParallel(size_t n, int threads, size_t bufsize,
                          const std::function<Status(size_t, char*)>& fn) {
  std::mutex mu;
  std::condition_variable cv;
  bool go = false;
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::atomic<int64_t> thread_ns{0}, cpu_wait_ns{0};
  Status first_error;
  std::vector<std::thread> pool;
  pool.reserve(size_t(threads));
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      std::vector<char> buf(bufsize, char(0x5a));
      if (g_rt) (void)MakeRealtime();  // checked on the main thread at start
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return go; });
      }
      const int64_t t0 = NowNs(), w0 = RunQueueWaitNs();
      for (;;) {
        size_t i = next.fetch_add(1);
        if (i >= n || failed.load(std::memory_order_relaxed)) break;
        Status s = fn(i, buf.data());
        if (!s.ok()) {
          std::lock_guard<std::mutex> lock(mu);
          if (!failed.exchange(true)) first_error = s;
          break;
        }
      }
      thread_ns.fetch_add(NowNs() - t0);
      cpu_wait_ns.fetch_add(RunQueueWaitNs() - w0);
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1));  // all parked
  const int64_t t0 = NowNs();
  {
    std::lock_guard<std::mutex> lock(mu);
    go = true;
  }
  cv.notify_all();
  for (auto& t : pool) t.join();
  const int64_t t1 = NowNs();
  if (failed) return first_error;
  return Timed{t1 - t0, thread_ns.load(), cpu_wait_ns.load()};
}

// What one timed pass did.
struct Pass {
  int64_t ns = 0;
  size_t ops = 0;
  uint64_t bytes = 0;
  IoSample origin, diff;
  uint64_t group_commits = 0, chunks_copied = 0;
  int64_t thread_ns = 0, cpu_wait_ns = 0;  // writer threads (and the Flush), summed
  double MiBps() const { return double(bytes) / double(kMiB) / (double(ns) / 1e9); }
  double Iops() const { return double(ops) / (double(ns) / 1e9); }
};

class Bench {
 public:
  Bench(const Options& o, const Scale& sc, std::string dir)
      : o_(o), sc_(sc), dir_(std::move(dir)), fs_(cow::PosixFileSystem()) {}

  int Run();

 private:
  std::string P(const std::string& name) const { return dir_ + "/" + name; }
  Status Setup();
  Status SnapshotCreation();
  Status SyncProbe();
  Status WriteArms();
  Status PeerArm();
  Status ReadArms();
  Status MemoryArm();
  void Print(FILE* out);
  void PrintJson(FILE* out);

  Result<std::unique_ptr<CowVolume>> MakeVolume(const std::string& name, const std::string& origin,
                                                const std::string& diff, uint64_t diff_bytes);
  // Timed: the writes by `threads` threads, then Flush.
  Result<Pass> Writes(CowVolume& v, const std::vector<uint64_t>& offs, size_t io, int threads,
                      bool flush = true);
  // Timed: reads of the origin (snap empty) or of snapshot `snap`.
  Result<Pass> Reads(CowVolume& v, const std::string& snap, const std::vector<uint64_t>& offs,
                     size_t io, int threads);
  Status DeleteAllSnapshots(CowVolume& v);
  Status CheckNoOverflow();

  // Records an absolute figure (rate) and the pass's diagnostics.
  void Record(const std::string& id, const std::string& label, const Pass& p, size_t io);
  void Ratio(const std::string& id, const std::string& label, double num, double den,
             int kind = 0, double bound = 0, const std::string& target = "");

  const Options& o_;
  const Scale sc_;
  const std::string dir_;
  CountingFileSystem fs_;
  std::unique_ptr<CowVolume> vol_;  // the main volume: sc_.origin_bytes, written
  std::string origin_, diff_;
  Report abs_, ratio_, diag_;
  std::string qemu_note_;  // why the peer arm did not run ("" when it ran)
  Series probe_cpu_wait_;  // % of the floor probes spent waiting for a CPU
  uint64_t probe_cursor_ = 0;
  std::vector<std::string> notes_;
};

Result<std::unique_ptr<CowVolume>> Bench::MakeVolume(const std::string& name,
                                                     const std::string& origin,
                                                     const std::string& diff,
                                                     uint64_t diff_bytes) {
  fs_.MarkOrigin(origin);
  cow::CreateOptions c;
  c.name = name;
  c.origin_path = origin;
  c.origin_size = 0;  // adopt the file the benchmark prepared
  c.chunk_size = cow::kDefaultChunkSize;
  c.diff_files.push_back(cow::DiffFileSpec{diff, diff_bytes});
  auto v = CowVolume::Create(&fs_, c);
  if (!v.ok()) return v.status().WithContext("creating volume " + name);
  return std::move(*v);
}

Result<Pass> Bench::Writes(CowVolume& v, const std::vector<uint64_t>& offs, size_t io,
                           int threads, bool flush) {
  static const std::vector<char> data = [] {
    std::vector<char> d(kSeqIo);
    std::mt19937 rng(7);
    for (auto& c : d) c = char(rng());
    return d;
  }();
  Pass p;
  const IoSample o0 = fs_.origin(), d0 = fs_.diff();
  const cow::Stats s0 = v.stats();
  auto ns = RunParallel(offs.size(), threads, 0, [&](size_t i, char*) {
    return v.Write(offs[i], data.data() + (i % 16) * (io < kSeqIo ? io : 0), io);
  });
  if (!ns.ok()) return ns.status().WithContext("write pass");
  p.ns = ns->ns;
  p.thread_ns = ns->thread_ns;
  p.cpu_wait_ns = ns->cpu_wait_ns;
  if (flush) {
    const int64_t t0 = NowNs(), w0 = RunQueueWaitNs();
    SNAPSET_RETURN_IF_ERROR(v.Flush());
    p.ns += NowNs() - t0;
    p.thread_ns += NowNs() - t0;
    p.cpu_wait_ns += RunQueueWaitNs() - w0;
  }
  const cow::Stats s1 = v.stats();
  p.ops = offs.size();
  p.bytes = uint64_t(offs.size()) * io;
  p.origin = fs_.origin() - o0;
  p.diff = fs_.diff() - d0;
  p.group_commits = s1.group_commits - s0.group_commits;
  p.chunks_copied = s1.chunks_copied - s0.chunks_copied;
  return p;
}

Result<Pass> Bench::Reads(CowVolume& v, const std::string& snap,
                          const std::vector<uint64_t>& offs, size_t io, int threads) {
  Pass p;
  const IoSample o0 = fs_.origin(), d0 = fs_.diff();
  auto ns = RunParallel(offs.size(), threads, io, [&](size_t i, char* buf) {
    return snap.empty() ? v.Read(offs[i], buf, io) : v.ReadSnapshot(snap, offs[i], buf, io);
  });
  if (!ns.ok()) return ns.status().WithContext("read pass");
  p.ns = ns->ns;
  p.thread_ns = ns->thread_ns;
  p.cpu_wait_ns = ns->cpu_wait_ns;
  p.ops = offs.size();
  p.bytes = uint64_t(offs.size()) * io;
  p.origin = fs_.origin() - o0;
  p.diff = fs_.diff() - d0;
  return p;
}

Status Bench::DeleteAllSnapshots(CowVolume& v) {
  for (const auto& s : v.ListSnapshots()) SNAPSET_RETURN_IF_ERROR(v.DeleteSnapshot(s.id));
  return Status::Ok();
}

// A snapshot deleted by overflow would change what the arms measure.
Status Bench::CheckNoOverflow() {
  if (vol_->stats().snapshots_deleted_by_overflow != 0)
    return Status::Internal("the diff area overflowed during the benchmark; it is too small");
  return Status::Ok();
}

void Bench::Record(const std::string& id, const std::string& label, const Pass& p, size_t io) {
  const bool seq = io >= kSeqIo;
  Metric& m = abs_.Get(id, label, seq ? "MiB/s" : "IOPS");
  m.s.Add(seq ? p.MiBps() : p.Iops());
  // Where the time goes, per write: fdatasyncs of the diff area, group
  // commits, and the share of the pass spent in the diff area's fdatasync.
  if (p.ops) {
    diag_.Get(id + ".diff_syncs_per_op", label, "syncs/op").s.Add(double(p.diff.syncs) / double(p.ops));
    diag_.Get(id + ".commits_per_op", label, "commits/op").s.Add(double(p.group_commits) / double(p.ops));
    diag_.Get(id + ".diff_sync_share", label, "%").s.Add(100.0 * double(p.diff.sync_ns) / double(p.ns));
    diag_.Get(id + ".origin_syncs", label, "syncs").s.Add(double(p.origin.syncs));
    diag_.Get(id + ".ms", label, "ms").s.Add(double(p.ns) / 1e6);
    diag_.Get(id + ".ms_per_op", label, "ms").s.Add(double(p.ns) / 1e6 / double(p.ops));
    diag_.Get(id + ".cpu_wait_share", label, "%")
        .s.Add(p.thread_ns ? 100.0 * double(p.cpu_wait_ns) / double(p.thread_ns) : 0);
    diag_.Get(id + ".copied_mib", label, "MiB").s.Add(double(p.diff.write_bytes) / double(kMiB));
  }
}

void Bench::Ratio(const std::string& id, const std::string& label, double num, double den,
                  int kind, double bound, const std::string& target) {
  Metric& m = ratio_.Get(id, label, "x");
  m.s.Add(den > 0 ? num / den : 0);
  m.kind = kind;
  m.bound = bound;
  m.target_text = target;
}

// ------------------------------------------------------------------ setup

Status Bench::Setup() {
  origin_ = P("origin.raw");
  diff_ = P("origin.diff");
  std::fprintf(stderr, "writing a %" PRIu64 " MiB origin in %s...\n", sc_.origin_bytes / kMiB,
               dir_.c_str());
  SNAPSET_RETURN_IF_ERROR(WriteFilledFile(origin_, sc_.origin_bytes));
  auto v = MakeVolume("bench", origin_, diff_, sc_.diff_bytes);
  if (!v.ok()) return v.status();
  vol_ = std::move(*v);
  return Status::Ok();
}

// -------------------------------------------------------- snapshot creation

Status Bench::SnapshotCreation() {
  std::fprintf(stderr, "snapshot creation: 1 TiB sparse origin vs %" PRIu64 " MiB origin...\n",
               sc_.origin_bytes / kMiB);
  const std::string big_origin = P("big.raw"), big_diff = P("big.diff");
  SNAPSET_RETURN_IF_ERROR(CreateSparseFile(big_origin, 1 * kTiB));
  auto big = MakeVolume("big", big_origin, big_diff, sc_.diff_bytes);
  if (!big.ok()) return big.status();
  SNAPSET_RETURN_IF_ERROR(vol_->Flush());
  CowVolume* vols[2] = {vol_.get(), big->get()};
  const std::string ids[2] = {"snap.small", "snap.big"};
  const std::string labels[2] = {
      "CreateSnapshot, " + std::to_string(sc_.origin_bytes / kMiB) + " MiB written origin",
      "CreateSnapshot, 1 TiB sparse origin"};
  Metric* ms[2] = {&abs_.Get(ids[0], labels[0], "ms"), &abs_.Get(ids[1], labels[1], "ms")};
  // One warm-up each, then alternating, so drift hits both alike.
  for (int i = -1; i < sc_.snap_reps; ++i) {
    if (g_stop) return Status::Unavailable("interrupted by a signal");
    double t[2];
    for (int k = 0; k < 2; ++k) {
      const int which = (i & 1) ? 1 - k : k;
      const int64_t t0 = NowNs();
      auto s = vols[which]->CreateSnapshot("s");
      t[which] = double(NowNs() - t0) / 1e6;
      if (!s.ok()) return s.status().WithContext("CreateSnapshot");
      SNAPSET_RETURN_IF_ERROR(vols[which]->DeleteSnapshot("s"));
    }
    if (i < 0) continue;
    ms[0]->s.Add(t[0]);
    ms[1]->s.Add(t[1]);
    Ratio("snap.big_over_small", "snapshot creation: 1 TiB sparse / " +
              std::to_string(sc_.origin_bytes / kMiB) + " MiB origin (time, paired)",
          t[1], t[0], -1, 1.5, "<= 1.5");
  }
  const bool under = ms[0]->s.Median() < 10 && ms[1]->s.Median() < 10;
  notes_.push_back("snapshot creation under 10 ms each (p50): " + Fmt("%.3f", ms[0]->s.Median()) +
                   " ms and " + Fmt("%.3f", ms[1]->s.Median()) + " ms: " +
                   (under ? "met" : "MISSED") + "; worst " + Fmt("%.3f", ms[0]->s.Max()) +
                   " ms and " + Fmt("%.3f", ms[1]->s.Max()) + " ms (" +
                   std::to_string(sc_.snap_reps) + " each)");
  big->reset();
  SNAPSET_RETURN_IF_ERROR(fs_.Remove(big_origin));
  SNAPSET_RETURN_IF_ERROR(fs_.Remove(big_diff));
  return Status::Ok();
}

// ---------------------------------------------------------------- the floor

// What the disk allows one writer: the two synced writes the engine makes
// for a first write (the old data, then a 4 KiB page of the slot table),
// done on a plain file of the same file system, no engine in the way. Taken
// at the start of every rep, because an fdatasync here costs 0.3 to 5 ms
// depending on what else the host is doing.
Status Bench::SyncProbe() {
  const std::string path = P("probe.dat");
  constexpr uint64_t kProbeBytes = 64 * kMiB;
  const bool fresh = !std::filesystem::exists(path);
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Status::Unavailable("open " + path + ": " + std::strerror(errno));
  std::vector<char> buf(kSeqIo, char(0x33));
  Status st;
  if (fresh) {  // written blocks, as the engine's files are after their first use
    for (uint64_t off = 0; off < kProbeBytes && st.ok(); off += kSeqIo)
      if (::pwrite(fd, buf.data(), kSeqIo, off_t(off)) != ssize_t(kSeqIo))
        st = Status::Unavailable("write " + path + ": " + std::strerror(errno));
    if (st.ok() && ::fdatasync(fd) != 0) st = Status::Unavailable("fdatasync " + path);
  }
  for (size_t data : {size_t(vol_->chunk_size()), kSeqIo}) {
    Series ms;
    const int64_t w0 = RunQueueWaitNs(), p0 = NowNs();
    for (int i = 0; i < 8 && st.ok(); ++i) {
      const int64_t t0 = NowNs();
      // A fresh place every time, as the engine's next slot is.
      const off_t off = off_t(probe_cursor_ % (kProbeBytes - kSeqIo - 4 * kKiB));
      probe_cursor_ += data;
      if (::pwrite(fd, buf.data(), data, off) != ssize_t(data) || ::fdatasync(fd) != 0 ||
          ::pwrite(fd, buf.data(), 4 * kKiB, off_t(kProbeBytes - 4 * kKiB)) != ssize_t(4 * kKiB) ||
          ::fdatasync(fd) != 0)
        st = Status::Unavailable("probe on " + path + ": " + std::strerror(errno));
      ms.Add(double(NowNs() - t0) / 1e6);
    }
    probe_cpu_wait_.Add(100.0 * double(RunQueueWaitNs() - w0) / double(NowNs() - p0));
    const bool chunk = data < kSeqIo;
    abs_.Get(chunk ? "probe.pair_chunk" : "probe.pair_1m",
             std::string("floor: ") + (chunk ? "64 KiB" : "1 MiB") +
                 " pwrite + fdatasync, then 4 KiB pwrite + fdatasync, on a plain file (median of 8)",
             "ms")
        .s.Add(ms.Median());
  }
  ::close(fd);
  return st;
}

// ------------------------------------------------------------------ writes

std::vector<uint64_t> SeqOffsets(uint64_t lo, uint64_t bytes, size_t io) {
  std::vector<uint64_t> v;
  for (uint64_t off = lo; off + io <= lo + bytes; off += io) v.push_back(off);
  return v;
}

// One 4 KiB offset, at random, in each of n distinct chunks picked at random
// in [lo, hi).
std::vector<uint64_t> RandOffsets(uint64_t lo, uint64_t hi, size_t n, uint32_t chunk,
                                  uint32_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<uint64_t> chunks;
  for (uint64_t c = lo / chunk; c < hi / chunk; ++c) chunks.push_back(c);
  std::shuffle(chunks.begin(), chunks.end(), rng);
  chunks.resize(std::min(n, chunks.size()));
  std::vector<uint64_t> v;
  for (uint64_t c : chunks) v.push_back(c * chunk + (rng() % (chunk / kRandIo)) * kRandIo);
  return v;
}

Status Bench::WriteArms() {
  const uint32_t chunk = vol_->chunk_size();
  struct Workload {
    std::string name;
    size_t io;
    std::vector<uint64_t> offs;
  };
  const std::vector<Workload> workloads = {
      {"seq1M", kSeqIo, SeqOffsets(0, sc_.seq_bytes, kSeqIo)},
      {"rand4K", kRandIo, RandOffsets(sc_.rand_lo, sc_.rand_hi, sc_.rand_n, chunk, 1)}};
  for (int rep = 0; rep < sc_.reps; ++rep) {
    SNAPSET_RETURN_IF_ERROR(SyncProbe());
    for (const Workload& w : workloads) {
      std::vector<uint64_t> touch;
      for (size_t i = 0; i < w.offs.size(); i += kTouchEvery) touch.push_back(w.offs[i]);
      for (int t : o_.threads) {
        if (g_stop) return Status::Unavailable("interrupted by a signal");
        std::fprintf(stderr, "rep %d/%d: writes %s, %d thread(s)...\n", rep + 1, sc_.reps,
                     w.name.c_str(), t);
        const std::string key = "write." + w.name + ".t" + std::to_string(t);
        const std::string what = w.name + " T" + std::to_string(t);
        Pass nosnap, first, rewrite, sixteen;
        // No snapshot.
        auto run_nosnap = [&]() -> Status {
          SNAPSET_RETURN_IF_ERROR(DeleteAllSnapshots(*vol_));
          SNAPSET_RETURN_IF_ERROR(vol_->Flush());
          auto p = Writes(*vol_, w.offs, w.io, t);
          if (!p.ok()) return p.status();
          nosnap = *p;
          return Status::Ok();
        };
        // One snapshot: first writes, then rewrites.
        auto run_one = [&]() -> Status {
          SNAPSET_RETURN_IF_ERROR(DeleteAllSnapshots(*vol_));
          SNAPSET_RETURN_IF_ERROR(vol_->Flush());
          if (auto s = vol_->CreateSnapshot("s"); !s.ok()) return s.status();
          auto p = Writes(*vol_, w.offs, w.io, t);
          if (!p.ok()) return p.status();
          if (p->chunks_copied == 0)
            return Status::Internal(what + ": the first writes after a snapshot copied nothing");
          first = *p;
          p = Writes(*vol_, w.offs, w.io, t);
          if (!p.ok()) return p.status();
          rewrite = *p;
          return CheckNoOverflow();
        };
        // Sixteen snapshots, with every 16th offset written in between.
        auto run_sixteen = [&]() -> Status {
          SNAPSET_RETURN_IF_ERROR(DeleteAllSnapshots(*vol_));
          for (int k = 1; k <= 15; ++k) {
            if (auto s = vol_->CreateSnapshot("k" + std::to_string(k)); !s.ok()) return s.status();
            if (auto p = Writes(*vol_, touch, w.io, 4); !p.ok()) return p.status();
          }
          if (auto s = vol_->CreateSnapshot("k16"); !s.ok()) return s.status();
          if (vol_->stats().snapshots != 16) return Status::Internal("expected 16 live snapshots");
          auto p = Writes(*vol_, w.offs, w.io, t);
          if (!p.ok()) return p.status();
          sixteen = *p;
          return CheckNoOverflow();
        };
        // Even reps: 1 snapshot, no snapshot, 16; odd reps: 16, no snapshot,
        // 1. The baseline always sits next to the passes it is divided by.
        if (rep % 2 == 0) {
          SNAPSET_RETURN_IF_ERROR(run_one());
          SNAPSET_RETURN_IF_ERROR(run_nosnap());
          SNAPSET_RETURN_IF_ERROR(run_sixteen());
        } else {
          SNAPSET_RETURN_IF_ERROR(run_sixteen());
          SNAPSET_RETURN_IF_ERROR(run_nosnap());
          SNAPSET_RETURN_IF_ERROR(run_one());
        }
        SNAPSET_RETURN_IF_ERROR(DeleteAllSnapshots(*vol_));
        Record(key + ".nosnap", what + ": no snapshot", nosnap, w.io);
        Record(key + ".first", what + ": first write after a snapshot", first, w.io);
        Record(key + ".rewrite", what + ": rewrite of copied chunks", rewrite, w.io);
        Record(key + ".first16", what + ": first write, 16 snapshots", sixteen, w.io);
        const bool seq = w.io >= kSeqIo;
        Ratio(key + ".first_over_nosnap", what + ": first write after snapshot / no snapshot",
              double(nosnap.ns), double(first.ns), seq ? 1 : 0, 0.4, seq ? ">= 0.4" : "");
        Ratio(key + ".rewrite_over_nosnap", what + ": rewrite / no snapshot", double(nosnap.ns),
              double(rewrite.ns), 1, 0.9, ">= 0.9");
        Ratio(key + ".16_over_1", what + ": first write, 16 snapshots / 1 snapshot",
              double(first.ns), double(sixteen.ns), 1, 0.9, ">= 0.9");
      }
    }
  }
  return Status::Ok();
}

// -------------------------------------------------------------- the peer

Status Bench::PeerArm() {
  if (!o_.qemu) {
    qemu_note_ = "skipped (--no-qemu)";
  } else if (!HaveProgram(o_.qemu_img)) {
    qemu_note_ = "qemu-img not found (Debian: qemu-utils)";
  } else if (!HaveProgram("stdbuf")) {
    qemu_note_ = "stdbuf not found (coreutils): cannot time qemu-img from its first line";
  }
  const uint32_t chunk = vol_->chunk_size();
  std::vector<uint64_t> offs;
  for (size_t i = 0; i < sc_.peer_n; ++i) offs.push_back(sc_.peer_offset + i * chunk);
  const std::string overlay = P("overlay.qcow2");
  const std::string n = std::to_string(sc_.peer_n);

  // Timed from the "Sending" line (image open) to the process's exit, so
  // the final flush and the close are inside; returns 4 KiB writes per s.
  auto qemu_bench = [&](const std::string& fmt, const std::string& cache, const std::string& file,
                        int depth) -> Result<double> {
    std::vector<std::string> argv = {"stdbuf", "-oL", o_.qemu_img, "bench", "-f", fmt, "-w",
                                     "-t", cache};
    if (cache == "none") argv.push_back("-n");
    for (const std::string& a :
         {std::string("-c"), n, std::string("-d"), std::to_string(depth), std::string("-s"),
          std::to_string(kRandIo), std::string("-S"), std::to_string(chunk), std::string("-o"),
          std::to_string(sc_.peer_offset), "--flush-interval=" + n, file})
      argv.push_back(a);
    auto r = SpawnTimed(argv, "Sending");
    if (!r.ok()) return r.status();
    if (r->exit_code != 0 || !r->marker_ns)
      return Status::Unavailable("qemu-img bench failed (" + std::to_string(r->exit_code) +
                                 "): " + r->output);
    return double(sc_.peer_n) / (double(r->exit_ns - r->marker_ns) / 1e9);
  };
  // extended_l2: 32 sub-clusters per cluster, so a 4 KiB write into a
  // fresh cluster copies nothing from the base (qcow2's answer to the same
  // problem the engine's copy has).
  auto make_overlay = [&](bool extended_l2) -> Status {
    std::error_code ec;
    std::filesystem::remove(overlay, ec);
    std::string opts = "cluster_size=" + std::to_string(chunk);
    if (extended_l2) opts += ",extended_l2=on";
    auto r = SpawnTimed({o_.qemu_img, "create", "-q", "-f", "qcow2", "-o", opts, "-b", origin_,
                         "-F", "raw", overlay},
                        "");
    if (!r.ok()) return r.status();
    if (r->exit_code != 0) return Status::Unavailable("qemu-img create failed: " + r->output);
    return Status::Ok();
  };

  for (int rep = 0; rep < sc_.reps; ++rep) {
    for (int t : o_.threads) {
      if (g_stop) return Status::Unavailable("interrupted by a signal");
      std::fprintf(stderr, "rep %d/%d: peer (4 KiB into fresh chunks), depth %d...\n", rep + 1,
                   sc_.reps, t);
      const std::string key = "peer.t" + std::to_string(t);
      const std::string what = "stride4K T" + std::to_string(t);
      double eng_first = 0, eng_nosnap = 0, q_raw = 0, q_wb = 0, q_l2 = 0, q_none = 0;
      // The engine and qemu-img take turns going first.
      for (int half = 0; half < 2; ++half) {
        if ((half == 0) == (rep % 2 == 0)) {
          SNAPSET_RETURN_IF_ERROR(DeleteAllSnapshots(*vol_));
          SNAPSET_RETURN_IF_ERROR(vol_->Flush());
          auto ns = Writes(*vol_, offs, kRandIo, t);
          if (!ns.ok()) return ns.status();
          if (auto s = vol_->CreateSnapshot("p"); !s.ok()) return s.status();
          auto first = Writes(*vol_, offs, kRandIo, t);
          if (!first.ok()) return first.status();
          SNAPSET_RETURN_IF_ERROR(CheckNoOverflow());
          SNAPSET_RETURN_IF_ERROR(vol_->DeleteSnapshot("p"));
          SNAPSET_RETURN_IF_ERROR(vol_->Flush());
          Record(key + ".engine_nosnap", what + ": engine, no snapshot", *ns, kRandIo);
          Record(key + ".engine_first", what + ": engine, first write after a snapshot", *first,
                 kRandIo);
          eng_first = first->Iops();
          eng_nosnap = ns->Iops();
        } else if (qemu_note_.empty()) {
          auto raw = qemu_bench("raw", "writeback", origin_, t);
          if (!raw.ok()) return raw.status();
          SNAPSET_RETURN_IF_ERROR(make_overlay(false));
          auto wb = qemu_bench("qcow2", "writeback", overlay, t);
          if (!wb.ok()) return wb.status();
          SNAPSET_RETURN_IF_ERROR(make_overlay(true));
          auto l2 = qemu_bench("qcow2", "writeback", overlay, t);
          if (!l2.ok()) return l2.status();
          SNAPSET_RETURN_IF_ERROR(make_overlay(false));
          auto none = qemu_bench("qcow2", "none", overlay, t);
          if (!none.ok()) return none.status();
          std::error_code ec;
          std::filesystem::remove(overlay, ec);
          q_raw = *raw;
          q_wb = *wb;
          q_l2 = *l2;
          q_none = *none;
        }
      }
      const std::string na = qemu_note_;
      auto peer_row = [&](const std::string& id, const std::string& label, double v) {
        Metric& m = abs_.Get(id, label, "IOPS");
        if (na.empty()) {
          m.s.Add(v);
        } else {
          m.na = true;
          m.note = na;
        }
      };
      peer_row(key + ".qemu_raw", what + ": qemu-img bench raw base (-t writeback)", q_raw);
      peer_row(key + ".qcow2_wb", what + ": qemu-img bench qcow2 overlay (-t writeback)", q_wb);
      peer_row(key + ".qcow2_l2ext_wb",
               what + ": qemu-img bench qcow2 overlay, extended_l2=on (-t writeback)", q_l2);
      peer_row(key + ".qcow2_none", what + ": qemu-img bench qcow2 overlay (-t none -n)", q_none);
      Ratio(key + ".engine_first_over_nosnap", what + ": engine first write / engine no snapshot",
            eng_first, eng_nosnap);
      auto peer_ratio = [&](const std::string& id, const std::string& label, double num,
                            double den, int kind, double bound, const std::string& target) {
        if (na.empty()) {
          Ratio(id, label, num, den, kind, bound, target);
        } else {
          Metric& m = ratio_.Get(id, label, "x");
          m.na = true;
          m.note = na;
          m.kind = kind;
          m.bound = bound;
          m.target_text = target;
        }
      };
      peer_ratio(key + ".qcow2_first_over_raw",
                 what + ": qcow2 first write / raw (qemu-img, writeback)", q_wb, q_raw, 0, 0, "");
      peer_ratio(key + ".engine_over_qcow2_wb",
                 what + ": engine first write / qcow2 first write (writeback)", eng_first, q_wb, 1,
                 1.0, ">= 1.0");
      peer_ratio(key + ".engine_over_qcow2_l2ext_wb",
                 what + ": engine first write / qcow2 extended_l2=on first write (writeback)",
                 eng_first, q_l2, 1, 0.8, ">= 0.8");
      peer_ratio(key + ".engine_over_qcow2_none",
                 what + ": engine first write / qcow2 first write (-t none, reference)",
                 eng_first, q_none, 0, 0, "");
    }
  }
  return Status::Ok();
}

// ------------------------------------------------------------------- reads

Status Bench::ReadArms() {
  std::fprintf(stderr, "reads: copying the read region into a snapshot's diff area...\n");
  SNAPSET_RETURN_IF_ERROR(DeleteAllSnapshots(*vol_));
  if (auto s = vol_->CreateSnapshot("r"); !s.ok()) return s.status();
  const std::vector<uint64_t> seq = SeqOffsets(0, sc_.read_bytes, kSeqIo);
  if (auto p = Writes(*vol_, seq, kSeqIo, 4); !p.ok()) return p.status();
  const uint64_t chunks = sc_.read_bytes / vol_->chunk_size();
  if (vol_->stats().slots_used < chunks)
    return Status::Internal("the read region was not copied to the diff area");
  SNAPSET_RETURN_IF_ERROR(CheckNoOverflow());

  std::vector<uint64_t> seq_cached;
  for (int l = 0; l < sc_.cached_read_loops; ++l)
    seq_cached.insert(seq_cached.end(), seq.begin(), seq.end());
  auto rand_reads = [&](size_t n) {
    std::mt19937_64 rng(3);
    std::vector<uint64_t> v;
    for (size_t i = 0; i < n; ++i) v.push_back((rng() % (sc_.read_bytes / kRandIo)) * kRandIo);
    return v;
  };
  const std::vector<uint64_t> rand_cached = rand_reads(sc_.cached_rand_reads);
  const std::vector<uint64_t> rand_uncached = rand_reads(sc_.uncached_rand_reads);
  // Warm-up: everything the cached passes read is in the page cache.
  if (auto p = Reads(*vol_, "", seq, kSeqIo, 1); !p.ok()) return p.status();
  if (auto p = Reads(*vol_, "r", seq, kSeqIo, 1); !p.ok()) return p.status();

  Series residency;
  for (int rep = 0; rep < sc_.reps; ++rep) {
    for (bool cached : {true, false}) {
      for (bool sequential : {true, false}) {
        for (int t : o_.threads) {
          if (g_stop) return Status::Unavailable("interrupted by a signal");
          const size_t io = sequential ? kSeqIo : kRandIo;
          const auto& offs = sequential ? (cached ? seq_cached : seq)
                                        : (cached ? rand_cached : rand_uncached);
          const std::string key = std::string("read.") + (sequential ? "seq1M" : "rand4K") +
                                  ".t" + std::to_string(t) + (cached ? ".cached" : ".uncached");
          const std::string what = std::string(sequential ? "seq1M" : "rand4K") + " T" +
                                   std::to_string(t) + (cached ? " cached" : " uncached");
          double thr[2];
          for (int k = 0; k < 2; ++k) {
            const int which = (rep % 2 == 0) ? k : 1 - k;  // 0 origin, 1 snapshot
            if (!cached) {
              for (const std::string& f : {origin_, diff_}) {
                auto r = DropCache(f);
                if (!r.ok()) return r.status();
                residency.Add(*r);
              }
            }
            auto p = Reads(*vol_, which ? "r" : "", offs, io, t);
            if (!p.ok()) return p.status();
            if (which == 1 && p->diff.reads == 0)
              return Status::Internal("snapshot reads did not reach the diff area");
            Record(key + (which ? ".snapshot" : ".origin"),
                   what + (which ? ": snapshot (chunks in the diff area)" : ": origin"), *p, io);
            thr[which] = double(p->bytes) / double(p->ns);
          }
          Ratio(key + ".snap_over_origin", what + ": snapshot read / origin read", thr[1], thr[0],
                1, 0.9, ">= 0.9");
        }
      }
    }
  }
  char b[160];
  std::snprintf(b, sizeof b,
                "uncached passes: pages of origin and diff-area files still resident after "
                "fdatasync + POSIX_FADV_DONTNEED: median %.2f%%, max %.2f%% (mincore)",
                residency.Median() * 100, residency.Max() * 100);
  notes_.push_back(b);
  return DeleteAllSnapshots(*vol_);
}

// ------------------------------------------------------------------ memory

Status Bench::MemoryArm() {
  std::fprintf(stderr, "memory: first writes over %" PRIu64 " MiB...\n", sc_.mem_bytes / kMiB);
  SNAPSET_RETURN_IF_ERROR(DeleteAllSnapshots(*vol_));
  SNAPSET_RETURN_IF_ERROR(vol_->Flush());
  const std::vector<uint64_t> offs = SeqOffsets(0, sc_.mem_bytes, kSeqIo);
  const cow::Stats s0 = vol_->stats();
  ::malloc_trim(0);  // what earlier arms freed goes back, so the growth is the index's
  const auto rss0 = Rss();
  if (auto s = vol_->CreateSnapshot("m"); !s.ok()) return s.status();
  if (auto p = Writes(*vol_, offs, kSeqIo, 4); !p.ok()) return p.status();
  const cow::Stats s1 = vol_->stats();
  ::malloc_trim(0);  // the writer threads' freed scratch buffers go back too
  const auto rss1 = Rss();
  SNAPSET_RETURN_IF_ERROR(CheckNoOverflow());
  const double gib = double(s1.diff_bytes_used - s0.diff_bytes_used) / double(kGiB);
  const double mappings = double(s1.slots_used - s0.slots_used);
  if (gib <= 0 || mappings <= 0) return Status::Internal("the memory arm copied nothing");
  const double index = double(s1.index_memory_bytes) - double(s0.index_memory_bytes);
  const double anon = double(int64_t(rss1.first) - int64_t(rss0.first));
  abs_.Get("mem.index_per_gib", "index_memory_bytes per GiB of copied data (64 KiB chunks)",
           "KiB/GiB")
      .s.Add(index / gib / double(kKiB));
  abs_.Get("mem.index_per_mapping", "index_memory_bytes per mapping (one copied chunk)", "bytes")
      .s.Add(index / mappings);
  abs_.Get("mem.rss_per_gib", "RssAnon growth per GiB of copied data (cross-check)", "KiB/GiB")
      .s.Add(anon / gib / double(kKiB));
  char b[200];
  std::snprintf(b, sizeof b,
                "memory arm: %.0f MiB copied (%.0f mappings); index %.0f -> %.0f bytes; RssAnon "
                "%.1f -> %.1f MiB",
                gib * 1024, mappings, double(s0.index_memory_bytes),
                double(s1.index_memory_bytes), double(rss0.first) / double(kMiB),
                double(rss1.first) / double(kMiB));
  notes_.push_back(b);
  return DeleteAllSnapshots(*vol_);
}

// ------------------------------------------------------------------ output

std::string Verdict(const Metric& m) {
  if (m.kind == 0) return "";
  if (m.na || m.s.empty()) return "not measured";
  const double med = m.s.Median();
  const bool met = m.kind > 0 ? med >= m.bound : med <= m.bound;
  return met ? "met" : "missed";
}

std::string Num(double v) {
  if (v == 0) return "0";
  const double a = std::abs(v);
  if (a >= 1000) return Fmt("%.0f", v);
  if (a >= 100) return Fmt("%.1f", v);
  if (a >= 1) return Fmt("%.2f", v);
  return Fmt("%.3f", v);
}

void Bench::Print(FILE* out) {
  utsname u{};
  ::uname(&u);
  std::fprintf(out,
               "## cow_engine_bench: %u CPUs, Linux %s %s; files in %s (%s); chunk %u KiB; "
               "origin %" PRIu64 " MiB; %d reps;%s threads",
               std::thread::hardware_concurrency(), u.release, u.machine, dir_.c_str(),
               OnTmpfs(dir_) ? "tmpfs" : "not tmpfs", cow::kDefaultChunkSize / 1024,
               sc_.origin_bytes / kMiB, sc_.reps, g_rt ? " SCHED_FIFO (--rt);" : "");
  for (int t : o_.threads) std::fprintf(out, " %d", t);
  std::fprintf(out, "%s\n\n", o_.quick ? " (--quick: sizes too small to mean anything)" : "");

  std::fprintf(out, "### Ratios (paired in each rep; median, min..max over reps)\n\n");
  std::fprintf(out, "| ratio | id | median | min | max | target | verdict |\n");
  std::fprintf(out, "|---|---|---:|---:|---:|---|---|\n");
  for (const Metric& m : ratio_.rows()) {
    if (m.na) {
      std::fprintf(out, "| %s | `%s` | n/a | | | %s | not measured: %s |\n", m.label.c_str(),
                   m.id.c_str(), m.target_text.c_str(), m.note.c_str());
      continue;
    }
    std::fprintf(out, "| %s | `%s` | **%s** | %s | %s | %s | %s |\n", m.label.c_str(),
                 m.id.c_str(), Fmt("%.3f", m.s.Median()).c_str(), Fmt("%.3f", m.s.Min()).c_str(),
                 Fmt("%.3f", m.s.Max()).c_str(), m.target_text.c_str(),
                 Verdict(m) == "missed" ? "**MISSED**" : Verdict(m).c_str());
  }

  std::fprintf(out, "\n### Each arm (median, min..max over reps)\n\n");
  std::fprintf(out, "| arm | id | unit | median | min | max |\n");
  std::fprintf(out, "|---|---|---|---:|---:|---:|\n");
  for (const Metric& m : abs_.rows()) {
    if (m.na) {
      std::fprintf(out, "| %s | `%s` | %s | n/a | | | \n", m.label.c_str(), m.id.c_str(),
                   m.unit.c_str());
      continue;
    }
    std::fprintf(out, "| %s | `%s` | %s | %s | %s | %s |\n", m.label.c_str(), m.id.c_str(),
                 m.unit.c_str(), Num(m.s.Median()).c_str(), Num(m.s.Min()).c_str(),
                 Num(m.s.Max()).c_str());
  }
  std::fprintf(out, "\n### Where the time goes in the write passes (median over reps)\n\n");
  std::fprintf(out,
               "| arm | id | pass ms | ms per write | diff-area fdatasyncs per write | group "
               "commits per write | share of the pass in diff-area fdatasync | writers "
               "waiting for a CPU | origin fdatasyncs | MiB written to the diff area |\n");
  std::fprintf(out, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  for (const Metric& m : abs_.rows()) {
    Metric* syncs = diag_.Find(m.id + ".diff_syncs_per_op");
    if (!syncs || m.id.rfind("read.", 0) == 0) continue;
    std::fprintf(out, "| %s | `%s` | %s | %s | %s | %s | %s%% | %s%% | %s | %s |\n", m.label.c_str(),
                 m.id.c_str(), Num(diag_.Find(m.id + ".ms")->s.Median()).c_str(),
                 Fmt("%.3f", diag_.Find(m.id + ".ms_per_op")->s.Median()).c_str(),
                 Fmt("%.3f", syncs->s.Median()).c_str(),
                 Fmt("%.3f", diag_.Find(m.id + ".commits_per_op")->s.Median()).c_str(),
                 Fmt("%.0f", diag_.Find(m.id + ".diff_sync_share")->s.Median()).c_str(),
                 Fmt("%.0f", diag_.Find(m.id + ".cpu_wait_share")->s.Median()).c_str(),
                 Num(diag_.Find(m.id + ".origin_syncs")->s.Median()).c_str(),
                 Num(diag_.Find(m.id + ".copied_mib")->s.Median()).c_str());
  }
  std::fprintf(out,
               "\npass ms includes the final Flush; ms per write = pass ms / writes; writers "
               "waiting for a CPU = the writer threads' (and the Flush's) runnable-but-not-"
               "running time over their time (/proc/thread-self/schedstat).\n");
  // One writer's first write against the floor of its two synced writes.
  const Metric* pc = abs_.Find("probe.pair_chunk");
  const Metric* pm = abs_.Find("probe.pair_1m");
  for (const char* id : {"write.rand4K.t1.first", "peer.t1.engine_first", "write.seq1M.t1.first"}) {
    const Metric* d = diag_.Find(std::string(id) + ".ms_per_op");
    const Metric* floor = std::strstr(id, "seq1M") ? pm : pc;
    if (!d || !floor || floor->s.empty()) continue;
    std::fprintf(out,
                 "- `%s`: %s ms per write (with its share of the final Flush); the same two "
                 "synced writes alone on a plain file (the floor, median of the reps) take %s "
                 "ms, %.0f%% of that.\n",
                 id, Fmt("%.3f", d->s.Median()).c_str(), Fmt("%.3f", floor->s.Median()).c_str(),
                 100.0 * floor->s.Median() / d->s.Median());
  }
  if (!probe_cpu_wait_.empty())
    std::fprintf(out,
                 "- the floor probes spent %.0f%% (median; %.0f..%.0f%%) of their time runnable "
                 "but waiting for a CPU%s.\n",
                 probe_cpu_wait_.Median(), probe_cpu_wait_.Min(), probe_cpu_wait_.Max(),
                 g_rt ? " (SCHED_FIFO, --rt)" : "");
  if (!notes_.empty()) std::fprintf(out, "\n");
  for (const auto& n : notes_) std::fprintf(out, "- %s\n", n.c_str());
  if (!qemu_note_.empty()) std::fprintf(out, "- peer arm: %s\n", qemu_note_.c_str());
}

std::string JsonString(const std::string& s) {
  std::string o = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      o += '\\';
      o += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char b[8];
      std::snprintf(b, sizeof b, "\\u%04x", unsigned(static_cast<unsigned char>(c)));
      o += b;
    } else {
      o += c;
    }
  }
  return o + "\"";
}

void PrintMetricsJson(FILE* out, const char* name, Report& r, bool last) {
  std::fprintf(out, "  %s: [\n", JsonString(name).c_str());
  for (size_t i = 0; i < r.rows().size(); ++i) {
    const Metric& m = r.rows()[i];
    std::fprintf(out, "    {\"id\": %s, \"label\": %s, \"unit\": %s", JsonString(m.id).c_str(),
                 JsonString(m.label).c_str(), JsonString(m.unit).c_str());
    if (m.na) {
      std::fprintf(out, ", \"measured\": false, \"note\": %s", JsonString(m.note).c_str());
    } else {
      std::fprintf(out, ", \"measured\": true, \"median\": %.6g, \"min\": %.6g, \"max\": %.6g",
                   m.s.Median(), m.s.Min(), m.s.Max());
      std::fprintf(out, ", \"samples\": [");
      for (size_t k = 0; k < m.s.v.size(); ++k)
        std::fprintf(out, "%s%.6g", k ? ", " : "", m.s.v[k]);
      std::fprintf(out, "]");
    }
    if (m.kind != 0)
      std::fprintf(out, ", \"target\": %s, \"verdict\": %s", JsonString(m.target_text).c_str(),
                   JsonString(Verdict(m)).c_str());
    std::fprintf(out, "}%s\n", i + 1 < r.rows().size() ? "," : "");
  }
  std::fprintf(out, "  ]%s\n", last ? "" : ",");
}

void Bench::PrintJson(FILE* out) {
  utsname u{};
  ::uname(&u);
  std::fprintf(out, "{\n  \"benchmark\": \"cow_engine_bench\",\n  \"quick\": %s,\n  \"rt\": %s,\n",
               o_.quick ? "true" : "false", g_rt ? "true" : "false");
  std::fprintf(out, "  \"machine\": %s,\n  \"dir\": %s,\n  \"reps\": %d,\n",
               JsonString(std::to_string(std::thread::hardware_concurrency()) + " CPUs, Linux " +
                          u.release + " " + u.machine)
                   .c_str(),
               JsonString(dir_).c_str(), sc_.reps);
  std::fprintf(out, "  \"chunk_size\": %u,\n  \"origin_bytes\": %" PRIu64 ",\n  \"notes\": [",
               cow::kDefaultChunkSize, sc_.origin_bytes);
  for (size_t i = 0; i < notes_.size(); ++i)
    std::fprintf(out, "%s%s", i ? ", " : "", JsonString(notes_[i]).c_str());
  std::fprintf(out, "],\n");
  PrintMetricsJson(out, "ratios", ratio_, false);
  PrintMetricsJson(out, "arms", abs_, false);
  PrintMetricsJson(out, "diagnostics", diag_, true);
  std::fprintf(out, "}\n");
}

int Bench::Run() {
  const std::string load0 = LoadAverage();
  const int64_t t0 = NowNs();
  Status s = Setup();
  if (s.ok()) s = SnapshotCreation();
  if (s.ok()) s = MemoryArm();  // first: the heap has not grown yet, so RSS can show the index
  if (s.ok()) s = WriteArms();
  if (s.ok()) s = PeerArm();
  if (s.ok()) s = ReadArms();
  if (!s.ok()) {
    std::fprintf(stderr, "cow_engine_bench: %s\n", s.ToString().c_str());
    return g_stop ? 130 : 1;
  }
  vol_.reset();
  notes_.push_back("load average " + load0 + " at the start, " + LoadAverage() +
                   " at the end; run took " + Fmt("%.0f", double(NowNs() - t0) / 1e9) + " s");
  if (o_.json) {
    Print(stderr);
    PrintJson(stdout);
  } else {
    Print(stdout);
  }
  return 0;
}

// Removes the benchmark's own directory on every way out.
struct DirGuard {
  std::string path;
  ~DirGuard() {
    if (path.empty()) return;
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

int Main(const Options& o) {
  std::string parent = o.dir.empty() ? "/var/tmp" : o.dir;
  std::string tmpl = parent + "/snapset-cow-bench.XXXXXX";
  if (!::mkdtemp(tmpl.data())) {
    std::fprintf(stderr, "cow_engine_bench: cannot create a directory in %s: %s\n",
                 parent.c_str(), std::strerror(errno));
    return 2;
  }
  DirGuard guard{tmpl};
  if (OnTmpfs(tmpl))
    std::fprintf(stderr, "cow_engine_bench: warning: %s is on tmpfs; fdatasync costs nothing "
                         "there and the ratios do not describe a disk\n",
                 tmpl.c_str());
  if (o.rt) {
    if (Status s = MakeRealtime(); !s.ok()) {
      std::fprintf(stderr, "cow_engine_bench: --rt: cannot run SCHED_FIFO here (%s)\n",
                   s.message().c_str());
      return 2;
    }
    g_rt = true;
  }
  Scale sc = o.quick ? QuickScale() : FullScale();
  if (o.reps > 0) sc.reps = o.reps;
  Bench b(o, sc, tmpl);
  return b.Run();
}

}  // namespace
}  // namespace snapset::bench

int main(int argc, char** argv) {
  snapset::bench::Options o;
  if (!snapset::bench::ParseArgs(argc, argv, &o)) return 1;
  struct sigaction sa {};
  sa.sa_handler = snapset::bench::OnSignal;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) ::sigaction(sig, &sa, nullptr);
  try {
    return snapset::bench::Main(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cow_engine_bench: %s\n", e.what());
    return 1;
  }
}
