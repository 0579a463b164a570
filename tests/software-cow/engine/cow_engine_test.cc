// The copy-on-write engine's behaviour as a user of CowVolume relies on it:
// snapshots read back as they were, one copy serves many snapshots, a full
// diff area sacrifices the oldest snapshot and never an origin write,
// space comes back on delete, revert, changed-chunk lists, and errors that
// say what was wrong and lose nothing.
#define BOOST_TEST_MODULE cow_engine
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <shared_mutex>
#include <thread>

#include "providers/software-cow/engine/cow_volume.hpp"
#include "providers/software-cow/engine/fault_injection_fs.hpp"
#include "providers/software-cow/engine/format.hpp"
#include "providers/software-cow/engine/write_gate.hpp"
#include "tests/software-cow/engine/cow_test_util.hpp"
#include "tests/support/temp_dir.hpp"

using namespace snapset;
using namespace snapset::cow;
using snapset::cow::test::FirstDiff;
using snapset::cow::test::Pattern;
using snapset::cow::test::ReadOrigin;
using snapset::cow::test::ReadSnap;

namespace {

constexpr uint64_t KiB = 1024, MiB = 1024 * KiB;

// Diff-area bytes for exactly `slots` slots in file 0.
uint64_t DiffBytesFor(uint64_t slots, uint64_t cs) {
  return 128 * KiB + (slots * 64 + 4095) / 4096 * 4096 + slots * cs;
}

struct Fixture {
  snapset::test::TempDir dir;
  std::string origin = dir.str() + "/origin.img";
  std::string diff0 = dir.str() + "/diff0";

  std::unique_ptr<CowVolume> Make(uint64_t origin_size, uint32_t cs, uint64_t slots,
                                  FileSystem* fs = PosixFileSystem()) {
    CreateOptions o;
    o.name = "vol";
    o.origin_path = origin;
    o.origin_size = origin_size;
    o.chunk_size = cs;
    o.diff_files = {{diff0, DiffBytesFor(slots, cs)}};
    auto v = CowVolume::Create(fs, o);
    BOOST_REQUIRE_MESSAGE(v.ok(), v.status().ToString());
    return std::move(*v);
  }
  std::unique_ptr<CowVolume> Reopen(std::unique_ptr<CowVolume>& v, FileSystem* fs = PosixFileSystem()) {
    v.reset();
    auto r = CowVolume::Open(fs, diff0);
    BOOST_REQUIRE_MESSAGE(r.ok(), r.status().ToString());
    return std::move(*r);
  }
};

void Put(CowVolume& v, uint64_t off, const std::vector<uint8_t>& d) {
  Status st = v.Write(off, d.data(), d.size());
  BOOST_REQUIRE_MESSAGE(st.ok(), st.ToString());
}

void ExpectSnap(CowVolume& v, const std::string& id, const std::vector<uint8_t>& want) {
  std::vector<uint8_t> got;
  Status st = ReadSnap(v, id, &got);
  BOOST_REQUIRE_MESSAGE(st.ok(), id + ": " + st.ToString());
  BOOST_CHECK_MESSAGE(FirstDiff(got, want) == -1,
                      "snapshot " << id << " differs at offset " << FirstDiff(got, want));
}

bool Contains(const Status& st, const std::string& part) {
  return st.message().find(part) != std::string::npos;
}

size_t FilesIn(const snapset::test::TempDir& d) {
  size_t n = 0;
  for ([[maybe_unused]] auto& e : std::filesystem::directory_iterator(d.path())) ++n;
  return n;
}

}  // namespace

BOOST_AUTO_TEST_CASE(snapshot_reads_back_the_contents_at_its_creation) {
  Fixture fx;
  auto v = fx.Make(1 * MiB, 64 * KiB, 64);
  const auto before = Pattern(1, 1 * MiB);
  Put(*v, 0, before);
  BOOST_REQUIRE(v->CreateSnapshot("s1").ok());
  auto after = before;
  const auto patch = Pattern(2, 100 * KiB);
  std::copy(patch.begin(), patch.end(), after.begin() + 30 * KiB);
  Put(*v, 30 * KiB, patch);
  BOOST_CHECK(FirstDiff(ReadOrigin(*v), after) == -1);
  ExpectSnap(*v, "s1", before);
  // A piece of the snapshot, across chunk boundaries.
  std::vector<uint8_t> part(70 * KiB);
  BOOST_REQUIRE(v->ReadSnapshot("s1", 60 * KiB, part.data(), part.size()).ok());
  BOOST_CHECK(std::equal(part.begin(), part.end(), before.begin() + 60 * KiB));
  v = fx.Reopen(v);
  ExpectSnap(*v, "s1", before);
  BOOST_CHECK(FirstDiff(ReadOrigin(*v), after) == -1);
}

BOOST_AUTO_TEST_CASE(one_copy_serves_every_snapshot_that_needs_it) {
  Fixture fx;
  auto v = fx.Make(256 * KiB, 4 * KiB, 64);
  const auto base = Pattern(3, 256 * KiB);
  Put(*v, 0, base);
  for (int i = 0; i < 10; ++i) BOOST_REQUIRE(v->CreateSnapshot("s" + std::to_string(i)).ok());
  Put(*v, 8 * KiB, Pattern(4, 4 * KiB));
  BOOST_CHECK_EQUAL(v->stats().chunks_copied, 1u);
  BOOST_CHECK_EQUAL(v->stats().slots_used, 1u);
  Put(*v, 8 * KiB, Pattern(5, 4 * KiB));  // already copied since s9: no copy
  BOOST_CHECK_EQUAL(v->stats().chunks_copied, 1u);
  for (int i = 0; i < 10; ++i) ExpectSnap(*v, "s" + std::to_string(i), base);
  auto mid = ReadOrigin(*v);
  BOOST_REQUIRE(v->CreateSnapshot("s10").ok());
  Put(*v, 8 * KiB, Pattern(6, 4 * KiB));
  BOOST_CHECK_EQUAL(v->stats().chunks_copied, 2u);
  ExpectSnap(*v, "s10", mid);
  ExpectSnap(*v, "s0", base);
}

BOOST_AUTO_TEST_CASE(full_diff_area_deletes_the_oldest_snapshot_and_the_write_succeeds) {
  Fixture fx;
  auto v = fx.Make(256 * KiB, 4 * KiB, 4);
  BOOST_REQUIRE_EQUAL(v->stats().slots_total, 4u);
  Put(*v, 0, Pattern(7, 256 * KiB));
  BOOST_REQUIRE(v->CreateSnapshot("old").ok());
  for (int c = 0; c < 4; ++c) Put(*v, c * 4 * KiB, Pattern(10 + c, 4 * KiB));
  BOOST_CHECK_EQUAL(v->stats().slots_used, 4u);
  const auto at_new = ReadOrigin(*v);
  BOOST_REQUIRE(v->CreateSnapshot("new").ok());
  // Needs a fifth slot: "old" (which holds all four) must go.
  const auto patch = Pattern(20, 4 * KiB);
  Put(*v, 10 * 4 * KiB, patch);
  auto want = at_new;
  std::copy(patch.begin(), patch.end(), want.begin() + 40 * KiB);
  BOOST_CHECK(FirstDiff(ReadOrigin(*v), want) == -1);

  auto events = v->overflow_events();
  BOOST_REQUIRE_EQUAL(events.size(), 1u);
  BOOST_CHECK_EQUAL(events[0].snapshot_id, "old");
  BOOST_CHECK(events[0].reason.find("diff area full") != std::string::npos);
  BOOST_CHECK_EQUAL(v->stats().snapshots_deleted_by_overflow, 1u);
  std::vector<uint8_t> buf;
  Status st = ReadSnap(*v, "old", &buf);
  BOOST_CHECK(st.IsNotFound());
  BOOST_CHECK(Contains(st, "overflow"));
  ExpectSnap(*v, "new", at_new);
  BOOST_CHECK_EQUAL(v->stats().slots_used, 1u);

  // The history survives a reopen.
  v = fx.Reopen(v);
  BOOST_REQUIRE_EQUAL(v->overflow_events().size(), 1u);
  BOOST_CHECK_EQUAL(v->overflow_events()[0].snapshot_id, "old");
  BOOST_CHECK_EQUAL(v->stats().snapshots_deleted_by_overflow, 1u);
  ExpectSnap(*v, "new", at_new);

  // A write wider than the whole diff area while a snapshot needs it all:
  // every snapshot goes, the write still lands.
  const auto big = Pattern(21, 64 * KiB);
  Put(*v, 128 * KiB, big);
  BOOST_CHECK(v->ListSnapshots().empty());
  std::vector<uint8_t> got(64 * KiB);
  BOOST_REQUIRE(v->Read(128 * KiB, got.data(), got.size()).ok());
  BOOST_CHECK(got == big);
}

BOOST_AUTO_TEST_CASE(delete_frees_the_slots_only_it_needed) {
  Fixture fx;
  auto v = fx.Make(256 * KiB, 4 * KiB, 32);
  Put(*v, 0, Pattern(30, 256 * KiB));
  BOOST_REQUIRE(v->CreateSnapshot("a").ok());
  for (int c = 0; c < 3; ++c) Put(*v, c * 4 * KiB, Pattern(31 + c, 4 * KiB));
  BOOST_CHECK_EQUAL(v->stats().slots_used, 3u);
  BOOST_REQUIRE(v->CreateSnapshot("b").ok());
  const auto b_image = ReadOrigin(*v);
  BOOST_REQUIRE(v->CreateSnapshot("c").ok());
  Put(*v, 0, Pattern(40, 4 * KiB));  // one copy, shared by b and c
  BOOST_CHECK_EQUAL(v->stats().slots_used, 4u);
  BOOST_REQUIRE(v->DeleteSnapshot("a").ok());
  BOOST_CHECK_EQUAL(v->stats().slots_used, 1u);
  BOOST_CHECK_EQUAL(v->stats().diff_bytes_used, 4 * KiB);
  BOOST_REQUIRE(v->DeleteSnapshot("b").ok());
  BOOST_CHECK_EQUAL(v->stats().slots_used, 1u);  // c still needs it
  ExpectSnap(*v, "c", b_image);
  BOOST_REQUIRE(v->DeleteSnapshot("c").ok());
  BOOST_CHECK_EQUAL(v->stats().slots_used, 0u);
  BOOST_CHECK_EQUAL(v->stats().snapshots, 0u);
  v = fx.Reopen(v);
  BOOST_CHECK_EQUAL(v->stats().slots_used, 0u);
}

BOOST_AUTO_TEST_CASE(revert_restores_the_snapshot_and_keeps_later_snapshots) {
  Fixture fx;
  auto v = fx.Make(512 * KiB, 16 * KiB, 64);
  const auto a_image = Pattern(50, 512 * KiB);
  Put(*v, 0, a_image);
  BOOST_REQUIRE(v->CreateSnapshot("a").ok());
  Put(*v, 20 * KiB, Pattern(51, 100 * KiB));
  const auto b_image = ReadOrigin(*v);
  BOOST_REQUIRE(v->CreateSnapshot("b").ok());
  Put(*v, 200 * KiB, Pattern(52, 50 * KiB));
  Put(*v, 0, Pattern(53, 8 * KiB));

  BOOST_REQUIRE(v->Revert("a").ok());
  BOOST_CHECK(FirstDiff(ReadOrigin(*v), a_image) == -1);
  ExpectSnap(*v, "a", a_image);
  ExpectSnap(*v, "b", b_image);
  // And back to b, which was taken after a.
  BOOST_REQUIRE(v->Revert("b").ok());
  BOOST_CHECK(FirstDiff(ReadOrigin(*v), b_image) == -1);
  ExpectSnap(*v, "a", a_image);
  v = fx.Reopen(v);
  BOOST_CHECK(FirstDiff(ReadOrigin(*v), b_image) == -1);
  ExpectSnap(*v, "a", a_image);
  ExpectSnap(*v, "b", b_image);
}

BOOST_AUTO_TEST_CASE(changed_chunks_between_snapshots_and_against_the_origin) {
  Fixture fx;
  auto v = fx.Make(256 * KiB, 4 * KiB, 64);
  BOOST_REQUIRE(v->CreateSnapshot("a").ok());
  Put(*v, 1 * 4 * KiB, Pattern(60, 8 * KiB));  // chunks 1, 2
  Put(*v, 5 * 4 * KiB + 100, Pattern(61, 10));  // chunk 5
  BOOST_REQUIRE(v->CreateSnapshot("b").ok());
  Put(*v, 5 * 4 * KiB, Pattern(62, 4 * KiB));   // chunk 5
  Put(*v, 7 * 4 * KiB, Pattern(63, 4 * KiB));   // chunk 7
  Put(*v, 63 * 4 * KiB, Pattern(64, 4 * KiB));  // the last chunk
  using Runs = std::vector<std::pair<uint64_t, uint64_t>>;
  auto runs = [&](const std::string& a, const std::string& b) {
    auto r = v->ChangedChunks(a, b);
    BOOST_REQUIRE_MESSAGE(r.ok(), r.status().ToString());
    Runs out;
    for (auto& x : *r) out.push_back({x.first, x.count});
    return out;
  };
  BOOST_CHECK((runs("a", "b") == Runs{{1, 2}, {5, 1}}));
  BOOST_CHECK((runs("b", "") == Runs{{5, 1}, {7, 1}, {63, 1}}));
  BOOST_CHECK((runs("a", "") == Runs{{1, 2}, {5, 1}, {7, 1}, {63, 1}}));
  BOOST_REQUIRE(v->CreateSnapshot("c").ok());
  BOOST_CHECK((runs("c", "") == Runs{}));
  BOOST_CHECK((runs("b", "c") == Runs{{5, 1}, {7, 1}, {63, 1}}));

  auto bad = v->ChangedChunks("b", "a");
  BOOST_CHECK(bad.status().IsInvalidArgument());
  BOOST_CHECK(Contains(bad.status(), "not newer"));
  auto missing = v->ChangedChunks("nope", "");
  BOOST_CHECK(missing.status().IsNotFound());
  BOOST_CHECK(Contains(missing.status(), "'nope'"));
}

BOOST_AUTO_TEST_CASE(every_chunk_size_from_4k_to_1m) {
  for (uint32_t cs = 4 * KiB; cs <= 1 * MiB; cs *= 2) {
    BOOST_TEST_CONTEXT("chunk size " << cs) {
      Fixture fx;
      const uint64_t size = 4 * MiB + 12 * KiB;  // a partial last chunk for cs > 4K
      auto v = fx.Make(size, cs, 16 * MiB / cs + 8);
      const auto base = Pattern(cs, size);
      Put(*v, 0, base);
      BOOST_REQUIRE(v->CreateSnapshot("s").ok());
      auto now = base;
      std::mt19937_64 rng(cs);
      for (int i = 0; i < 20; ++i) {
        const uint64_t n = 1 + rng() % (3 * cs / 2);
        const uint64_t off = rng() % (size - n);
        const auto d = Pattern(rng(), n);
        std::copy(d.begin(), d.end(), now.begin() + int64_t(off));
        Put(*v, off, d);
      }
      Put(*v, size - 4 * KiB, Pattern(99, 4 * KiB));  // the partial last chunk
      std::copy_n(Pattern(99, 4 * KiB).begin(), 4 * KiB, now.end() - 4 * KiB);
      ExpectSnap(*v, "s", base);
      BOOST_CHECK(FirstDiff(ReadOrigin(*v), now) == -1);
      v = fx.Reopen(v);
      BOOST_CHECK_EQUAL(v->chunk_size(), cs);
      ExpectSnap(*v, "s", base);
      BOOST_CHECK(FirstDiff(ReadOrigin(*v), now) == -1);
    }
  }
}

BOOST_AUTO_TEST_CASE(five_hundred_twelve_snapshots_each_with_its_own_contents) {
  FaultInjectionFileSystem fs;  // in memory: 512 superblock syncs stay fast
  Fixture fx;
  const uint64_t cs = 4 * KiB, chunks = 64;
  auto v = fx.Make(chunks * cs, uint32_t(cs), 1024, &fs);
  // Write i goes to chunk i % 64 and is stamped i; snapshot i follows it.
  auto expected = [&](uint64_t snap, uint64_t chunk) -> int64_t {
    for (int64_t i = int64_t(snap); i >= 0; --i) {
      if (uint64_t(i) % chunks == chunk) return i;
    }
    return -1;
  };
  for (uint64_t i = 0; i < kMaxSnapshots; ++i) {
    Put(*v, (i % chunks) * cs, Pattern(1000 + i, cs));
    auto s = v->CreateSnapshot("s" + std::to_string(i));
    BOOST_REQUIRE_MESSAGE(s.ok(), s.status().ToString());
  }
  auto over = v->CreateSnapshot("one-too-many");
  BOOST_CHECK(over.status().Is(Code::kMaxSnapshots));
  BOOST_CHECK(Contains(over.status(), "512"));
  Put(*v, 0, Pattern(5000, chunks * cs));  // every chunk changes after s511
  auto check_all = [&] {
    std::vector<uint8_t> buf(cs);
    for (uint64_t s = 0; s < kMaxSnapshots; s += 1) {
      for (uint64_t c = 0; c < chunks; c += 7) {
        BOOST_REQUIRE(v->ReadSnapshot("s" + std::to_string(s), c * cs, buf.data(), cs).ok());
        const int64_t w = expected(s, c);
        const auto want = w < 0 ? std::vector<uint8_t>(cs, 0) : Pattern(1000 + uint64_t(w), cs);
        BOOST_REQUIRE_MESSAGE(buf == want, "snapshot s" << s << " chunk " << c);
      }
    }
  };
  check_all();
  v = fx.Reopen(v, &fs);
  BOOST_CHECK_EQUAL(v->ListSnapshots().size(), kMaxSnapshots);
  check_all();
  for (uint64_t i = 0; i < kMaxSnapshots; ++i) {
    BOOST_REQUIRE(v->DeleteSnapshot("s" + std::to_string(i)).ok());
  }
  BOOST_CHECK_EQUAL(v->stats().slots_used, 0u);
}

BOOST_AUTO_TEST_CASE(diff_area_spread_over_several_files) {
  Fixture fx;
  const uint32_t cs = 4 * KiB;
  CreateOptions o;
  o.name = "multi";
  o.origin_path = fx.origin;
  o.origin_size = 256 * KiB;
  o.chunk_size = cs;
  const std::string d1 = fx.dir.str() + "/diff1", d2 = fx.dir.str() + "/diff2";
  o.diff_files = {{fx.diff0, DiffBytesFor(4, cs)}, {d1, 4 * KiB + 8 * cs}, {d2, 4 * KiB + 8 * cs}};
  auto r = CowVolume::Create(PosixFileSystem(), o);
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  auto v = std::move(*r);
  BOOST_CHECK_EQUAL(v->stats().slots_total, 20u);
  const auto base = Pattern(70, 256 * KiB);
  Put(*v, 0, base);
  BOOST_REQUIRE(v->CreateSnapshot("a").ok());
  Put(*v, 0, Pattern(71, 18 * cs));  // 18 copies: all three files
  BOOST_CHECK_EQUAL(v->stats().slots_used, 18u);
  const auto b_image = ReadOrigin(*v);
  BOOST_REQUIRE(v->CreateSnapshot("b").ok());
  Put(*v, 40 * cs, Pattern(72, cs));  // b's copy
  ExpectSnap(*v, "a", base);
  v = fx.Reopen(v);
  ExpectSnap(*v, "a", base);
  ExpectSnap(*v, "b", b_image);

  // A lost extension file: the snapshots with data in it become invalid,
  // with the reason; the others stay readable.
  // Slots 0-3 are in diff0, 4-11 in diff1, 12-19 in diff2; a's copies
  // took slots 0-17 and b's copy slot 18.
  v.reset();
  std::filesystem::remove(d1);
  v = fx.Reopen(v);
  auto a = v->GetSnapshot("a");
  BOOST_REQUIRE(a.ok());
  BOOST_CHECK(!a->valid);
  BOOST_CHECK(a->invalid_reason.find("diff1 is missing") != std::string::npos);
  std::vector<uint8_t> buf;
  Status st = ReadSnap(*v, "a", &buf);
  BOOST_CHECK(st.IsBadState());
  BOOST_CHECK(Contains(st, "missing"));
  ExpectSnap(*v, "b", b_image);  // its one copy is in diff2
  Put(*v, 50 * cs, Pattern(73, 4 * cs));  // writes go on
}

BOOST_AUTO_TEST_CASE(origin_size_not_a_multiple_of_the_chunk_size) {
  Fixture fx;
  const uint64_t size = 3 * 64 * KiB + 4 * KiB;
  auto v = fx.Make(size, 64 * KiB, 8);
  const auto base = Pattern(80, size);
  Put(*v, 0, base);
  BOOST_REQUIRE(v->CreateSnapshot("s").ok());
  Put(*v, 0, Pattern(81, size));
  BOOST_CHECK_EQUAL(v->stats().chunks_copied, 4u);
  ExpectSnap(*v, "s", base);
  auto runs = v->ChangedChunks("s", "");
  BOOST_REQUIRE(runs.ok());
  BOOST_REQUIRE_EQUAL(runs->size(), 1u);
  BOOST_CHECK_EQUAL((*runs)[0].count, 4u);
  std::vector<uint8_t> tail(8 * KiB);
  Status st = v->Write(size - 4 * KiB, tail.data(), tail.size());
  BOOST_CHECK(st.IsInvalidArgument());
  BOOST_CHECK(Contains(st, "beyond the end"));
  v = fx.Reopen(v);
  ExpectSnap(*v, "s", base);
}

// Writers run all the time; a snapshot thread takes snapshots and, while
// holding the test's own lock (which each writer holds around each Write),
// captures the origin. Each snapshot must equal that capture, read while
// the writers keep going. Reader threads read snapshots concurrently too.
BOOST_AUTO_TEST_CASE(concurrent_writers_snapshots_and_readers) {
  Fixture fx;
  const uint64_t size = 2 * MiB;
  const uint32_t cs = 16 * KiB;
  auto v = fx.Make(size, cs, 4096);
  Put(*v, 0, Pattern(90, size));
  WriteGate test_lock;  // prefers the snapshot thread, so it is not starved
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::mutex captured_mu;
  std::map<std::string, std::vector<uint8_t>> captured;

  std::vector<std::thread> threads;
  for (int w = 0; w < 4; ++w) {
    threads.emplace_back([&, w] {
      std::mt19937_64 rng(w);
      while (!stop.load()) {
        const uint64_t n = 1 + rng() % (3 * cs);
        const uint64_t off = rng() % (size - n);
        const auto d = Pattern(rng(), n);
        std::shared_lock l(test_lock);
        if (!v->Write(off, d.data(), n).ok()) ++failures;
      }
    });
  }
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&, r] {
      std::mt19937_64 rng(100 + r);
      while (!stop.load()) {
        std::string id;
        std::vector<uint8_t> want;
        {
          std::lock_guard l(captured_mu);
          if (captured.empty()) continue;
          auto it = captured.begin();
          std::advance(it, int64_t(rng() % captured.size()));
          id = it->first;
          want = it->second;
        }
        const uint64_t n = 1 + rng() % (4 * cs);
        const uint64_t off = rng() % (size - n);
        std::vector<uint8_t> got(n);
        Status st = v->ReadSnapshot(id, off, got.data(), n);
        if (!st.ok() || !std::equal(got.begin(), got.end(), want.begin() + int64_t(off))) ++failures;
      }
    });
  }
  for (int i = 0; i < 12; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const std::string id = "c" + std::to_string(i);
    std::vector<uint8_t> image(size);
    {
      std::unique_lock l(test_lock);
      BOOST_REQUIRE(v->CreateSnapshot(id).ok());
      BOOST_REQUIRE(v->Read(0, image.data(), size).ok());
    }
    std::lock_guard l(captured_mu);
    captured[id] = std::move(image);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  stop = true;
  for (auto& t : threads) t.join();
  BOOST_CHECK_EQUAL(failures.load(), 0);
  for (auto& [id, image] : captured) ExpectSnap(*v, id, image);
  BOOST_TEST_MESSAGE("copies " << v->stats().chunks_copied << ", group commits "
                               << v->stats().group_commits);
}

// Without the test's lock: each writer stamps its own blocks with a rising
// sequence number. A snapshot must be a cut: for each writer, all of its
// writes up to some point and none after, and that point must lie between
// the writes completed before CreateSnapshot began and those begun after
// it returned.
BOOST_AUTO_TEST_CASE(a_snapshot_taken_during_writes_is_a_consistent_cut) {
  Fixture fx;
  constexpr int kWriters = 3;
  constexpr uint64_t kBlocks = 32, kBlock = 4 * KiB;
  const uint64_t size = kWriters * kBlocks * kBlock;
  auto v = fx.Make(size, 4 * KiB, 2048);
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> done[kWriters] = {}, started[kWriters] = {};
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      std::vector<uint8_t> buf(2 * kBlock);
      for (uint64_t seq = 1; !stop.load(); ++seq) {
        // Two adjacent blocks per write (wrapping within the writer's area
        // only when it fits), so a write spans chunks.
        const uint64_t b = (seq * 7) % (kBlocks - 1);
        for (uint64_t k = 0; k < 2 * kBlock; k += 8) std::memcpy(&buf[k], &seq, 8);
        started[w].store(seq);
        if (!v->Write((uint64_t(w) * kBlocks + b) * kBlock, buf.data(), buf.size()).ok()) return;
        done[w].store(seq);
      }
    });
  }
  int checked = 0;
  for (int i = 0; i < 15; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    uint64_t lo[kWriters];
    for (int w = 0; w < kWriters; ++w) lo[w] = done[w].load();
    const std::string id = "cut" + std::to_string(i);
    BOOST_REQUIRE(v->CreateSnapshot(id).ok());
    uint64_t hi[kWriters];
    for (int w = 0; w < kWriters; ++w) hi[w] = started[w].load();
    std::vector<uint8_t> img;
    BOOST_REQUIRE(ReadSnap(*v, id, &img).ok());
    for (int w = 0; w < kWriters; ++w) {
      // The newest write visible, then every block must show the last
      // write to it at or before that one.
      uint64_t m = 0;
      for (uint64_t b = 0; b < kBlocks; ++b) {
        uint64_t s;
        std::memcpy(&s, &img[(uint64_t(w) * kBlocks + b) * kBlock], 8);
        m = std::max(m, s);
      }
      BOOST_CHECK_MESSAGE(m >= lo[w] && m <= hi[w],
                          "writer " << w << ": cut " << m << " outside [" << lo[w] << "," << hi[w] << "]");
      for (uint64_t b = 0; b < kBlocks; ++b) {
        uint64_t want = 0;
        for (uint64_t s = m; s >= 1; --s) {
          const uint64_t first = (s * 7) % (kBlocks - 1);
          if (first == b || first + 1 == b) {
            want = s;
            break;
          }
        }
        for (uint64_t k = 0; k < kBlock; k += 512) {
          uint64_t s;
          std::memcpy(&s, &img[(uint64_t(w) * kBlocks + b) * kBlock + k], 8);
          BOOST_REQUIRE_MESSAGE(s == want, "snapshot " << id << " writer " << w << " block " << b
                                                       << ": has write " << s << ", cut says " << want);
        }
      }
      ++checked;
    }
  }
  stop = true;
  for (auto& t : threads) t.join();
  BOOST_CHECK_EQUAL(checked, 15 * kWriters);
}

BOOST_AUTO_TEST_CASE(bad_chunk_sizes_are_refused_and_leave_nothing) {
  for (uint32_t cs : {0u, 512u, 2048u, 3000u, 12288u, 2u * 1024 * 1024}) {
    BOOST_TEST_CONTEXT("chunk size " << cs) {
      Fixture fx;
      CreateOptions o;
      o.name = "v";
      o.origin_path = fx.origin;
      o.origin_size = 1 * MiB;
      o.chunk_size = cs;
      o.diff_files = {{fx.diff0, 4 * MiB}};
      auto r = CowVolume::Create(PosixFileSystem(), o);
      BOOST_CHECK(r.status().IsInvalidArgument());
      BOOST_CHECK(Contains(r.status(), "chunk size " + std::to_string(cs)));
      BOOST_CHECK(Contains(r.status(), "power of two"));
      BOOST_CHECK_EQUAL(FilesIn(fx.dir), 0u);
    }
  }
  BOOST_CHECK(ValidateChunkSize(kDefaultChunkSize).ok());
}

BOOST_AUTO_TEST_CASE(other_bad_create_options_say_what_is_wrong) {
  Fixture fx;
  auto attempt = [&](auto edit) {
    CreateOptions o;
    o.name = "v";
    o.origin_path = fx.origin;
    o.origin_size = 1 * MiB;
    o.diff_files = {{fx.diff0, 4 * MiB}};
    edit(o);
    return CowVolume::Create(PosixFileSystem(), o).status();
  };
  Status st = attempt([](CreateOptions& o) { o.name = "bad/name"; });
  BOOST_CHECK(st.IsInvalidArgument() && Contains(st, "volume name"));
  st = attempt([](CreateOptions& o) { o.origin_size = 1 * MiB + 512; });
  BOOST_CHECK(st.IsInvalidArgument() && Contains(st, "multiple of 4096"));
  st = attempt([](CreateOptions& o) { o.diff_files[0].max_bytes = 100 * KiB; });
  BOOST_CHECK(st.IsInvalidArgument() && Contains(st, "too small"));
  st = attempt([](CreateOptions& o) { o.diff_files.clear(); });
  BOOST_CHECK(st.IsInvalidArgument() && Contains(st, "diff-area"));
  st = attempt([&](CreateOptions& o) { o.origin_size = 0; });
  BOOST_CHECK(st.IsNotFound() && Contains(st, "does not exist"));
  BOOST_CHECK_EQUAL(FilesIn(fx.dir), 0u);
  fx.dir.Write("diff0", "precious");
  st = attempt([](CreateOptions&) {});
  BOOST_CHECK(st.Is(Code::kAlreadyExists) && Contains(st, "already exists"));
  BOOST_CHECK_EQUAL(FilesIn(fx.dir), 1u);  // the existing file, untouched
}

BOOST_AUTO_TEST_CASE(diff_area_larger_than_the_disk_is_refused_at_create_and_leaves_nothing) {
  Fixture fx;
  CreateOptions o;
  o.name = "huge";
  o.origin_path = fx.origin;
  o.origin_size = 1 * MiB;
  o.diff_files = {{fx.diff0, uint64_t(1) << 60}};  // 1 EiB
  auto r = CowVolume::Create(PosixFileSystem(), o);
  BOOST_CHECK(r.status().Is(Code::kInsufficientStorage));
  BOOST_CHECK(Contains(r.status(), fx.diff0));
  BOOST_CHECK(Contains(r.status(), "smaller size"));
  BOOST_CHECK_EQUAL(FilesIn(fx.dir), 0u);  // not even the origin it created

  // Adopting an existing origin: that one stays, with its data.
  fx.dir.Write("origin.img", std::string(64 * KiB, 'z'));
  o.origin_size = 0;
  r = CowVolume::Create(PosixFileSystem(), o);
  BOOST_CHECK(r.status().Is(Code::kInsufficientStorage));
  BOOST_CHECK_EQUAL(FilesIn(fx.dir), 1u);
  BOOST_CHECK_EQUAL(std::filesystem::file_size(fx.origin), 64 * KiB);
}

BOOST_AUTO_TEST_CASE(an_origin_in_use_by_another_volume_is_refused) {
  Fixture fx;
  auto v = fx.Make(1 * MiB, 64 * KiB, 16);
  const auto data = Pattern(110, 1 * MiB);
  Put(*v, 0, data);
  BOOST_REQUIRE(v->CreateSnapshot("s").ok());

  CreateOptions o;
  o.name = "second";
  o.origin_path = fx.origin;
  o.diff_files = {{fx.dir.str() + "/other-diff", 4 * MiB}};
  auto r = CowVolume::Create(PosixFileSystem(), o);
  BOOST_CHECK(r.status().IsBadState());
  BOOST_CHECK(Contains(r.status(), fx.origin + " is in use by another volume ("));
  BOOST_CHECK(!std::filesystem::exists(fx.dir.str() + "/other-diff"));

  auto again = CowVolume::Open(PosixFileSystem(), fx.diff0);
  BOOST_CHECK(again.status().IsBadState());
  BOOST_CHECK(Contains(again.status(), "is in use by another volume"));

  // The first volume lost nothing.
  ExpectSnap(*v, "s", data);
  BOOST_CHECK(FirstDiff(ReadOrigin(*v), data) == -1);
  Put(*v, 0, Pattern(111, 4 * KiB));
  ExpectSnap(*v, "s", data);
}

BOOST_AUTO_TEST_CASE(unknown_and_bad_snapshot_ids) {
  Fixture fx;
  auto v = fx.Make(256 * KiB, 4 * KiB, 16);
  const auto data = Pattern(120, 256 * KiB);
  Put(*v, 0, data);
  BOOST_REQUIRE(v->CreateSnapshot("real").ok());
  std::vector<uint8_t> buf(4096);
  Status st = v->ReadSnapshot("ghost", 0, buf.data(), buf.size());
  BOOST_CHECK(st.IsNotFound() && Contains(st, "'ghost' does not exist"));
  st = v->DeleteSnapshot("ghost");
  BOOST_CHECK(st.IsNotFound() && Contains(st, "'ghost'"));
  st = v->Revert("ghost");
  BOOST_CHECK(st.IsNotFound() && Contains(st, "'ghost'"));
  BOOST_CHECK(v->GetSnapshot("ghost").status().IsNotFound());
  BOOST_CHECK(v->ChangedChunks("real", "ghost").status().IsNotFound());
  for (const std::string& bad : {std::string(), std::string("a/b"), std::string(".."),
                                 std::string(65, 'x'), std::string("sp ace")}) {
    auto r = v->CreateSnapshot(bad);
    BOOST_CHECK_MESSAGE(r.status().IsInvalidArgument() && Contains(r.status(), "snapshot id"),
                        "'" << bad << "': " << r.status().ToString());
  }
  auto dup = v->CreateSnapshot("real");
  BOOST_CHECK(dup.status().Is(Code::kAlreadyExists) && Contains(dup.status(), "'real' already exists"));
  st = v->ReadSnapshot("real", 256 * KiB - 10, buf.data(), 20);
  BOOST_CHECK(st.IsInvalidArgument() && Contains(st, "beyond the end"));
  // Nothing lost by all that.
  BOOST_CHECK_EQUAL(v->ListSnapshots().size(), 1u);
  ExpectSnap(*v, "real", data);
}

BOOST_AUTO_TEST_CASE(corrupt_superblocks) {
  Fixture fx;
  auto v = fx.Make(256 * KiB, 4 * KiB, 64);
  const auto data = Pattern(130, 256 * KiB);
  Put(*v, 0, data);
  BOOST_REQUIRE(v->CreateSnapshot("s").ok());
  Put(*v, 0, Pattern(131, 256 * KiB));
  v.reset();

  auto read_file = [&] {
    std::ifstream in(fx.diff0, std::ios::binary);
    return std::vector<char>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  };
  auto scribble = [&](uint64_t off) {
    std::fstream f(fx.diff0, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(std::streamoff(off));
    f.write("garbage!", 8);
  };
  const auto pristine = read_file();

  // One copy bad (either one): the other serves, nothing is lost.
  for (uint64_t copy : {0u, 1u}) {
    scribble(copy * 64 * KiB + 40);
    auto r = CowVolume::Open(PosixFileSystem(), fx.diff0);
    BOOST_REQUIRE_MESSAGE(r.ok(), r.status().ToString());
    ExpectSnap(**r, "s", data);
    r = Status::Internal("closed");
    std::ofstream(fx.diff0, std::ios::binary).write(pristine.data(), std::streamsize(pristine.size()));
  }

  // Both bad: refused, naming the file and the problem, and not modified.
  scribble(40);
  scribble(64 * KiB + 40);
  const auto broken = read_file();
  auto r = CowVolume::Open(PosixFileSystem(), fx.diff0);
  BOOST_CHECK(r.status().IsInvalidArgument());
  BOOST_CHECK(Contains(r.status(), fx.diff0));
  BOOST_CHECK(Contains(r.status(), "corrupt"));
  BOOST_CHECK(Contains(r.status(), "checksum"));
  BOOST_CHECK(read_file() == broken);

  // Not a diff area at all.
  std::ofstream(fx.diff0, std::ios::binary | std::ios::trunc) << std::string(256 * KiB, 'q');
  r = CowVolume::Open(PosixFileSystem(), fx.diff0);
  BOOST_CHECK(r.status().IsInvalidArgument());
  BOOST_CHECK(Contains(r.status(), "not a snapset diff area"));
  r = CowVolume::Open(PosixFileSystem(), fx.dir.str() + "/nothing-here");
  BOOST_CHECK(r.status().IsNotFound());
}

// The diff area fails while saving old data: the write still succeeds, the
// snapshot that lost data says so, and the others are untouched.
BOOST_AUTO_TEST_CASE(a_failing_diff_area_invalidates_only_the_snapshots_that_lost_data) {
  FaultInjectionFileSystem fs;
  Fixture fx;
  auto v = fx.Make(256 * KiB, 4 * KiB, 64, &fs);
  const auto base = Pattern(140, 256 * KiB);
  Put(*v, 0, base);
  BOOST_REQUIRE(v->CreateSnapshot("a").ok());
  Put(*v, 0, Pattern(141, 8 * KiB));  // a's copies of chunks 0, 1
  const auto b_image = ReadOrigin(*v);
  BOOST_REQUIRE(v->CreateSnapshot("b").ok());
  fs.FailNthSync(1, "diff0");  // the next data sync
  const auto patch = Pattern(142, 4 * KiB);
  Put(*v, 100 * KiB, patch);  // needs a copy for a and b
  std::vector<uint8_t> got(4 * KiB);
  BOOST_REQUIRE(v->Read(100 * KiB, got.data(), got.size()).ok());
  BOOST_CHECK(got == patch);
  for (const char* id : {"a", "b"}) {
    auto s = v->GetSnapshot(id);
    BOOST_REQUIRE(s.ok());
    BOOST_CHECK(!s->valid);
    BOOST_CHECK(s->invalid_reason.find("injected sync fault") != std::string::npos);
  }
  // A later snapshot is fine, and the state survives a reopen.
  const auto c_image = ReadOrigin(*v);
  BOOST_REQUIRE(v->CreateSnapshot("c").ok());
  Put(*v, 0, Pattern(143, 16 * KiB));
  ExpectSnap(*v, "c", c_image);
  v = fx.Reopen(v, &fs);
  BOOST_CHECK(!v->GetSnapshot("a")->valid);
  ExpectSnap(*v, "c", c_image);
  std::vector<uint8_t> img;
  BOOST_CHECK(ReadSnap(*v, "b", &img).IsBadState());
}

// Every record on disk is checked with this CRC: it must stay the CRC-32 of
// gzip and zlib (check value of "123456789": 0xCBF43926), whatever computes
// it, or every existing diff area would fail its checksums.
BOOST_AUTO_TEST_CASE(the_on_disk_crc_is_the_gzip_crc32) {
  const std::string check = "123456789";
  BOOST_CHECK_EQUAL(format::Crc32(check.data(), check.size()), 0xCBF43926u);
  BOOST_CHECK_EQUAL(format::Crc32(nullptr, 0), 0u);
}

// One sync per group commit: an entry may reach the disk before its data,
// and Open checks the data of entries above every entry's `durable` mark.
// After a failed group (its entries may be on disk, its data lost) every
// later group's mark must stay below it, or Open would trust the failed
// group's entries; after a reopen, marks advance again.
BOOST_AUTO_TEST_CASE(after_a_failed_group_later_groups_do_not_claim_it_durable) {
  FaultInjectionFileSystem fs;
  Fixture fx;
  const uint64_t slots = 64;
  auto v = fx.Make(256 * KiB, 4 * KiB, slots, &fs);
  Put(*v, 0, Pattern(150, 256 * KiB));
  auto entries = [&] {
    std::vector<format::SlotEntry> out;
    const auto bytes = fs.Contents(fx.diff0);
    const uint64_t tag = [&] {  // any entry's area tag: bytes [40,48)
      for (uint64_t s = 0; s < slots; ++s) {
        const uint8_t* p = &bytes[format::kSlotTableOffset + s * format::kSlotEntrySize];
        if (format::GetU32(p) == format::kSlotMagic) return format::GetU64(p + 40);
      }
      return uint64_t(0);
    }();
    for (uint64_t s = 0; s < slots; ++s) {
      format::SlotEntry e;
      if (format::DecodeSlotEntry(&bytes[format::kSlotTableOffset + s * format::kSlotEntrySize], s,
                                  tag, &e)) {
        out.push_back(e);
      }
    }
    std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.group < b.group; });
    return out;
  };
  BOOST_REQUIRE(v->CreateSnapshot("a").ok());
  Put(*v, 0, Pattern(151, 4 * KiB));
  Put(*v, 8 * KiB, Pattern(152, 4 * KiB));
  auto e = entries();
  BOOST_REQUIRE_EQUAL(e.size(), 2u);
  BOOST_CHECK_EQUAL(e[1].group, e[0].group + 1);
  BOOST_CHECK_EQUAL(e[1].durable, e[0].group);  // the first group's sync had returned
  const uint64_t failed = e[1].group + 1;
  fs.FailNthSync(1, "diff0");
  Put(*v, 16 * KiB, Pattern(153, 4 * KiB));  // group `failed`: a invalid, the write goes on
  BOOST_CHECK(!v->GetSnapshot("a")->valid);
  const auto b_image = ReadOrigin(*v);
  BOOST_REQUIRE(v->CreateSnapshot("b").ok());
  Put(*v, 24 * KiB, Pattern(154, 4 * KiB));
  Put(*v, 32 * KiB, Pattern(155, 4 * KiB));
  e = entries();
  size_t later = 0;
  for (const auto& x : e) {
    if (x.group <= failed) continue;
    ++later;
    BOOST_CHECK_LT(x.durable, failed);
  }
  BOOST_CHECK_EQUAL(later, 2u);
  v = fx.Reopen(v, &fs);
  ExpectSnap(*v, "b", b_image);
  BOOST_REQUIRE(v->CreateSnapshot("c").ok());
  Put(*v, 40 * KiB, Pattern(156, 4 * KiB));
  e = entries();
  BOOST_CHECK_EQUAL(e.back().durable, e.back().group - 1);
}

// Nothing the engine keeps grows with the origin's size: a 1 TiB sparse
// origin gets a snapshot as cheaply as a small one, and the index holds
// only what was copied.
BOOST_AUTO_TEST_CASE(a_huge_sparse_origin_costs_nothing_until_written) {
  Fixture fx;
  {
    std::ofstream(fx.origin).put('\0');
    std::filesystem::resize_file(fx.origin, uint64_t(1) << 40);  // 1 TiB, sparse
  }
  CreateOptions o;
  o.name = "huge";
  o.origin_path = fx.origin;
  o.diff_files = {{fx.diff0, 8 * MiB}};
  auto r = CowVolume::Create(PosixFileSystem(), o);
  BOOST_REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  auto v = std::move(*r);
  BOOST_CHECK_EQUAL(v->size(), uint64_t(1) << 40);
  const uint64_t empty_index = v->stats().index_memory_bytes;
  const auto t0 = std::chrono::steady_clock::now();
  BOOST_REQUIRE(v->CreateSnapshot("s").ok());
  const auto t1 = std::chrono::steady_clock::now();
  BOOST_TEST_MESSAGE("snapshot of a 1 TiB sparse origin: "
                     << std::chrono::duration_cast<std::chrono::microseconds>(t1 - t0).count() << " us");
  const uint64_t far = (uint64_t(1) << 40) - 64 * KiB;
  const auto d = Pattern(150, 128 * KiB);
  Put(*v, far - 64 * KiB, d);  // the last two chunks
  BOOST_CHECK_EQUAL(v->stats().chunks_copied, 2u);
  std::vector<uint8_t> got(128 * KiB);
  BOOST_REQUIRE(v->ReadSnapshot("s", far - 64 * KiB, got.data(), got.size()).ok());
  BOOST_CHECK(std::all_of(got.begin(), got.end(), [](uint8_t b) { return b == 0; }));
  const uint64_t used_index = v->stats().index_memory_bytes;
  BOOST_TEST_MESSAGE("index memory: " << empty_index << " bytes empty, " << used_index
                                      << " with 2 copies");
  BOOST_CHECK_LT(used_index - empty_index, 1024u);
  BOOST_CHECK_LT(used_index, 1 * MiB);
  auto runs = v->ChangedChunks("s", "");
  BOOST_REQUIRE(runs.ok());
  BOOST_REQUIRE_EQUAL(runs->size(), 1u);
  BOOST_CHECK_EQUAL((*runs)[0].first, (far - 64 * KiB) / (64 * KiB));
  BOOST_CHECK_EQUAL((*runs)[0].count, 2u);
}

// The cost model the benchmarks rely on, counted in syncs: all chunks of
// one Write share one group commit (one sync for data and table), a
// rewrite of copied chunks syncs nothing, and a snapshot is the origin's
// sync (when it has unflushed writes) plus the superblock's.
BOOST_AUTO_TEST_CASE(syncs_per_operation) {
  FaultInjectionFileSystem fs;
  Fixture fx;
  auto v = fx.Make(4 * MiB, 64 * KiB, 128, &fs);
  Put(*v, 0, Pattern(160, 4 * MiB));
  fs.ResetCounters();
  BOOST_REQUIRE(v->CreateSnapshot("s").ok());
  BOOST_CHECK_EQUAL(fs.syncs(), 2u);
  fs.ResetCounters();
  Put(*v, 0, Pattern(161, 1 * MiB));  // 16 chunks copied
  BOOST_CHECK_EQUAL(fs.syncs(), 1u);
  BOOST_CHECK_EQUAL(v->stats().group_commits, 1u);
  BOOST_CHECK_EQUAL(v->stats().chunks_copied, 16u);
  fs.ResetCounters();
  Put(*v, 0, Pattern(162, 1 * MiB));  // already copied
  Put(*v, 3 * MiB, Pattern(163, 512 * KiB));
  BOOST_CHECK_EQUAL(fs.syncs(), 1u);  // only the second write copied
  BOOST_CHECK_EQUAL(v->stats().group_commits, 2u);
  // A volume without snapshots never syncs on write.
  BOOST_REQUIRE(v->DeleteSnapshot("s").ok());
  fs.ResetCounters();
  Put(*v, 0, Pattern(164, 4 * MiB));
  BOOST_CHECK_EQUAL(fs.syncs(), 0u);
  // An origin flushed already (as a frozen filesystem above has just done
  // in a commit window) is not synced again: the snapshot costs the
  // superblock's sync only. A second Flush with nothing written is free.
  BOOST_REQUIRE(v->Flush().ok());
  fs.ResetCounters();
  BOOST_REQUIRE(v->Flush().ok());
  BOOST_CHECK_EQUAL(fs.syncs(), 0u);
  BOOST_REQUIRE(v->CreateSnapshot("t").ok());
  BOOST_CHECK_EQUAL(fs.syncs(), 1u);
}
