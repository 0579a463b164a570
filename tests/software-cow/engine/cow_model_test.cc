// Random operation sequences against a reference model: the origin as a
// byte vector and every snapshot as a full image. After every operation the
// snapshot list must match; every few operations, and at the end, the
// origin and every snapshot are compared byte for byte. Small diff areas
// make overflow frequent: the model then drops what the engine reports
// deleted and checks it was the oldest. Changed-chunk lists are checked
// exactly against the model's record of which chunks were written when.
//
// Runs on the fault-injection file system (no faults) and on real files.
// Every failure names its seed; rerun one with
//   cow_model_test -- --seed=N
#define BOOST_TEST_MODULE cow_model
#include <boost/test/unit_test.hpp>

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <random>
#include <set>

#include "providers/software-cow/engine/cow_volume.hpp"
#include "providers/software-cow/engine/fault_injection_fs.hpp"
#include "tests/software-cow/engine/cow_test_util.hpp"
#include "tests/support/temp_dir.hpp"

using namespace snapset;
using namespace snapset::cow;
using snapset::cow::test::FirstDiff;
using snapset::cow::test::Model;
using snapset::cow::test::Pattern;

namespace {

constexpr uint64_t KiB = 1024;

struct Params {
  uint64_t origin_size = 512 * KiB;
  uint32_t chunk_size = 4 * KiB;
  uint64_t slots = 256;     // small: overflow happens
  bool extension = false;   // a second diff-area file
  int ops = 1500;
  int check_every = 20;
  size_t max_snapshots = 24;
};

// A directory for real files; on tmpfs when there is one, because on a disk
// thousands of fdatasyncs would make the run take minutes.
class ScratchDir {
 public:
  ScratchDir() {
    std::string base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : std::filesystem::temp_directory_path().string();
    std::string tmpl = base + "/snapset-cow-model-XXXXXX";
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& str() const { return path_; }

 private:
  std::string path_;
};

uint64_t DiffBytesFor(uint64_t slots, uint64_t cs) {
  return 128 * KiB + (slots * 64 + 4095) / 4096 * 4096 + slots * cs;
}

class Runner {
 public:
  Runner(uint64_t seed, FileSystem* fs, std::string dir, Params p)
      : seed_(seed), rng_(seed), fs_(fs), dir_(std::move(dir)), p_(p) {}

  void Run() {
    CreateOptions o;
    o.name = "model";
    o.origin_path = dir_ + "/origin";
    o.origin_size = p_.origin_size;
    o.chunk_size = p_.chunk_size;
    if (p_.extension) {
      o.diff_files = {{dir_ + "/diff0", DiffBytesFor(p_.slots / 2, p_.chunk_size)},
                      {dir_ + "/diff1", 4 * KiB + (p_.slots - p_.slots / 2) * p_.chunk_size}};
    } else {
      o.diff_files = {{dir_ + "/diff0", DiffBytesFor(p_.slots, p_.chunk_size)}};
    }
    auto r = CowVolume::Create(fs_, o);
    BOOST_REQUIRE_MESSAGE(r.ok(), r.status().ToString());
    v_ = std::move(*r);
    m_.origin.assign(p_.origin_size, 0);
    chunks_ = (p_.origin_size + p_.chunk_size - 1) / p_.chunk_size;
    written_.assign(chunks_, {});

    for (op_ = 1; op_ <= p_.ops; ++op_) {
      Step();
      if (op_ % p_.check_every == 0) CheckAll();
    }
    CheckAll();
    Reopen();
    CheckAll();
    BOOST_TEST_MESSAGE("seed " << seed_ << ": " << p_.ops << " ops, " << snapshots_made_
                               << " snapshots, " << overflowed_ << " deleted by overflow, "
                               << reverts_ << " reverts, " << reopens_ << " reopens, "
                               << copies_ << " chunk copies");
  }

 private:
  std::string Where() const {
    return "seed " + std::to_string(seed_) + " op " + std::to_string(op_) + " (" + last_ + ")";
  }

  void Require(const Status& st) {
    BOOST_REQUIRE_MESSAGE(st.ok(), Where() << ": " << st.ToString());
  }

  void Step() {
    const int dice = int(rng_() % 100);
    std::string revert_target;
    if (dice < 50) {
      DoWrite();
    } else if (dice < 62) {
      DoSnapshot();
    } else if (dice < 70) {
      DoDelete();
    } else if (dice < 74) {
      revert_target = DoRevert();
    } else if (dice < 77) {
      Reopen();
    } else if (dice < 80) {
      last_ = "flush";
      Require(v_->Flush());
    } else if (dice < 92) {
      DoReadCheck();
    } else {
      DoChangedCheck();
    }
    AbsorbOverflow(revert_target);
    // The snapshot list, in order.
    auto list = v_->ListSnapshots();
    std::vector<std::string> ids;
    for (auto& s : list) {
      ids.push_back(s.id);
      BOOST_REQUIRE_MESSAGE(s.valid, Where() << ": snapshot " << s.id << " invalid: " << s.invalid_reason);
    }
    BOOST_REQUIRE_MESSAGE(ids == m_.order, Where() << ": snapshot list differs from the model");
  }

  void DoWrite() {
    const uint64_t cs = p_.chunk_size;
    uint64_t n;
    switch (rng_() % 4) {
      case 0: n = 1 + rng_() % 64; break;         // tiny, unaligned
      case 1: n = cs; break;                       // one chunk
      case 2: n = 1 + rng_() % (3 * cs); break;    // a few chunks
      default: n = 1 + rng_() % (16 * cs); break;  // a long run
    }
    n = std::min(n, p_.origin_size);
    uint64_t off = rng_() % (p_.origin_size - n + 1);
    if (rng_() % 3 == 0) off -= off % cs;
    const auto d = Pattern(rng_(), n);
    last_ = "write " + std::to_string(n) + "@" + std::to_string(off);
    Require(v_->Write(off, d.data(), n));
    m_.Write(off, d);
    for (uint64_t c = off / cs; c <= (off + n - 1) / cs; ++c) written_[c].push_back(op_);
  }

  void DoSnapshot() {
    if (m_.order.size() >= p_.max_snapshots) return DoDelete();
    const std::string id = "s" + std::to_string(++snapshots_made_);
    last_ = "snapshot " + id;
    auto r = v_->CreateSnapshot(id);
    Require(r.status());
    m_.Snapshot(id);
    taken_[id] = op_;
  }

  std::string Pick() { return m_.order[rng_() % m_.order.size()]; }

  void DoDelete() {
    if (m_.order.empty()) return;
    const std::string id = Pick();
    last_ = "delete " + id;
    Require(v_->DeleteSnapshot(id));
    m_.Delete(id);
  }

  std::string DoRevert() {
    if (m_.order.empty()) return {};
    const std::string id = Pick();
    last_ = "revert " + id;
    Require(v_->Revert(id));
    // The chunks written since the snapshot are written again, now.
    const int64_t t = taken_[id];
    for (uint64_t c = 0; c < chunks_; ++c) {
      if (!written_[c].empty() && written_[c].back() > t) written_[c].push_back(op_);
    }
    m_.origin = m_.snaps[id];
    ++reverts_;
    return id;
  }

  void Reopen() {
    last_ = "reopen";
    const std::string path = v_->diff_path();
    copies_ += v_->stats().chunks_copied;
    v_.reset();
    auto r = CowVolume::Open(fs_, path);
    BOOST_REQUIRE_MESSAGE(r.ok(), Where() << ": " << r.status().ToString());
    v_ = std::move(*r);
    ++reopens_;
    overflow_seen_ = v_->stats().snapshots_deleted_by_overflow;
  }

  void DoReadCheck() {
    if (m_.order.empty()) return;
    const std::string id = Pick();
    const uint64_t n = 1 + rng_() % (8 * p_.chunk_size);
    const uint64_t len = std::min(n, p_.origin_size);
    const uint64_t off = rng_() % (p_.origin_size - len + 1);
    last_ = "read " + id + " " + std::to_string(len) + "@" + std::to_string(off);
    std::vector<uint8_t> got(len);
    Require(v_->ReadSnapshot(id, off, got.data(), len));
    const auto& want = m_.snaps[id];
    BOOST_REQUIRE_MESSAGE(std::equal(got.begin(), got.end(), want.begin() + int64_t(off)),
                          Where() << ": snapshot bytes differ");
  }

  // Exact: chunk c changed between a and b iff it was written after a was
  // taken and before b was (b = the origin: any time after a).
  void DoChangedCheck() {
    if (m_.order.empty()) return;
    size_t ia = rng_() % m_.order.size();
    const std::string a = m_.order[ia];
    std::string b;
    if (rng_() % 2 && ia + 1 < m_.order.size()) b = m_.order[ia + 1 + rng_() % (m_.order.size() - ia - 1)];
    last_ = "changed " + a + ".." + (b.empty() ? "origin" : b);
    auto r = v_->ChangedChunks(a, b);
    Require(r.status());
    std::vector<uint8_t> got(chunks_, 0);
    for (auto& run : *r) {
      for (uint64_t c = run.first; c < run.first + run.count; ++c) got[c] = 1;
    }
    const int64_t ta = taken_[a], tb = b.empty() ? INT64_MAX : taken_[b];
    for (uint64_t c = 0; c < chunks_; ++c) {
      bool want = false;
      for (int64_t t : written_[c]) want |= t > ta && t < tb;
      BOOST_REQUIRE_MESSAGE(bool(got[c]) == want, Where() << ": chunk " << c << " reported "
                                                         << (got[c] ? "changed" : "unchanged"));
    }
  }

  // Snapshots the engine deleted for room: the model drops them, after
  // checking each was older than every snapshot kept (a revert's source is
  // spared, so it may be older).
  void AbsorbOverflow(const std::string& revert_target) {
    const uint64_t total = v_->stats().snapshots_deleted_by_overflow;
    if (total == overflow_seen_) return;
    const uint64_t k = total - overflow_seen_;
    overflow_seen_ = total;
    auto events = v_->overflow_events();
    BOOST_REQUIRE_GE(events.size(), std::min<uint64_t>(k, 64));
    std::set<std::string> gone;
    for (size_t i = events.size() - size_t(std::min<uint64_t>(k, events.size())); i < events.size(); ++i) {
      gone.insert(events[i].snapshot_id);
      BOOST_REQUIRE_MESSAGE(events[i].reason.find("diff area full") != std::string::npos, Where());
    }
    size_t newest_gone = 0, oldest_kept = m_.order.size();
    for (size_t i = 0; i < m_.order.size(); ++i) {
      if (gone.count(m_.order[i])) {
        newest_gone = i;
      } else if (m_.order[i] != revert_target && oldest_kept == m_.order.size()) {
        oldest_kept = i;
      }
    }
    BOOST_REQUIRE_MESSAGE(gone.empty() || newest_gone < oldest_kept,
                          Where() << ": overflow deleted a snapshot that was not the oldest");
    for (auto& id : gone) {
      BOOST_REQUIRE_MESSAGE(m_.snaps.count(id), Where() << ": overflow deleted unknown " << id);
      m_.Delete(id);
    }
    overflowed_ += k;
  }

  void CheckAll() {
    std::vector<uint8_t> got(p_.origin_size);
    Require(v_->Read(0, got.data(), got.size()));
    BOOST_REQUIRE_MESSAGE(FirstDiff(got, m_.origin) == -1,
                          Where() << ": origin differs at " << FirstDiff(got, m_.origin));
    for (const auto& id : m_.order) {
      Require(v_->ReadSnapshot(id, 0, got.data(), got.size()));
      BOOST_REQUIRE_MESSAGE(FirstDiff(got, m_.snaps[id]) == -1,
                            Where() << ": snapshot " << id << " differs at " << FirstDiff(got, m_.snaps[id]));
    }
  }

  uint64_t seed_;
  std::mt19937_64 rng_;
  FileSystem* fs_;
  std::string dir_;
  Params p_;
  std::unique_ptr<CowVolume> v_;
  Model m_;
  uint64_t chunks_ = 0;
  std::vector<std::vector<int64_t>> written_;  // per chunk: ops that wrote it
  std::map<std::string, int64_t> taken_;       // snapshot -> op
  int64_t op_ = 0;
  std::string last_;
  uint64_t overflow_seen_ = 0;
  uint64_t overflowed_ = 0;
  uint64_t copies_ = 0;
  int snapshots_made_ = 0, reverts_ = 0, reopens_ = 0;
};

// --seed=N after "--" reruns just that seed.
std::vector<uint64_t> Seeds(std::vector<uint64_t> defaults) {
  auto& ts = boost::unit_test::framework::master_test_suite();
  for (int i = 1; i < ts.argc; ++i) {
    std::string a = ts.argv[i];
    if (a.rfind("--seed=", 0) == 0) return {std::stoull(a.substr(7))};
  }
  return defaults;
}

}  // namespace

BOOST_AUTO_TEST_CASE(random_operations_match_the_model_in_memory) {
  for (uint64_t seed : Seeds({1, 2, 3, 4})) {
    FaultInjectionFileSystem fs;
    Params p;
    p.chunk_size = uint32_t(4 * KiB) << (seed % 3);  // 4K, 8K, 16K
    p.slots = 64 + 64 * (seed % 2);
    Runner(seed, &fs, "/m", p).Run();
  }
}

BOOST_AUTO_TEST_CASE(random_operations_match_the_model_with_a_roomy_diff_area) {
  for (uint64_t seed : Seeds({11, 12})) {
    FaultInjectionFileSystem fs;
    Params p;
    p.slots = 4096;  // no overflow: long snapshot histories
    p.max_snapshots = 48;
    p.check_every = 40;  // each full check reads every snapshot
    Runner(seed, &fs, "/m", p).Run();
  }
}

BOOST_AUTO_TEST_CASE(random_operations_match_the_model_on_real_files) {
  for (uint64_t seed : Seeds({21, 22})) {
    ScratchDir dir;
    Params p;
    p.chunk_size = 8 * KiB;
    p.origin_size = 512 * KiB + 4 * KiB;  // a partial last chunk
    p.slots = 96;
    p.extension = seed % 2 == 0;
    p.ops = 1000;
    Runner(seed, PosixFileSystem(), dir.str(), p).Run();
  }
}
