// Crash safety, with the fault-injection file system: random workloads are
// cut off by a simulated power loss at a random point (every mutating call
// after it fails), the disk keeps a random subset or prefix of the unsynced
// writes at 512-byte granularity, and the volume is reopened. Then:
//   - every snapshot reads back byte-exact as of its creation, or is
//     reported invalid with a reason (for plain crashes: none may be);
//   - no snapshot disappears except the one whose deletion was cut off, or
//     the oldest ones an interrupted write's overflow may have deleted;
//   - every byte written before the last Flush (or snapshot, or revert,
//     which sync the origin) and not written since is on the origin;
//   - the reopened volume works.
// And the data check matters: a group commit makes old data and its
// mapping durable with one sync, so a crash may keep a mapping without its
// data; with Open's check of the newest groups' data CRCs skipped (a
// test-only switch) the same checker finds wrong snapshots.
#define BOOST_TEST_MODULE cow_crash
#include <boost/test/unit_test.hpp>

#include <random>
#include <set>

#include "providers/software-cow/engine/cow_volume.hpp"
#include "providers/software-cow/engine/fault_injection_fs.hpp"
#include "providers/software-cow/engine/test_hooks.hpp"
#include "tests/software-cow/engine/cow_test_util.hpp"

using namespace snapset;
using namespace snapset::cow;
using snapset::cow::test::FirstDiff;
using snapset::cow::test::Model;
using snapset::cow::test::Pattern;
using Mode = FaultInjectionFileSystem::CrashMode;

namespace {

constexpr uint64_t KiB = 1024;

struct Tally {
  int trials = 0;
  int crashed_mid_op = 0;
  int invalid = 0;          // snapshots reported invalid after reopen
  int wrong = 0;            // snapshots that read back wrong: never allowed
  int lost = 0;             // snapshots gone without a reason
  int origin_wrong = 0;     // flushed origin bytes lost
  int unusable = 0;         // reopen failed or the volume misbehaved after
  std::vector<std::string> notes;
  void Note(std::string s) {
    if (notes.size() < 8) notes.push_back(std::move(s));
  }
};

class Trial {
 public:
  Trial(uint64_t seed, Tally* t) : seed_(seed), rng_(seed), t_(t) {}

  enum class Fault {
    kCrash,           // a power loss at a random point
    kError,           // one diff-area write or sync fails; the workload goes on
    kErrorThenCrash,  // both: the failed group's entries may be on disk without data
  };

  // After kError the workload must go on without an error, then the volume
  // is reopened.
  void Run(Fault fault = Fault::kCrash) {
    ++t_->trials;
    cs_ = uint32_t(4 * KiB) << (rng_() % 2);
    size_ = 64 * cs_ + (rng_() % 2 ? 4 * KiB : 0);
    CreateOptions o;
    o.name = "crash";
    o.origin_path = "/origin";
    o.origin_size = size_;
    o.chunk_size = cs_;
    const uint64_t slots = 24 + rng_() % 64;
    // Half the trials put half the slots in an extension file, whose sync
    // can fail while file 0's (the entries') succeeds.
    const uint64_t ext = rng_() % 2 ? slots / 2 : 0;
    o.diff_files = {
        {"/diff0", 128 * KiB + (slots * 64 + 4095) / 4096 * 4096 + (slots - ext) * cs_}};
    if (ext > 0) o.diff_files.push_back({"/diff1", 4 * KiB + ext * cs_});
    auto r = CowVolume::Create(&fs_, o);
    BOOST_REQUIRE_MESSAGE(r.ok(), r.status().ToString());
    v_ = std::move(*r);
    m_.origin.assign(size_, 0);
    flushed_ = m_.origin;
    dirty_.assign(size_, 0);

    // A start that every trial shares: data, a snapshot, more data.
    Write(0, Pattern(seed_, size_));
    Snapshot();
    Write(rng_() % (size_ / 2), Pattern(seed_ + 1, 3 * cs_));

    if (fault != Fault::kCrash) {
      if (rng_() % 2) {
        fs_.FailNthWrite(1 + rng_() % 20, "/diff");
      } else {
        fs_.FailNthSync(1 + rng_() % 20, "/diff");
      }
    }
    if (fault != Fault::kError) fs_.KillAfter(int64_t(rng_() % 150));
    for (int i = 0; i < 60 && !cut_; ++i) Step();
    if (fault == Fault::kError) {
      BOOST_REQUIRE_MESSAGE(!cut_, "seed " << seed_ << ": " << op_ << " failed with an injected "
                                           "diff-area error instead of carrying on: " << cut_status_);
      v_.reset();
    } else {
      if (cut_) ++t_->crashed_mid_op;
      const auto mode = Mode(rng_() % 3);
      fs_.Crash(seed_ * 7919, mode);
      v_.reset();  // the dead process's handles; writes nothing
    }
    Verify();
  }

 private:
  std::string Tag() const { return "seed " + std::to_string(seed_) + " (cut in: " + op_ + ")"; }

  // Runs one operation; on error the workload stops and the operation is
  // the one the crash cut off.
  bool Check(const Status& st) {
    if (st.ok()) return true;
    cut_ = true;
    cut_status_ = st.ToString();
    return false;
  }

  void Flushed() {
    flushed_ = m_.origin;
    std::fill(dirty_.begin(), dirty_.end(), 0);
  }

  void Write(uint64_t off, std::vector<uint8_t> d) {
    if (off + d.size() > size_) d.resize(size_ - off);
    op_ = "write " + std::to_string(d.size()) + "@" + std::to_string(off);
    std::fill(dirty_.begin() + int64_t(off), dirty_.begin() + int64_t(off + d.size()), 1);
    if (!Check(v_->Write(off, d.data(), d.size()))) return;
    m_.Write(off, d);
    Absorb();
  }

  void Snapshot() {
    const std::string id = "s" + std::to_string(++made_);
    op_ = "snapshot " + id;
    pending_id_ = id;
    if (!Check(v_->CreateSnapshot(id).status())) return;
    pending_id_.clear();
    m_.Snapshot(id);
    Flushed();
  }

  void Step() {
    const int dice = int(rng_() % 100);
    if (dice < 60) {
      const uint64_t n = 1 + rng_() % (3 * cs_);
      Write(rng_() % (size_ - n), Pattern(rng_(), n));
    } else if (dice < 74) {
      if (m_.order.size() < 12) Snapshot();
    } else if (dice < 82) {
      if (m_.order.empty()) return;
      const std::string id = m_.order[rng_() % m_.order.size()];
      op_ = "delete " + id;
      pending_id_ = id;
      if (!Check(v_->DeleteSnapshot(id))) return;
      pending_id_.clear();
      m_.Delete(id);
    } else if (dice < 92) {
      op_ = "flush";
      if (!Check(v_->Flush())) return;
      Flushed();
    } else {
      if (m_.order.empty()) return;
      const std::string id = m_.order[rng_() % m_.order.size()];
      auto info = v_->GetSnapshot(id);
      if (info.ok() && !info->valid) return;  // a diff-area error took it
      op_ = "revert " + id;
      pending_id_ = id;
      revert_ = true;
      if (!Check(v_->Revert(id))) return;
      revert_ = false;
      pending_id_.clear();
      m_.origin = m_.snaps[id];
      Flushed();
      Absorb();
    }
  }

  // Overflow deletions the engine reported: the model forgets them too.
  void Absorb() {
    const uint64_t total = v_->stats().snapshots_deleted_by_overflow;
    if (total == overflow_seen_) return;
    auto ev = v_->overflow_events();
    for (size_t i = ev.size() - size_t(std::min<uint64_t>(total - overflow_seen_, ev.size())); i < ev.size(); ++i) {
      m_.Delete(ev[i].snapshot_id);
    }
    overflow_seen_ = total;
  }

  void Verify() {
    auto r = CowVolume::Open(&fs_, "/diff0");
    if (!r.ok()) {
      ++t_->unusable;
      t_->Note(Tag() + ": reopen failed: " + r.status().ToString());
      return;
    }
    auto& v = **r;
    std::vector<uint8_t> img(size_);
    std::set<std::string> present, valid;
    for (const auto& s : v.ListSnapshots()) {
      present.insert(s.id);
      if (s.valid) valid.insert(s.id);
      if (!s.valid) {
        ++t_->invalid;
        if (s.invalid_reason.empty()) ++t_->wrong;
        t_->Note(Tag() + ": " + s.id + " invalid: " + s.invalid_reason);
        continue;
      }
      const std::vector<uint8_t>* want = nullptr;
      if (m_.snaps.count(s.id)) {
        want = &m_.snaps[s.id];
      } else if (s.id == pending_id_ && op_.rfind("snapshot", 0) == 0) {
        want = &m_.origin;  // its creation was cut off after it became durable
      } else {
        ++t_->wrong;
        t_->Note(Tag() + ": unexpected snapshot " + s.id);
        continue;
      }
      Status st = v.ReadSnapshot(s.id, 0, img.data(), size_);
      if (!st.ok() || FirstDiff(img, *want) != -1) {
        ++t_->wrong;
        t_->Note(Tag() + ": snapshot " + s.id + " reads wrong at " +
                 std::to_string(FirstDiff(img, *want)) + " " + st.ToString());
      }
    }
    // Missing snapshots: the cut-off delete, or the oldest valid ones
    // (overflow of a cut-off write or revert; a revert spares its source,
    // and overflow passes over invalid snapshots, which hold no data).
    size_t oldest_present = m_.order.size();
    for (size_t i = 0; i < m_.order.size(); ++i) {
      if (valid.count(m_.order[i]) && !(revert_ && m_.order[i] == pending_id_)) {
        oldest_present = std::min(oldest_present, i);
      }
    }
    for (size_t i = 0; i < m_.order.size(); ++i) {
      const auto& id = m_.order[i];
      if (present.count(id)) continue;
      const bool deleting = id == pending_id_ && op_.rfind("delete", 0) == 0;
      const bool overflow = cut_ && (op_.rfind("write", 0) == 0 || revert_) && i < oldest_present;
      if (!deleting && !overflow) {
        ++t_->lost;
        t_->Note(Tag() + ": snapshot " + id + " disappeared");
      }
    }
    // The origin keeps what was flushed. A revert cut off after it was
    // recorded is finished by Open: then the origin is the source's image.
    std::vector<uint8_t> origin(size_);
    if (!v.Read(0, origin.data(), size_).ok()) {
      ++t_->unusable;
      return;
    }
    const bool reverted = revert_ && m_.snaps.count(pending_id_) && origin == m_.snaps[pending_id_];
    if (!reverted) {
      for (uint64_t i = 0; i < size_; ++i) {
        if (!dirty_[i] && origin[i] != flushed_[i]) {
          ++t_->origin_wrong;
          t_->Note(Tag() + ": flushed origin byte " + std::to_string(i) + " lost");
          break;
        }
      }
    }
    // Still a working volume: a write after a new snapshot, read back.
    auto s = v.CreateSnapshot("after");
    const auto d = Pattern(seed_ + 99, cs_);
    if (!s.ok() || !v.Write(0, d.data(), d.size()).ok() ||
        !v.ReadSnapshot("after", 0, img.data(), size_).ok() || img != origin) {
      ++t_->unusable;
      t_->Note(Tag() + ": volume unusable after reopen");
    }
  }

  uint64_t seed_;
  std::mt19937_64 rng_;
  Tally* t_;
  FaultInjectionFileSystem fs_;
  std::unique_ptr<CowVolume> v_;
  uint32_t cs_ = 0;
  uint64_t size_ = 0;
  Model m_;
  std::vector<uint8_t> flushed_, dirty_;
  std::string op_, pending_id_, cut_status_;
  bool cut_ = false, revert_ = false;
  int made_ = 0;
  uint64_t overflow_seen_ = 0;
};

void Report(const char* what, const Tally& t) {
  BOOST_TEST_MESSAGE(what << ": " << t.trials << " trials, " << t.crashed_mid_op
                          << " cut mid-workload; invalid " << t.invalid << ", wrong " << t.wrong
                          << ", lost " << t.lost << ", origin wrong " << t.origin_wrong
                          << ", unusable " << t.unusable);
  for (const auto& n : t.notes) BOOST_TEST_MESSAGE("  " << n);
}

struct HookReset {
  ~HookReset() { testing::SetSkipDataCheckForTesting(false); }
};

}  // namespace

BOOST_AUTO_TEST_CASE(after_a_crash_at_any_point_every_snapshot_is_exact) {
  Tally t;
  for (uint64_t seed = 1; seed <= 400; ++seed) {
    BOOST_TEST_CONTEXT("seed " << seed) { Trial(seed, &t).Run(); }
  }
  Report("plain crashes", t);
  BOOST_CHECK_GT(t.crashed_mid_op, 200);
  BOOST_CHECK_EQUAL(t.wrong, 0);
  BOOST_CHECK_EQUAL(t.invalid, 0);  // correct ordering: nothing to give up
  BOOST_CHECK_EQUAL(t.lost, 0);
  BOOST_CHECK_EQUAL(t.origin_wrong, 0);
  BOOST_CHECK_EQUAL(t.unusable, 0);
}

// The checker above is able to see what the data check prevents: skip it,
// and crashes leave trusted mappings to data that never reached the disk.
BOOST_AUTO_TEST_CASE(skipping_the_data_check_at_open_is_caught) {
  HookReset reset;
  testing::SetSkipDataCheckForTesting(true);
  Tally t;
  for (uint64_t seed = 1001; seed <= 1300; ++seed) Trial(seed, &t).Run();
  testing::SetSkipDataCheckForTesting(false);
  Report("data check skipped", t);
  BOOST_CHECK_GT(t.wrong, 0);
}

// A diff area that fails one write or sync: origin writes carry on, and
// each snapshot is exact or says it is invalid, never silently wrong.
BOOST_AUTO_TEST_CASE(diff_area_errors_invalidate_snapshots_but_never_corrupt_them) {
  Tally t;
  for (uint64_t seed = 2001; seed <= 2200; ++seed) {
    BOOST_TEST_CONTEXT("seed " << seed) { Trial(seed, &t).Run(Trial::Fault::kError); }
  }
  Report("injected diff-area errors", t);
  BOOST_CHECK_GT(t.invalid, 0);
  BOOST_CHECK_EQUAL(t.wrong, 0);
  BOOST_CHECK_EQUAL(t.lost, 0);
  BOOST_CHECK_EQUAL(t.origin_wrong, 0);
  BOOST_CHECK_EQUAL(t.unusable, 0);
}

// A failed group leaves entries that may be on disk without their data,
// and later groups' syncs succeed: their `durable` must stay below the
// failed group, or Open would trust its entries. An error, then a crash
// before (or after) the engine has recorded the lost snapshots invalid.
BOOST_AUTO_TEST_CASE(a_diff_area_error_then_a_crash_never_leaves_a_wrong_snapshot) {
  Tally t;
  for (uint64_t seed = 3001; seed <= 3300; ++seed) {
    BOOST_TEST_CONTEXT("seed " << seed) { Trial(seed, &t).Run(Trial::Fault::kErrorThenCrash); }
  }
  Report("injected diff-area errors, then crashes", t);
  BOOST_CHECK_GT(t.crashed_mid_op, 150);
  BOOST_CHECK_EQUAL(t.wrong, 0);
  BOOST_CHECK_EQUAL(t.lost, 0);
  BOOST_CHECK_EQUAL(t.origin_wrong, 0);
  BOOST_CHECK_EQUAL(t.unusable, 0);
}
