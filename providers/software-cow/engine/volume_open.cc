// Create and Open (with recovery).
//
// Create validates everything it can before it touches the disk, then
// creates and fully allocates each file; on any error everything it
// created is removed again.
//
// Open reads both superblock copies and takes the newest valid one, checks
// the origin and the extension files, rebuilds the index from the slot
// table (an entry counts only if its checksum is good and its range holds
// a live snapshot), records any snapshot it had to invalidate, and finishes
// an interrupted revert. It writes nothing before the header has been
// found good.
#include <algorithm>

#include "providers/software-cow/engine/cow_volume_impl.hpp"
#include "providers/software-cow/engine/test_hooks.hpp"

namespace snapset::cow {
namespace {

// How much of the data slots Create pre-writes with zeros (the slot table
// always is). posix_fallocate leaves "unwritten" extents, and on ext4 or
// xfs the first write into one makes the next fdatasync commit the journal
// to convert it: measured here, that made a copy's syncs 3 to 6 times
// slower. Pre-writing removes that cost for the slots handed out first (the
// allocator goes in ascending order) while keeping Create bounded; slots
// beyond it pay it once, on their first use.
constexpr uint64_t kPrewriteBytes = uint64_t(1) << 30;

// The largest metadata a volume can need: used to refuse, at Create, paths
// so long that a full snapshot table would no longer fit the superblock.
SuperblockData WorstCase(const SuperblockData& base) {
  SuperblockData sb = base;
  const std::string id(kMaxSnapshotIdLength, 'x');
  sb.revert_active = true;
  sb.revert_id = id;
  for (size_t i = 0; i < kMaxSnapshots; ++i) sb.snapshots.push_back({id, i + 1, 0, false, "x"});
  for (size_t i = 0; i < kMaxOverflowEvents; ++i) sb.events.push_back({id, 0, "x"});
  return sb;
}

}  // namespace

Result<std::unique_ptr<CowVolume>> CowVolume::Create(FileSystem* fs, const CreateOptions& o) {
  auto impl = std::make_unique<Impl>(fs);
  std::vector<std::string> created;
  Status st = impl->CreateFiles(o, &created);
  if (!st.ok()) {
    impl.reset();  // closes the files and drops their locks first
    for (auto it = created.rbegin(); it != created.rend(); ++it) (void)fs->Remove(*it);
    return st;
  }
  return std::unique_ptr<CowVolume>(new CowVolume(std::move(impl)));
}

Status CowVolume::Impl::CreateFiles(const CreateOptions& o, std::vector<std::string>* created) {
  SNAPSET_RETURN_IF_ERROR(ValidateName("volume name", o.name));
  SNAPSET_RETURN_IF_ERROR(ValidateChunkSize(o.chunk_size));
  if (o.origin_path.empty()) {
    return Status::InvalidArgument("no origin path given; name the origin file or block device");
  }
  if (o.diff_files.empty()) {
    return Status::InvalidArgument("no diff-area files given; give at least one path and size");
  }
  if (o.diff_files.size() > 64) {
    return Status::InvalidArgument("the diff area has " + std::to_string(o.diff_files.size()) +
                                   " files; at most 64 are supported");
  }
  for (size_t i = 0; i < o.diff_files.size(); ++i) {
    const auto& p = o.diff_files[i].path;
    if (p.empty()) return Status::InvalidArgument("diff-area file " + std::to_string(i) + " has an empty path");
    if (p == o.origin_path) {
      return Status::InvalidArgument("diff-area file " + p + " is the origin itself; put the "
                                     "diff area in another file");
    }
    for (size_t j = 0; j < i; ++j) {
      if (o.diff_files[j].path == p) {
        return Status::InvalidArgument("diff-area file " + p + " is listed twice");
      }
    }
  }
  if (o.origin_size % format::kAlign != 0) {
    return Status::InvalidArgument("origin size " + std::to_string(o.origin_size) +
                                   " is not a multiple of 4096 bytes");
  }
  auto planned = PlanGeometry(o.chunk_size, o.diff_files);
  if (!planned.ok()) return planned.status();
  geo = std::move(*planned);
  for (const auto& f : o.diff_files) {
    if (fs->Exists(f.path)) {
      return Status::AlreadyExists("diff-area file " + f.path +
                                   " already exists; choose another path or remove it");
    }
  }
  if (o.origin_size > 0 && fs->Exists(o.origin_path)) {
    return Status::AlreadyExists("origin " + o.origin_path +
                                 " already exists; pass origin size 0 to adopt it as it is");
  }
  if (o.origin_size == 0 && !fs->Exists(o.origin_path)) {
    return Status::NotFound("origin " + o.origin_path +
                            " does not exist; give an origin size to create it");
  }

  name = o.name;
  origin_path = o.origin_path;
  diff_path = o.diff_files[0].path;
  uuid = format::RandomUuid();
  area_tag = format::AreaTag(uuid);
  {
    std::unique_lock lock(meta_mu);
    auto fit = EncodeSuperblock(WorstCase(BuildSuperblock()));
    if (!fit.ok()) return fit.status();
  }

  // The origin first: if another volume holds it, nothing gets created.
  OpenOptions oo;
  oo.create = o.origin_size > 0;
  auto of = fs->Open(o.origin_path, oo);
  if (!of.ok()) return of.status();
  origin = std::move(*of);
  if (oo.create) {
    created->push_back(o.origin_path);
    SNAPSET_RETURN_IF_ERROR(origin->Allocate(o.origin_size));
  }
  auto osize = origin->Size();
  if (!osize.ok()) return osize.status();
  if (*osize == 0 || *osize % format::kAlign != 0) {
    return Status::InvalidArgument("origin " + o.origin_path + " is " + std::to_string(*osize) +
                                   " bytes; its size must be a positive multiple of 4096");
  }
  geo.SetOrigin(*osize);

  for (const auto& spec : o.diff_files) {
    OpenOptions d;
    d.create = true;
    auto f = fs->Open(spec.path, d);
    if (!f.ok()) return f.status();
    created->push_back(spec.path);
    diff.push_back(std::move(*f));
    Status st = diff.back()->Allocate(spec.max_bytes);
    if (!st.ok()) {
      return st.WithContext("creating the diff area (" + std::to_string(spec.max_bytes) +
                            " bytes in " + spec.path + ")");
    }
  }
  SNAPSET_RETURN_IF_ERROR(CheckSlotLimit(geo));

  for (size_t i = 1; i < diff.size(); ++i) {
    format::ExtHeader h;
    h.uuid = uuid;
    h.index = uint32_t(i);
    h.chunk_size = geo.chunk_size;
    h.slot_count = geo.files[i].slot_count;
    auto bytes = format::EncodeExtHeader(h);
    SNAPSET_RETURN_IF_ERROR(diff[i]->WriteAt(0, bytes.data(), bytes.size()));
    SNAPSET_RETURN_IF_ERROR(diff[i]->Sync());
  }
  // The slot table needs no initialisation for correctness (freshly
  // allocated space reads as zeros, and an all-zero entry is free); it and
  // the first slots are pre-written for speed only (kPrewriteBytes).
  SNAPSET_RETURN_IF_ERROR(Prewrite());
  // Both superblock copies are made durable, so either can stand in for
  // the other from the start.
  sb_good = 1;
  SNAPSET_RETURN_IF_ERROR(CommitSuperblock());
  SNAPSET_RETURN_IF_ERROR(diff[0]->Sync());
  if (oo.create) SNAPSET_RETURN_IF_ERROR(origin->Sync());
  slots.Reset(geo.slots_total);
  slots.FreeRange(0, geo.slots_total);
  return Status::Ok();
}

Status CowVolume::Impl::Prewrite() {
  std::vector<uint8_t> zeros(1 << 20, 0);
  auto fill = [&](File* f, uint64_t from, uint64_t to) -> Status {
    for (uint64_t off = from; off < to; off += zeros.size()) {
      SNAPSET_RETURN_IF_ERROR(f->WriteAt(off, zeros.data(), size_t(std::min<uint64_t>(zeros.size(), to - off))));
    }
    return Status::Ok();
  };
  SNAPSET_RETURN_IF_ERROR(fill(diff[0].get(), geo.table_offset, geo.files[0].data_offset));
  uint64_t budget = kPrewriteBytes;
  for (size_t i = 0; i < diff.size(); ++i) {
    const auto& f = geo.files[i];
    const uint64_t bytes = std::min(budget, f.slot_count * geo.chunk_size);
    SNAPSET_RETURN_IF_ERROR(fill(diff[i].get(), f.data_offset, f.data_offset + bytes));
    budget -= bytes;
    SNAPSET_RETURN_IF_ERROR(diff[i]->Sync());
  }
  return Status::Ok();
}

Result<std::unique_ptr<CowVolume>> CowVolume::Open(FileSystem* fs, const std::string& diff_path) {
  auto impl = std::make_unique<Impl>(fs);
  Status st = impl->Load(diff_path);
  if (!st.ok()) return st;
  return std::unique_ptr<CowVolume>(new CowVolume(std::move(impl)));
}

void CowVolume::Impl::LoadMeta(const SuperblockData& sb) {
  std::unique_lock lock(meta_mu);
  name = sb.name;
  origin_path = sb.origin_path;
  uuid = sb.uuid;
  area_tag = format::AreaTag(uuid);
  next_epoch = sb.next_epoch;
  overflow_total = sb.overflow_deleted_total;
  snaps = sb.snapshots;
  std::sort(snaps.begin(), snaps.end(),
            [](const SbSnapshot& a, const SbSnapshot& b) { return a.epoch < b.epoch; });
  for (const auto& e : sb.events) events.push_back({e.snapshot_id, e.when_unix_ns, e.reason});
  revert_active = sb.revert_active;
  revert_epoch = sb.revert_epoch;
  revert_id = sb.revert_id;
  RecomputeLive();
}

Status CowVolume::Impl::Load(const std::string& path) {
  diff_path = path;
  auto f0 = fs->Open(path, OpenOptions{});
  if (!f0.ok()) {
    if (f0.status().IsNotFound()) {
      return Status::NotFound("diff area " + path + " does not exist");
    }
    return f0.status();
  }
  diff.push_back(std::move(*f0));
  auto size0 = diff[0]->Size();
  if (!size0.ok()) return size0.status();
  if (*size0 < format::kSlotTableOffset) {
    return Status::InvalidArgument(path + " is not a snapset diff area: at " +
                                   std::to_string(*size0) + " bytes it is too small to hold one");
  }

  // ---- the superblock ----
  std::vector<uint8_t> raw(format::kSlotTableOffset);
  SNAPSET_RETURN_IF_ERROR(diff[0]->ReadAt(0, raw.data(), raw.size()));
  SuperblockData copy[2];
  std::string why[2];
  SbCheck check[2];
  for (int c = 0; c < 2; ++c) {
    check[c] = DecodeSuperblock(raw.data() + format::SuperblockOffset(c), format::kSuperblockSize,
                                &copy[c], &why[c]);
  }
  int pick = -1;
  for (int c = 0; c < 2; ++c) {
    if (check[c] == SbCheck::kOk && (pick < 0 || copy[c].sequence > copy[pick].sequence)) pick = c;
  }
  if (pick < 0) {
    if (check[0] == SbCheck::kNoMagic && check[1] == SbCheck::kNoMagic) {
      return Status::InvalidArgument(path + " is not a snapset diff area (no superblock found)");
    }
    return Status::InvalidArgument(
        path + ": the diff-area header is corrupt: both superblock copies are unusable (copy A: " +
        why[0] + "; copy B: " + why[1] +
        "). Nothing was changed; restore the file from a backup or recreate the volume");
  }
  const SuperblockData& sb = copy[pick];
  sb_seq = sb.sequence;
  sb_good = pick;

  // ---- geometry, checked before anything trusts it ----
  const auto impossible = [&](const std::string& what) {
    return Status::InvalidArgument(path + ": the superblock describes an impossible layout (" +
                                   what + "); nothing was changed");
  };
  if (!ValidateChunkSize(sb.chunk_size).ok()) return impossible("chunk size " + std::to_string(sb.chunk_size));
  if (sb.files.empty() || sb.files.size() > 64) return impossible("file count");
  if (sb.table_offset != format::kSlotTableOffset) return impossible("slot table offset");
  geo.chunk_size = sb.chunk_size;
  geo.chunk_shift = Log2(sb.chunk_size);
  geo.table_offset = sb.table_offset;
  uint64_t first = 0;
  for (const auto& f : sb.files) {
    FileGeometry g;
    g.path = f.path;
    g.first_slot = first;
    g.slot_count = f.slot_count;
    g.data_offset = f.data_offset;
    if (f.slot_count > kMaxSlots) return impossible("slot count");
    g.bytes = f.data_offset + f.slot_count * sb.chunk_size;
    first += f.slot_count;
    geo.files.push_back(g);
  }
  geo.files[0].path = path;
  geo.slots_total = first;
  if (geo.slots_total == 0 || geo.slots_total >= kMaxSlots) return impossible("slot count");
  if (geo.files[0].data_offset < geo.table_offset + geo.slots_total * format::kSlotEntrySize) {
    return impossible("slot table overlaps the data");
  }
  if (*size0 < geo.files[0].bytes) {
    return Status::InvalidArgument(path + " is truncated: " + std::to_string(*size0) +
                                   " bytes, its layout needs " + std::to_string(geo.files[0].bytes) +
                                   "; nothing was changed");
  }
  LoadMeta(sb);

  // ---- the origin ----
  auto of = fs->Open(sb.origin_path, OpenOptions{});
  if (!of.ok()) {
    if (of.status().IsNotFound()) {
      return Status::NotFound("origin " + sb.origin_path + " of volume '" + sb.name +
                              "' does not exist; restore it, or delete the volume");
    }
    return of.status();
  }
  origin = std::move(*of);
  auto osize = origin->Size();
  if (!osize.ok()) return osize.status();
  if (*osize == 0 || *osize % format::kAlign != 0) {
    return Status::InvalidArgument("origin " + sb.origin_path + " of volume '" + sb.name + "' is " +
                                   std::to_string(*osize) +
                                   " bytes, not a positive multiple of 4096; nothing was changed");
  }
  bool dirty = false;  // invalidations to record
  if (*osize != sb.origin_size) {
    std::unique_lock lock(meta_mu);
    InvalidateIf([](uint64_t) { return true; },
                 "the origin's size changed from " + std::to_string(sb.origin_size) + " to " +
                     std::to_string(*osize) + " bytes");
    RecomputeLive();
    dirty = true;
  }
  geo.SetOrigin(*osize);

  // ---- extension files ----
  std::vector<std::string> unusable(geo.files.size());
  for (size_t i = 1; i < geo.files.size(); ++i) {
    const std::string& p = geo.files[i].path;
    auto f = fs->Open(p, OpenOptions{});
    if (!f.ok()) {
      if (!f.status().IsNotFound()) return f.status();
      unusable[i] = "diff-area file " + p + " is missing";
      diff.push_back(nullptr);
      continue;
    }
    auto sz = (*f)->Size();
    std::vector<uint8_t> hb(format::kExtHeaderSize);
    format::ExtHeader h;
    std::string bad;
    if (!sz.ok() || *sz < geo.files[i].bytes) {
      bad = "it is truncated";
    } else if (Status st = (*f)->ReadAt(0, hb.data(), hb.size()); !st.ok()) {
      bad = "its header cannot be read (" + st.ToString() + ")";
    } else {
      bad = format::DecodeExtHeader(hb.data(), hb.size(), &h);
      if (bad.empty() && (h.uuid != uuid || h.index != i || h.chunk_size != geo.chunk_size ||
                          h.slot_count != geo.files[i].slot_count)) {
        bad = "it belongs to another diff area or another place in this one";
      }
    }
    if (!bad.empty()) {
      unusable[i] = "diff-area file " + p + " is not usable: " + bad;
      diff.push_back(nullptr);
    } else {
      diff.push_back(std::move(*f));
    }
  }

  // ---- the slot table ----
  using Entry = format::SlotEntry;
  std::vector<Entry> entries;
  {
    const uint64_t per_read = 16384;  // entries per 1 MiB read
    std::vector<uint8_t> buf;
    for (uint64_t s0 = 0; s0 < geo.slots_total; s0 += per_read) {
      const uint64_t cnt = std::min(per_read, geo.slots_total - s0);
      buf.resize(cnt * format::kSlotEntrySize);
      SNAPSET_RETURN_IF_ERROR(diff[0]->ReadAt(geo.EntryOffset(s0), buf.data(), buf.size()));
      for (uint64_t k = 0; k < cnt; ++k) {
        format::SlotEntry e;
        if (!format::DecodeSlotEntry(&buf[k * format::kSlotEntrySize], s0 + k, area_tag, &e)) continue;
        last_group = std::max(last_group, e.group);
        if (e.chunk >= geo.chunk_count) continue;
        entries.push_back(e);
      }
    }
  }
  {
    std::unique_lock lock(meta_mu);
    // Data in an unusable file is lost: so are the snapshots that need it.
    for (const auto& e : entries) {
      const size_t f = geo.FileOfSlot(e.slot);
      if (!unusable[f].empty()) {
        dirty |= InvalidateIf([&](uint64_t ep) { return e.from < ep && ep <= e.to; }, unusable[f]) > 0;
      }
    }
    RecomputeLive();
    SNAPSET_RETURN_IF_ERROR(DropEntriesWithoutData(&entries, unusable));
    // Two live copies of one chunk for one epoch cannot come from a correct
    // history; rather than guess, the epochs concerned are invalid.
    std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
      return a.chunk != b.chunk ? a.chunk < b.chunk : a.to < b.to;
    });
    const Entry* prev = nullptr;
    for (const auto& e : entries) {
      if (!RangeHoldsLive(e.from, e.to)) continue;
      if (prev && prev->chunk == e.chunk && e.from < prev->to) {
        const uint64_t lo = e.from, hi = prev->to;
        dirty |= InvalidateIf([&](uint64_t ep) { return lo < ep && ep <= hi; },
                              "the slot table maps chunk " + std::to_string(e.chunk) +
                                  " twice for this snapshot") > 0;
      }
      prev = &e;
    }
    RecomputeLive();
  }
  slots.Reset(geo.slots_total);
  std::vector<uint8_t> used(geo.slots_total, 0);
  for (const auto& e : entries) {
    if (unusable[geo.FileOfSlot(e.slot)].empty() && RangeHoldsLive(e.from, e.to)) {
      index.Add(e.chunk, Mapping{e.from, e.to, uint32_t(e.slot)});
      used[e.slot] = 1;
    }
  }
  for (size_t f = 0; f < geo.files.size(); ++f) {
    if (!unusable[f].empty()) continue;  // never handed out
    const uint64_t end = geo.files[f].first_slot + geo.files[f].slot_count;
    for (uint64_t s = geo.files[f].first_slot; s < end;) {
      uint64_t e = s;
      while (e < end && !used[e]) ++e;
      if (e > s) slots.FreeRange(s, e - s);
      s = e + 1;
    }
  }
  // Record the invalidations before any of the slots they freed is reused.
  if (dirty) SNAPSET_RETURN_IF_ERROR(CommitSuperblock());
  dirty = false;

  bool resume = false;
  {
    std::unique_lock lock(meta_mu);
    if (revert_active) {
      if (IsLive(revert_epoch)) {
        resume = true;
      } else {
        revert_active = false;
        revert_epoch = 0;
        revert_id.clear();
        dirty = true;
      }
    }
  }
  if (resume) return FinishRevert();
  if (dirty) return CommitSuperblock();
  return Status::Ok();
}

// One sync per group commit (CommitGroup) lets a crash keep entries whose
// data never reached the disk, but only in groups above every entry's
// `durable`: those entries' data is checked against its CRC. One that fails
// maps a chunk whose origin write was never issued (it waits for the sync),
// so the origin still holds what the entry's snapshots need: the entry is
// dropped, and zeroed on disk so that no later Open trusts it. Then every
// diff-area file is synced: what was read here may have been in the page
// cache only (the daemon was killed, the machine kept running), and the
// groups written from now on count it as durable.
Status CowVolume::Impl::DropEntriesWithoutData(std::vector<format::SlotEntry>* entries,
                                               const std::vector<std::string>& unusable) {
  uint64_t durable = 0;
  for (const auto& e : *entries) durable = std::max(durable, e.durable);
  std::vector<uint64_t> dropped;
  if (!testing::SkipDataCheckForTesting()) {
    std::vector<uint8_t> buf(geo.chunk_size);
    auto kept = entries->begin();
    for (auto& e : *entries) {
      const size_t f = geo.FileOfSlot(e.slot);
      bool keep = true;
      if (e.group > durable && unusable[f].empty() && RangeHoldsLive(e.from, e.to)) {
        const uint64_t start = e.chunk << geo.chunk_shift;
        const size_t len = size_t(std::min<uint64_t>(geo.chunk_size, geo.origin_size - start));
        SNAPSET_RETURN_IF_ERROR(diff[f]->ReadAt(geo.SlotOffset(f, e.slot), buf.data(), len));
        keep = format::Crc32(buf.data(), len) == e.data_crc;
      }
      if (keep) {
        *kept++ = e;
      } else {
        dropped.push_back(e.slot);
      }
    }
    entries->erase(kept, entries->end());
  }
  const uint8_t zero[format::kSlotEntrySize] = {};
  for (uint64_t slot : dropped) {
    SNAPSET_RETURN_IF_ERROR(diff[0]->WriteAt(geo.EntryOffset(slot), zero, sizeof zero));
  }
  for (const auto& f : diff) {
    if (f) SNAPSET_RETURN_IF_ERROR(f->Sync());
  }
  return Status::Ok();
}

}  // namespace snapset::cow
