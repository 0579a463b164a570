// Snapshots: create, delete, overflow, revert, changed chunks, and the
// superblock commit that makes each of those changes durable.
#include <algorithm>

#include "providers/software-cow/engine/cow_volume_impl.hpp"

namespace snapset::cow {

void CowVolume::Impl::RecomputeLive() {
  live.clear();
  by_id.clear();
  for (const auto& s : snaps) {
    by_id.emplace(s.id, s.epoch);
    if (s.valid) live.push_back(s.epoch);
  }
  newest_live = live.empty() ? 0 : live.back();
}

bool CowVolume::Impl::RangeHoldsLive(uint64_t from, uint64_t to) const {
  auto it = std::upper_bound(live.begin(), live.end(), from);
  return it != live.end() && *it <= to;
}

bool CowVolume::Impl::IsLive(uint64_t epoch) const {
  return std::binary_search(live.begin(), live.end(), epoch);
}

const SbSnapshot* CowVolume::Impl::FindSnapshot(const std::string& id) const {
  auto it = by_id.find(id);
  if (it == by_id.end()) return nullptr;
  auto s = std::lower_bound(snaps.begin(), snaps.end(), it->second,
                            [](const SbSnapshot& a, uint64_t e) { return a.epoch < e; });
  return s != snaps.end() && s->epoch == it->second ? &*s : nullptr;
}

SbSnapshot* CowVolume::Impl::FindSnapshot(const std::string& id) {
  return const_cast<SbSnapshot*>(static_cast<const Impl*>(this)->FindSnapshot(id));
}

Status CowVolume::Impl::NoSuchSnapshot(const std::string& id) const {
  return Status::NotFound("snapshot '" + id + "' does not exist on volume '" + name +
                          "' (it may have been deleted, also by diff-area overflow; see the "
                          "volume's overflow events)");
}

Status CowVolume::Impl::InvalidSnapshot(const SbSnapshot& s) const {
  return Status::BadState("snapshot '" + s.id + "' of volume '" + name +
                          "' is invalid and cannot be read: " + s.reason +
                          "; delete it");
}

SuperblockData CowVolume::Impl::BuildSuperblock() const {
  SuperblockData sb;
  sb.uuid = uuid;
  sb.chunk_size = geo.chunk_size;
  sb.origin_size = geo.origin_size;
  sb.next_epoch = next_epoch;
  sb.overflow_deleted_total = overflow_total;
  sb.name = name;
  sb.origin_path = origin_path;
  sb.table_offset = geo.table_offset;
  for (const auto& f : geo.files) sb.files.push_back({f.path, f.slot_count, f.data_offset});
  sb.snapshots = snaps;
  for (const auto& e : events) sb.events.push_back({e.snapshot_id, e.when_unix_ns, e.reason});
  sb.revert_active = revert_active;
  sb.revert_epoch = revert_epoch;
  sb.revert_id = revert_id;
  return sb;
}

// Writes the copy that does not hold the newest durable superblock and
// syncs: a failed or torn write can never destroy the last good one. Then
// the same bytes go to the other copy too, without waiting for them (the
// next sync of file 0 makes them durable): normally both copies hold the
// newest state, so damage to one copy never brings back an older state, in
// which a deleted snapshot whose slots were reused would read wrong.
Status CowVolume::Impl::CommitSuperblock() {
  std::lock_guard sb_lock(sb_mu);
  if (broken.load()) return BrokenStatus();
  SuperblockData sb;
  {
    std::shared_lock lock(meta_mu);
    sb = BuildSuperblock();
  }
  Status last;
  for (int attempt = 0; attempt < 2; ++attempt) {
    sb.sequence = ++sb_seq;
    auto bytes = EncodeSuperblock(sb);
    if (!bytes.ok()) {
      last = bytes.status();
      break;
    }
    const int target = 1 - sb_good;
    last = diff[0]->WriteAt(format::SuperblockOffset(target), bytes->data(), bytes->size());
    if (last.ok()) last = diff[0]->Sync();
    if (last.ok()) {
      sb_good = target;
      (void)diff[0]->WriteAt(format::SuperblockOffset(1 - target), bytes->data(), bytes->size());
      return Status::Ok();
    }
  }
  {
    std::unique_lock lock(meta_mu);
    broken_why = "writing the superblock of diff area " + diff_path + " failed (" +
                 last.ToString() +
                 "); to keep its snapshots consistent the volume takes no more writes or "
                 "snapshot changes; reopen it";
  }
  broken.store(true);
  return Status(last.code(), broken_why);
}

void CowVolume::Impl::Reclaim() {
  std::vector<uint32_t> freed;
  index.RemoveIf([&](uint64_t from, uint64_t to) { return !RangeHoldsLive(from, to); },
                 [&](uint32_t slot) { freed.push_back(slot); });
  slots.Free(freed);
}

Status CowVolume::Impl::DeleteLocked(const std::string& id, const std::string* overflow_reason) {
  {
    std::unique_lock lock(meta_mu);
    const SbSnapshot* s = FindSnapshot(id);
    if (!s) return NoSuchSnapshot(id);
    snaps.erase(snaps.begin() + (s - snaps.data()));
    if (overflow_reason) {
      events.push_back({id, NowUnixNs(), *overflow_reason});
      while (events.size() > kMaxOverflowEvents) events.pop_front();
      ++overflow_total;
    }
    RecomputeLive();
  }
  // Durable first: until then a crash brings the snapshot back, and its
  // slots must still hold its data.
  SNAPSET_RETURN_IF_ERROR(CommitSuperblock());
  Reclaim();
  return Status::Ok();
}

Status CowVolume::Impl::DeleteOldestForOverflow() {
  std::string victim;
  {
    std::shared_lock lock(meta_mu);
    const uint64_t pin = pinned.load();
    for (const auto& s : snaps) {  // oldest first; invalid ones hold no data
      if (s.valid && s.epoch != pin) {
        victim = s.id;
        break;
      }
    }
    if (victim.empty()) {  // only the revert source is left: it goes too
      for (const auto& s : snaps) {
        if (s.valid) {
          victim = s.id;
          break;
        }
      }
    }
  }
  if (victim.empty()) return Status::NotFound("no snapshot left to delete");
  const std::string reason =
      "diff area full: all " + std::to_string(geo.slots_total) + " slots of " +
      std::to_string(geo.chunk_size) +
      " bytes held data of live snapshots, so the oldest snapshot was deleted to make room";
  return DeleteLocked(victim, &reason);
}

// ---- public snapshot operations ----

Result<SnapshotInfo> CowVolume::CreateSnapshot(const std::string& id) {
  SNAPSET_RETURN_IF_ERROR(ValidateName("snapshot id", id));
  Impl& m = *impl_;
  std::unique_lock gate_lock(m.gate);  // waits for in-flight writes
  if (m.broken.load()) return m.BrokenStatus();
  {
    std::shared_lock lock(m.meta_mu);
    if (m.FindSnapshot(id)) {
      return Status::AlreadyExists("snapshot '" + id + "' already exists on volume '" + m.name +
                                   "'; choose another id");
    }
    if (m.snaps.size() >= kMaxSnapshots) {
      return Status::MaxSnapshots("volume '" + m.name + "' already has " +
                                  std::to_string(kMaxSnapshots) +
                                  " snapshots, the most it can hold; delete one first");
    }
  }
  // The snapshot's view of chunks never copied is the origin itself: make
  // every completed write durable before the snapshot exists on disk.
  // Usually free inside a commit window: the filesystem's freeze above has
  // just flushed through to Flush().
  SNAPSET_RETURN_IF_ERROR(m.SyncOrigin());
  SnapshotInfo info;
  {
    std::unique_lock lock(m.meta_mu);
    SbSnapshot s{id, m.next_epoch++, NowUnixNs(), true, {}};
    m.snaps.push_back(s);
    m.RecomputeLive();
    info.id = s.id;
    info.epoch = s.epoch;
    info.created_unix_ns = s.created_unix_ns;
  }
  Status st = m.CommitSuperblock();
  if (!st.ok()) {
    std::unique_lock lock(m.meta_mu);
    m.snaps.pop_back();
    m.RecomputeLive();
    return st;
  }
  return info;
}

Status CowVolume::DeleteSnapshot(const std::string& id) {
  Impl& m = *impl_;
  std::unique_lock gate_lock(m.gate);
  if (m.broken.load()) return m.BrokenStatus();
  {
    std::shared_lock lock(m.meta_mu);
    const SbSnapshot* s = m.FindSnapshot(id);
    if (!s) return m.NoSuchSnapshot(id);
    if (m.revert_active && m.revert_epoch == s->epoch) {
      return Status::BadState("snapshot '" + id + "' is the source of a revert in progress; "
                              "let the revert finish first");
    }
  }
  return m.DeleteLocked(id, nullptr);
}

std::vector<SnapshotInfo> CowVolume::ListSnapshots() const {
  std::shared_lock lock(impl_->meta_mu);
  std::vector<SnapshotInfo> out;
  for (const auto& s : impl_->snaps) {
    out.push_back({s.id, s.epoch, s.created_unix_ns, s.valid, s.reason});
  }
  return out;
}

Result<SnapshotInfo> CowVolume::GetSnapshot(const std::string& id) const {
  std::shared_lock lock(impl_->meta_mu);
  const SbSnapshot* s = impl_->FindSnapshot(id);
  if (!s) return impl_->NoSuchSnapshot(id);
  return SnapshotInfo{s->id, s->epoch, s->created_unix_ns, s->valid, s->reason};
}

std::vector<OverflowEvent> CowVolume::overflow_events() const {
  std::shared_lock lock(impl_->meta_mu);
  return {impl_->events.begin(), impl_->events.end()};
}

Result<std::vector<ChunkRun>> CowVolume::ChangedChunks(const std::string& from_id,
                                                       const std::string& to_id) const {
  Impl& m = *impl_;
  std::shared_lock gate_lock(m.gate);
  uint64_t a = 0, b = 0;
  {
    std::shared_lock lock(m.meta_mu);
    const SbSnapshot* sa = m.FindSnapshot(from_id);
    if (!sa) return m.NoSuchSnapshot(from_id);
    if (!sa->valid) return m.InvalidSnapshot(*sa);
    a = sa->epoch;
    if (!to_id.empty()) {
      const SbSnapshot* sb = m.FindSnapshot(to_id);
      if (!sb) return m.NoSuchSnapshot(to_id);
      if (!sb->valid) return m.InvalidSnapshot(*sb);
      if (sb->epoch <= a) {
        return Status::InvalidArgument("snapshot '" + to_id + "' is not newer than '" + from_id +
                                       "'; give the older snapshot first");
      }
      b = sb->epoch;
    }
  }
  // Chunk c differs iff the copy holding a's epoch exists and (against a
  // newer snapshot b) was made before b was taken, i.e. its `to` < b.
  std::vector<uint64_t> chunks;
  m.index.ForEach([&](uint64_t c, const std::vector<Mapping>& v) {
    auto it = std::lower_bound(v.begin(), v.end(), a,
                               [](const Mapping& x, uint64_t e) { return x.to < e; });
    if (it == v.end() || it->from >= a) return;
    if (b == 0 || it->to < b) chunks.push_back(c);
  });
  std::sort(chunks.begin(), chunks.end());
  std::vector<ChunkRun> runs;
  for (uint64_t c : chunks) {
    if (!runs.empty() && runs.back().first + runs.back().count == c) {
      ++runs.back().count;
    } else {
      runs.push_back({c, 1});
    }
  }
  return runs;
}

// ---- revert ----

Status CowVolume::Revert(const std::string& id) {
  Impl& m = *impl_;
  if (m.broken.load()) return m.BrokenStatus();
  {
    std::unique_lock lock(m.meta_mu);
    const SbSnapshot* s = m.FindSnapshot(id);
    if (!s) return m.NoSuchSnapshot(id);
    if (!s->valid) {
      return Status::BadState("snapshot '" + id + "' is invalid (" + s->reason +
                              "); the volume cannot be reverted to it");
    }
    if (m.revert_active && m.revert_id != id) {
      return Status::BadState("a revert of volume '" + m.name + "' to snapshot '" + m.revert_id +
                              "' is in progress; let it finish first");
    }
    m.revert_active = true;
    m.revert_epoch = s->epoch;
    m.revert_id = id;
    m.pinned.store(s->epoch);
  }
  // Recorded first: after a crash Open finishes the revert, so the origin
  // never stays half reverted without anyone knowing.
  Status st = m.CommitSuperblock();
  if (!st.ok()) {
    std::unique_lock lock(m.meta_mu);
    m.revert_active = false;
    m.pinned.store(0);
    return st;
  }
  return m.FinishRevert();
}

Status CowVolume::Impl::FinishRevert() {
  uint64_t epoch;
  std::string id;
  {
    std::shared_lock lock(meta_mu);
    epoch = revert_epoch;
    id = revert_id;
  }
  pinned.store(epoch);
  Status st = RunRevert(epoch);
  if (st.ok()) st = origin->Sync();
  bool source_gone = false;
  {
    std::shared_lock gate_lock(gate);
    source_gone = !IsLive(epoch);
  }
  if (!st.ok() && !source_gone) {
    pinned.store(0);
    return st;  // still recorded: the next Revert(id) or Open resumes it
  }
  {
    std::unique_lock lock(meta_mu);
    revert_active = false;
    revert_epoch = 0;
    revert_id.clear();
  }
  pinned.store(0);
  Status clear = CommitSuperblock();
  if (!st.ok()) return st;
  return clear;
}

// Writes the snapshot's contents of every chunk changed since it was taken
// through the normal write path, so newer snapshots keep their data.
Status CowVolume::Impl::RunRevert(uint64_t epoch) {
  std::vector<uint64_t> chunks;
  {
    std::shared_lock gate_lock(gate);
    if (!IsLive(epoch)) {
      return Status::BadState("the revert source of volume '" + name +
                              "' was deleted before the revert finished");
    }
    index.ForEach([&](uint64_t c, const std::vector<Mapping>& v) {
      auto it = std::lower_bound(v.begin(), v.end(), epoch,
                                 [](const Mapping& x, uint64_t e) { return x.to < e; });
      if (it != v.end() && it->from < epoch) chunks.push_back(c);
    });
  }
  std::sort(chunks.begin(), chunks.end());
  const uint64_t piece_chunks = std::max<uint64_t>(1, (1u << 20) >> geo.chunk_shift);
  std::vector<uint8_t> buf;
  size_t i = 0;
  while (i < chunks.size()) {
    size_t j = i;
    while (j + 1 < chunks.size() && chunks[j + 1] == chunks[j] + 1 && j + 1 - i < piece_chunks) ++j;
    const uint64_t off = chunks[i] << geo.chunk_shift;
    const uint64_t end = std::min((chunks[j] + 1) << geo.chunk_shift, geo.origin_size);
    const size_t len = size_t(end - off);
    buf.resize(len);
    {
      std::shared_lock gate_lock(gate);
      if (!IsLive(epoch)) {
        return Status::BadState("the revert source of volume '" + name +
                                "' was deleted by diff-area overflow before the revert finished; "
                                "the origin is partly reverted");
      }
      SNAPSET_RETURN_IF_ERROR(ReadSnapshotLocked(epoch, off, buf.data(), len));
    }
    SNAPSET_RETURN_IF_ERROR(Write(off, buf.data(), len));
    i = j + 1;
  }
  return Status::Ok();
}

}  // namespace snapset::cow
