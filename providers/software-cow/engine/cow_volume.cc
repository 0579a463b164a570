// CowVolume: the public surface and the I/O paths.
//
// A write, chunk range [first, last]:
//   gate shared -> stripes exclusive -> for each chunk whose newest copy is
//   older than the newest snapshot: take a slot, copy the old data out ->
//   one group commit for all of them -> index update -> origin pwrite.
// When no copy is needed (no snapshot, or every chunk already copied since
// the newest one) that is a lock, a hash lookup per chunk and the pwrite:
// no sync, no allocation.
//
// Two rare cases leave the fast path, drop every lock, take the gate
// exclusively and retry afterwards: the diff area is full (delete the
// oldest snapshot until there is room, reserving the slots for this write),
// and the diff area failed (mark the snapshots that lost data invalid).
#include "providers/software-cow/engine/cow_volume.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "providers/software-cow/engine/cow_volume_impl.hpp"
#include "providers/software-cow/engine/test_hooks.hpp"

namespace snapset::cow {

namespace testing {
namespace {
std::atomic<bool> g_skip_data_check{false};
}
void SetSkipDataCheckForTesting(bool skip) { g_skip_data_check.store(skip); }
bool SkipDataCheckForTesting() { return g_skip_data_check.load(std::memory_order_relaxed); }
}  // namespace testing

namespace {
// Writes larger than this are split, so a copy batch's buffer stays bounded.
constexpr uint64_t kMaxBatchBytes = 8 << 20;

// Per-thread scratch, reused across writes: the copy list and old data.
thread_local std::vector<format::SlotEntry> tls_copies;
thread_local std::vector<uint8_t> tls_copy_buf;
}  // namespace

int64_t NowUnixNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Status ValidateChunkSize(uint64_t cs) {
  if (cs < kMinChunkSize || cs > kMaxChunkSize || (cs & (cs - 1)) != 0) {
    return Status::InvalidArgument("chunk size " + std::to_string(cs) +
                                   " is not valid: it must be a power of two from " +
                                   std::to_string(kMinChunkSize) + " (4 KiB) to " +
                                   std::to_string(kMaxChunkSize) + " (1 MiB); the default is " +
                                   std::to_string(kDefaultChunkSize));
  }
  return Status::Ok();
}

Status ValidateName(const std::string& what, const std::string& name) {
  const std::string rule = " must be 1 to " + std::to_string(kMaxSnapshotIdLength) +
                           " characters of A-Z a-z 0-9 . _ -, and not \".\" or \"..\"";
  if (name.empty()) return Status::InvalidArgument(what + " is empty; it" + rule);
  if (name.size() > kMaxSnapshotIdLength) {
    return Status::InvalidArgument(what + " '" + name.substr(0, 16) + "...' is " +
                                   std::to_string(name.size()) + " characters long; it" + rule);
  }
  for (char c : name) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) {
      return Status::InvalidArgument(what + " '" + name + "' contains a character that is not "
                                     "allowed; it" + rule);
    }
  }
  if (name == "." || name == "..") return Status::InvalidArgument(what + " '" + name + "': it" + rule);
  return Status::Ok();
}

CowVolume::Impl::Impl(FileSystem* f)
    : fs(f), commits([this](const std::vector<CommitRequest*>& g) { return CommitGroup(g); }) {}

Status CowVolume::Impl::CheckRange(const char* what, uint64_t offset, size_t n) const {
  if (offset > geo.origin_size || n > geo.origin_size - offset) {
    return Status::InvalidArgument(std::string(what) + " of " + std::to_string(n) +
                                   " bytes at offset " + std::to_string(offset) +
                                   " goes beyond the end of volume '" + name + "' (" +
                                   std::to_string(geo.origin_size) + " bytes)");
  }
  return Status::Ok();
}

Status CowVolume::Impl::BrokenStatus() const {
  std::shared_lock lock(meta_mu);
  return Status::BadState("volume '" + name + "' refuses changes: " + broken_why);
}

Status CowVolume::Impl::Write(uint64_t offset, const uint8_t* buf, size_t n) {
  SNAPSET_RETURN_IF_ERROR(CheckRange("write", offset, n));
  while (n > 0) {
    // Split at a chunk boundary so no chunk is in two batches.
    const uint64_t limit = (offset + kMaxBatchBytes) & ~uint64_t(geo.chunk_size - 1);
    const size_t part = size_t(std::min<uint64_t>(n, limit - offset));
    SNAPSET_RETURN_IF_ERROR(WriteBatch(offset, buf, part));
    offset += part;
    buf += part;
    n -= part;
  }
  return Status::Ok();
}

Status CowVolume::Impl::WriteBatch(uint64_t offset, const uint8_t* buf, size_t n) {
  const uint64_t first = offset >> geo.chunk_shift;
  const uint64_t last = (offset + n - 1) >> geo.chunk_shift;
  std::vector<uint32_t> reserved;  // slots MakeRoom set aside for this write
  auto& copies = tls_copies;
  for (;;) {
    if (broken.load()) {
      slots.Free(reserved);
      return BrokenStatus();
    }
    enum { kDone, kNeedRoom, kDiffFailed } outcome = kDone;
    Status st;
    {
      std::shared_lock gate_lock(gate);
      StripeGuard stripes(&index, first, last, /*exclusive=*/true);
      copies.clear();
      const uint64_t e = newest_live;
      if (e != 0) {
        for (uint64_t c = first; c <= last; ++c) {
          const uint64_t max_to = index.MaxTo(c);
          if (max_to < e) copies.push_back({0, c, max_to, e});
        }
      }
      if (!copies.empty()) {
        if (!TakeSlots(&copies, &reserved)) {
          outcome = kNeedRoom;
        } else {
          uint64_t mask = 0;
          bool origin_failed = false;
          st = CopyOut(&copies, &mask, &origin_failed);
          if (!st.ok() && origin_failed) {
            // The old data cannot be read, so it cannot be saved: do not
            // overwrite it either. No entry was written; the slots are free.
            for (const auto& c : copies) slots.Free(uint32_t(c.slot));
            slots.Free(reserved);
            return st;
          }
          if (st.ok()) {
            CommitRequest req;
            req.entries = &copies;
            req.file_mask = mask;
            st = commits.Submit(&req);
          }
          if (!st.ok()) {
            outcome = kDiffFailed;
          } else {
            for (const auto& c : copies) {
              index.Add(c.chunk, Mapping{c.from, c.to, uint32_t(c.slot)});
            }
            chunks_copied.fetch_add(copies.size(), std::memory_order_relaxed);
          }
        }
      }
      if (outcome == kDone) {
        st = origin->WriteAt(offset, buf, n);
        origin_writes.fetch_add(1, std::memory_order_acq_rel);
      }
    }
    switch (outcome) {
      case kDone:
        if (!reserved.empty()) slots.Free(reserved);
        return st;
      case kNeedRoom:
        MakeRoom(first, last, &reserved);
        break;
      case kDiffFailed: {
        Status r = RecoverFromCopyFailure(copies, st);
        if (!r.ok()) {
          slots.Free(reserved);
          return r;
        }
        break;
      }
    }
  }
}

bool CowVolume::Impl::TakeSlots(std::vector<format::SlotEntry>* copies,
                                std::vector<uint32_t>* reserved) {
  const size_t need = copies->size();
  if (reserved->size() < need && !slots.Allocate(need - reserved->size(), reserved)) return false;
  std::sort(reserved->begin(), reserved->end());
  for (size_t i = 0; i < need; ++i) (*copies)[i].slot = (*reserved)[i];
  reserved->erase(reserved->begin(), reserved->begin() + ptrdiff_t(need));
  return true;
}

Status CowVolume::Impl::CopyOut(std::vector<format::SlotEntry>* copies_out, uint64_t* file_mask,
                                bool* origin_failed) {
  auto& copies = *copies_out;
  auto& buf = tls_copy_buf;
  const uint32_t shift = geo.chunk_shift;
  size_t i = 0;
  while (i < copies.size()) {
    // A run of consecutive chunks: one origin read.
    size_t j = i;
    while (j + 1 < copies.size() && copies[j + 1].chunk == copies[j].chunk + 1) ++j;
    const uint64_t start = copies[i].chunk << shift;
    const uint64_t end = std::min((copies[j].chunk + 1) << shift, geo.origin_size);
    const size_t len = size_t(end - start);
    if (buf.size() < len) buf.resize(len);
    Status st = origin->ReadAt(start, buf.data(), len);
    if (!st.ok()) {
      *origin_failed = true;
      return st;
    }
    for (size_t k = i; k <= j; ++k) {
      const uint64_t boff = (copies[k].chunk - copies[i].chunk) << shift;
      copies[k].data_crc =
          format::Crc32(buf.data() + boff, size_t(std::min<uint64_t>(geo.chunk_size, len - boff)));
    }
    // Within the run, consecutive slots of one file: one diff-area write.
    size_t k = i;
    while (k <= j) {
      const size_t f = geo.FileOfSlot(copies[k].slot);
      size_t m = k;
      while (m + 1 <= j && copies[m + 1].slot == copies[m].slot + 1 &&
             geo.FileOfSlot(copies[m + 1].slot) == f) {
        ++m;
      }
      const uint64_t boff = (copies[k].chunk - copies[i].chunk) << shift;
      const uint64_t blen = std::min(uint64_t(m - k + 1) << shift, len - boff);
      if (!diff[f]) return Status::Internal("diff-area file " + geo.files[f].path + " is unusable");
      SNAPSET_RETURN_IF_ERROR(
          diff[f]->WriteAt(geo.SlotOffset(f, copies[k].slot), buf.data() + boff, size_t(blen)));
      *file_mask |= uint64_t(1) << f;
      k = m + 1;
    }
    i = j + 1;
  }
  return Status::Ok();
}

// The leader's commit for a whole group: steps 1 and 2 of the ordering in
// cow_volume.hpp. The old data is in its slots already (CopyOut); the
// entries go out, entries of consecutive slots in one write, and then one
// sync per file touched makes data and entries durable together.
// Groups are serialized (one leader at a time), so when group g starts
// every earlier group's sync has returned: g - 1 is its `durable`, unless a
// group failed, whose entries may be on disk without their data; from then
// on `durable` stays below the failed group, so Open checks the data of
// every entry written since.
Status CowVolume::Impl::CommitGroup(const std::vector<CommitRequest*>& group) {
  const uint64_t g = ++last_group;
  const uint64_t durable = group_failed ? durable_floor : g - 1;
  uint64_t mask = 1;  // file 0 holds the table
  std::vector<format::SlotEntry> all;
  for (const CommitRequest* r : group) {
    mask |= r->file_mask;
    all.insert(all.end(), r->entries->begin(), r->entries->end());
  }
  std::sort(all.begin(), all.end(),
            [](const format::SlotEntry& a, const format::SlotEntry& b) { return a.slot < b.slot; });
  std::vector<uint8_t> bytes(all.size() * format::kSlotEntrySize);
  for (size_t i = 0; i < all.size(); ++i) {
    all[i].group = g;
    all[i].durable = durable;
    format::EncodeSlotEntry(all[i], area_tag, &bytes[i * format::kSlotEntrySize]);
  }
  Status st;
  size_t i = 0;
  while (st.ok() && i < all.size()) {
    size_t j = i;
    while (j + 1 < all.size() && all[j + 1].slot == all[j].slot + 1) ++j;
    st = diff[0]->WriteAt(geo.EntryOffset(all[i].slot), &bytes[i * format::kSlotEntrySize],
                          (j - i + 1) * format::kSlotEntrySize);
    i = j + 1;
  }
  for (size_t f = 0; st.ok() && f < diff.size(); ++f) {
    if (mask & (uint64_t(1) << f)) st = diff[f]->Sync();
  }
  if (!st.ok() && !group_failed) {
    group_failed = true;
    durable_floor = g - 1;
  }
  return st;
}

uint64_t CowVolume::Impl::CountCopiesNeeded(uint64_t first, uint64_t last) const {
  const uint64_t e = newest_live;
  if (e == 0) return 0;
  uint64_t need = 0;
  for (uint64_t c = first; c <= last; ++c) need += index.MaxTo(c) < e ? 1 : 0;
  return need;
}

// Overflow: with the gate held exclusively no write runs, so the need
// counted here is exact; slots found are reserved for the retrying write so
// that other writers cannot take them in between.
void CowVolume::Impl::MakeRoom(uint64_t first, uint64_t last, std::vector<uint32_t>* reserved) {
  std::unique_lock gate_lock(gate);
  for (;;) {
    if (broken.load()) return;
    const uint64_t need = CountCopiesNeeded(first, last);
    if (need <= reserved->size()) return;
    slots.TakeUpTo(size_t(need - reserved->size()), reserved);
    if (need <= reserved->size()) return;
    if (!DeleteOldestForOverflow().ok()) return;  // broken, or nothing left
  }
}

// The diff area failed to take the old data (a write or sync error). The
// snapshots that needed it lose it: record them invalid, durably, so they
// are never read as if whole; then the write can go ahead without them.
Status CowVolume::Impl::RecoverFromCopyFailure(const std::vector<format::SlotEntry>& copies,
                                               const Status& cause) {
  std::unique_lock gate_lock(gate);
  if (broken.load()) return BrokenStatus();
  const std::string reason = "the diff area failed while saving data this snapshot needs (" +
                             cause.ToString() + "); its contents are incomplete";
  {
    std::unique_lock lock(meta_mu);
    InvalidateIf(
        [&](uint64_t e) {
          for (const auto& c : copies) {
            if (c.from < e && e <= c.to) return true;
          }
          return false;
        },
        reason);
    RecomputeLive();
  }
  SNAPSET_RETURN_IF_ERROR(CommitSuperblock());
  // Their entries, if any reached the disk, now hold only invalid epochs.
  for (const auto& c : copies) slots.Free(uint32_t(c.slot));
  Reclaim();
  return Status::Ok();
}

Status CowVolume::Impl::ReadSnapshotLocked(uint64_t epoch, uint64_t offset, uint8_t* buf,
                                           size_t n) {
  if (n == 0) return Status::Ok();
  const uint32_t shift = geo.chunk_shift;
  const uint64_t first = offset >> shift, last = (offset + n - 1) >> shift;
  StripeGuard stripes(&index, first, last, /*exclusive=*/false);
  // Adjacent pieces from the same file at adjacent offsets become one pread.
  File* pf = nullptr;
  uint64_t poff = 0;
  uint8_t* pdst = nullptr;
  size_t plen = 0;
  for (uint64_t c = first; c <= last; ++c) {
    const uint64_t cstart = std::max(offset, c << shift);
    const uint64_t cend = std::min(offset + n, (c + 1) << shift);
    File* f;
    uint64_t foff;
    if (const Mapping* m = index.Find(c, epoch)) {
      const size_t fi = geo.FileOfSlot(m->slot);
      f = diff[fi].get();
      if (!f) return Status::Internal("diff-area file " + geo.files[fi].path + " is unusable");
      foff = geo.SlotOffset(fi, m->slot) + (cstart - (c << shift));
    } else {
      f = origin.get();
      foff = cstart;
    }
    uint8_t* dst = buf + (cstart - offset);
    const size_t len = size_t(cend - cstart);
    if (f == pf && poff + plen == foff) {
      plen += len;
    } else {
      if (plen > 0) SNAPSET_RETURN_IF_ERROR(pf->ReadAt(poff, pdst, plen));
      pf = f;
      poff = foff;
      pdst = dst;
      plen = len;
    }
  }
  if (plen > 0) SNAPSET_RETURN_IF_ERROR(pf->ReadAt(poff, pdst, plen));
  return Status::Ok();
}

// ---- the public surface ----

CowVolume::CowVolume(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CowVolume::~CowVolume() = default;

const std::string& CowVolume::name() const { return impl_->name; }
const std::string& CowVolume::origin_path() const { return impl_->origin_path; }
const std::string& CowVolume::diff_path() const { return impl_->diff_path; }
uint64_t CowVolume::size() const { return impl_->geo.origin_size; }
uint32_t CowVolume::chunk_size() const { return impl_->geo.chunk_size; }

Status CowVolume::Read(uint64_t offset, void* buf, size_t n) {
  SNAPSET_RETURN_IF_ERROR(impl_->CheckRange("read", offset, n));
  if (n == 0) return Status::Ok();
  return impl_->origin->ReadAt(offset, buf, n);
}

Status CowVolume::Write(uint64_t offset, const void* buf, size_t n) {
  return impl_->Write(offset, static_cast<const uint8_t*>(buf), n);
}

Status CowVolume::Impl::SyncOrigin() {
  const uint64_t target = origin_writes.load(std::memory_order_acquire);
  if (origin_synced.load(std::memory_order_acquire) >= target) return Status::Ok();
  SNAPSET_RETURN_IF_ERROR(origin->Sync());
  uint64_t seen = origin_synced.load(std::memory_order_relaxed);
  while (seen < target &&
         !origin_synced.compare_exchange_weak(seen, target, std::memory_order_acq_rel)) {
  }
  return Status::Ok();
}

Status CowVolume::Flush() { return impl_->SyncOrigin(); }

Status CowVolume::ReadSnapshot(const std::string& id, uint64_t offset, void* buf, size_t n) {
  SNAPSET_RETURN_IF_ERROR(impl_->CheckRange("snapshot read", offset, n));
  std::shared_lock gate_lock(impl_->gate);
  uint64_t epoch;
  {
    std::shared_lock lock(impl_->meta_mu);
    const SbSnapshot* s = impl_->FindSnapshot(id);
    if (!s) return impl_->NoSuchSnapshot(id);
    if (!s->valid) return impl_->InvalidSnapshot(*s);
    epoch = s->epoch;
  }
  return impl_->ReadSnapshotLocked(epoch, offset, static_cast<uint8_t*>(buf), n);
}

Stats CowVolume::stats() const {
  Stats s;
  const Impl& m = *impl_;
  s.origin_bytes = m.geo.origin_size;
  s.chunk_size = m.geo.chunk_size;
  s.slots_total = m.geo.slots_total;
  s.slots_used = m.geo.slots_total - m.slots.free_count();
  s.diff_bytes_max = s.slots_total * s.chunk_size;
  s.diff_bytes_used = s.slots_used * s.chunk_size;
  s.chunks_copied = m.chunks_copied.load();
  s.group_commits = m.commits.groups();
  s.index_memory_bytes = m.index.MemoryBytes() + m.slots.MemoryBytes();
  std::shared_lock lock(m.meta_mu);
  s.snapshots = m.snaps.size();
  s.snapshots_deleted_by_overflow = m.overflow_total;
  return s;
}

}  // namespace snapset::cow
