// kill -9 of snapset-cowd at random moments while a writer writes through
// the FUSE origin and takes snapshots. After each kill the daemon restarts
// on the same state and must show:
//   - every write acknowledged before a completed fsync on the origin (a
//     block may also hold a later write, whether or not it was acknowledged);
//   - every snapshot byte-exact with the origin at the instant it was
//     taken, or marked invalid with a reason; one whose creation was
//     acknowledged must exist (unless the overflow history names it).
// COWD_CRASH_TRIALS overrides the number of trials (20).
#define BOOST_TEST_MODULE cowd_crash_test
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/software-cow/daemon/cowd_fixture.hpp"

using namespace std::chrono_literals;
using snapset::Status;
using snapset::cow::CowdClient;
using namespace snapset::test;
using namespace snapset::test::cowd;

namespace {

constexpr uint64_t kBlock = 4096;
constexpr uint64_t kVolumeBytes = 8 * 1024 * 1024;
constexpr uint64_t kBlocks = kVolumeBytes / kBlock;

uint64_t Mix(uint64_t x) {  // splitmix64
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Block `b` as written by write number `seq`; seq 0 is "never written".
void Fill(uint64_t b, uint64_t seq, char* out) {
  if (seq == 0) {
    std::memset(out, 0, kBlock);
    return;
  }
  uint64_t words[kBlock / 8];
  words[0] = seq;
  words[1] = b;
  uint64_t h = Mix(seq * kBlocks + b);
  for (size_t i = 2; i < kBlock / 8; ++i) words[i] = h = Mix(h);
  std::memcpy(out, words, kBlock);
}

uint64_t SeqOf(const char* block) {
  uint64_t seq;
  std::memcpy(&seq, block, 8);
  return seq;
}

struct SnapshotAttempt {
  std::string id;
  std::vector<uint64_t> content;  // the origin's seqs at that instant
  bool acknowledged = false;
};

// What the writer did, for the checks after the kill.
struct Model {
  std::vector<uint64_t> current = std::vector<uint64_t>(kBlocks, 0);
  std::vector<uint64_t> durable = std::vector<uint64_t>(kBlocks, 0);
  // Per block, every seq issued since the last completed fsync (including
  // the write in flight at the kill).
  std::vector<std::vector<uint64_t>> since_fsync = std::vector<std::vector<uint64_t>>(kBlocks);
  std::vector<SnapshotAttempt> snapshots;
  uint64_t writes = 0, fsyncs = 0;
};

// Writes, fsyncs and snapshots until the daemon is gone.
void Writer(const std::string& origin, CowdClient& client, uint64_t seed, Model& m) {
  int fd = ::open(origin.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return;
  std::mt19937_64 rng(seed);
  std::vector<char> buf(16 * kBlock);
  uint64_t seq = 0;
  auto last_snapshot = std::chrono::steady_clock::now();
  for (;;) {
    if (std::chrono::steady_clock::now() - last_snapshot > 80ms) {
      last_snapshot = std::chrono::steady_clock::now();
      m.snapshots.push_back({"s" + std::to_string(m.snapshots.size()), m.current, false});
      auto r = client.CreateSnapshot("crash", m.snapshots.back().id);
      if (!r.ok()) break;
      m.snapshots.back().acknowledged = true;
      continue;
    }
    if (rng() % 20 == 0) {
      if (::fsync(fd) != 0) break;
      ++m.fsyncs;
      m.durable = m.current;
      for (auto& v : m.since_fsync) v.clear();
      continue;
    }
    uint64_t n = 1 + rng() % 16;
    uint64_t first = rng() % (kBlocks - n + 1);
    ++seq;
    for (uint64_t i = 0; i < n; ++i) {
      m.since_fsync[first + i].push_back(seq);
      Fill(first + i, seq, buf.data() + i * kBlock);
    }
    ssize_t w = ::pwrite(fd, buf.data(), n * kBlock, off_t(first * kBlock));
    if (w != ssize_t(n * kBlock)) break;
    for (uint64_t i = 0; i < n; ++i) m.current[first + i] = seq;
    ++m.writes;
  }
  ::close(fd);
}

std::string ReadAll(const std::string& path, std::string* error) {
  std::string data(kVolumeBytes, '\0');
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *error = "open " + path + ": " + std::strerror(errno);
    return "";
  }
  size_t got = 0;
  while (got < data.size()) {
    ssize_t n = ::pread(fd, data.data() + got, data.size() - got, off_t(got));
    if (n <= 0) {
      *error = "read " + path + " at " + std::to_string(got) + ": " +
               (n < 0 ? std::strerror(errno) : "end of file");
      ::close(fd);
      return "";
    }
    got += size_t(n);
  }
  ::close(fd);
  return data;
}

void Trial(int trial, uint64_t seed, int* invalid_snapshots, uint64_t* checked_snapshots) {
  TempDir dir;
  Daemon d(dir.str());
  Status started = d.Start();
  BOOST_REQUIRE_MESSAGE(started.ok(), started.ToString());
  auto client = d.Client(5s);
  BOOST_REQUIRE(client.ok());
  snapset::cow::CreateVolumeRequest req;
  req.name = "crash";
  req.size_bytes = kVolumeBytes;
  req.chunk_size = 16 * 1024;
  auto vol = (*client)->CreateVolume(req);
  BOOST_REQUIRE_MESSAGE(vol.ok(), vol.status().ToString());

  Model m;
  std::mt19937_64 rng(seed);
  auto kill_after = std::chrono::milliseconds(150 + rng() % 850);
  std::thread writer([&] { Writer(vol->served_origin, **client, seed + 1, m); });
  std::this_thread::sleep_for(kill_after);
  d.KillLeavingMount();
  writer.join();
  client->reset();
  LazyUnmount(d.mount());

  started = d.Start();
  BOOST_REQUIRE_MESSAGE(started.ok(), "restart after kill -9: " + started.ToString());
  auto again = d.Client(10s);
  BOOST_REQUIRE(again.ok());
  auto status = (*again)->GetVolume("crash");
  BOOST_REQUIRE_MESSAGE(status.ok(), "volume after kill -9: " + status.status().ToString() +
                                         "\n" + d.log());

  std::string error;
  std::vector<char> expect(kBlock);
  // The origin: each block holds its durable write or one issued later.
  std::string origin = ReadAll(vol->served_origin, &error);
  BOOST_REQUIRE_MESSAGE(error.empty(), error);
  int bad_blocks = 0;
  for (uint64_t b = 0; b < kBlocks; ++b) {
    const char* got = origin.data() + b * kBlock;
    uint64_t seq = SeqOf(got);
    bool allowed = seq == m.durable[b];
    for (uint64_t s : m.since_fsync[b]) allowed = allowed || s == seq;
    if (allowed) {
      Fill(b, seq, expect.data());
      allowed = std::memcmp(expect.data(), got, kBlock) == 0;
    }
    if (!allowed && ++bad_blocks <= 5) {
      BOOST_ERROR("trial " << trial << " block " << b << ": holds write " << seq
                           << ", the last fsynced write was " << m.durable[b]);
    }
  }
  BOOST_TEST(bad_blocks == 0);

  // Snapshots: byte-exact, or invalid with a reason.
  auto listed = (*again)->ListSnapshots("crash");
  BOOST_REQUIRE(listed.ok());
  std::set<std::string> present;
  for (const auto& s : *listed) {
    present.insert(s.id);
    const SnapshotAttempt* a = nullptr;
    for (const auto& x : m.snapshots) {
      if (x.id == s.id) a = &x;
    }
    BOOST_REQUIRE_MESSAGE(a != nullptr, "unknown snapshot " + s.id);
    if (!s.valid) {
      ++*invalid_snapshots;
      BOOST_TEST(!s.invalid_reason.empty(), "snapshot " << s.id << " invalid without a reason");
      continue;
    }
    std::string data = ReadAll(s.path, &error);
    BOOST_REQUIRE_MESSAGE(error.empty(), error);
    int wrong = 0;
    for (uint64_t b = 0; b < kBlocks; ++b) {
      Fill(b, a->content[b], expect.data());
      if (std::memcmp(expect.data(), data.data() + b * kBlock, kBlock) != 0 && ++wrong <= 3) {
        BOOST_ERROR("trial " << trial << " snapshot " << s.id << " block " << b << ": holds write "
                             << SeqOf(data.data() + b * kBlock) << ", expected "
                             << a->content[b]);
      }
    }
    BOOST_TEST(wrong == 0);
    ++*checked_snapshots;
  }
  std::set<std::string> overflowed;
  for (const auto& e : status->overflow_events) overflowed.insert(e.snapshot_id);
  for (const auto& a : m.snapshots) {
    if (a.acknowledged && !present.count(a.id)) {
      BOOST_TEST(overflowed.count(a.id) == 1u,
                 "trial " << trial << ": acknowledged snapshot " << a.id << " is gone");
    }
  }
  BOOST_TEST_MESSAGE("trial " << trial << " seed " << seed << ": killed after "
                              << kill_after.count() << " ms, " << m.writes << " writes, "
                              << m.fsyncs << " fsyncs, " << m.snapshots.size()
                              << " snapshots attempted, " << listed->size() << " present");
  again->reset();
  int stop = d.Stop();
  BOOST_TEST(stop == 0, "clean stop after the check: status " << stop << "\n" << d.log());
}

}  // namespace

BOOST_AUTO_TEST_CASE(kill_9_never_loses_fsynced_writes_nor_corrupts_snapshots) {
  if (!Available(MissingPrerequisite(false))) return;
  int trials = 20;
  if (const char* t = std::getenv("COWD_CRASH_TRIALS")) trials = std::max(1, std::atoi(t));
  uint64_t base = std::random_device{}();
  if (const char* s = std::getenv("COWD_CRASH_SEED")) base = std::strtoull(s, nullptr, 0);
  BOOST_TEST_MESSAGE("seed " << base << " (COWD_CRASH_SEED reproduces it)");
  int invalid = 0;
  uint64_t checked = 0;
  for (int t = 0; t < trials; ++t) {
    BOOST_TEST_CONTEXT("trial " << t << " seed " << base + uint64_t(t) * 1000) {
      Trial(t, base + uint64_t(t) * 1000, &invalid, &checked);
    }
  }
  BOOST_TEST_MESSAGE(checked << " snapshots checked byte for byte, " << invalid
                             << " reported invalid");
  BOOST_TEST(checked > 0u);
}
