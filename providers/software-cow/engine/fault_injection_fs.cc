#include "providers/software-cow/engine/fault_injection_fs.hpp"

#include <algorithm>
#include <cstring>
#include <random>

namespace snapset::cow {

namespace {
constexpr uint64_t kSector = 512;
}

struct FaultInjectionFileSystem::FileState {
  std::vector<uint8_t> current;  // what reads see
  std::vector<uint8_t> durable;  // what survives a crash
  struct Pending {
    uint64_t offset;
    std::vector<uint8_t> data;
  };
  std::vector<Pending> pending;  // since the last Sync, in order
  uint64_t lock_owner = 0;       // 0: unlocked
};

namespace {
void Apply(std::vector<uint8_t>* image, uint64_t offset, const uint8_t* p, size_t n) {
  if (image->size() < offset + n) image->resize(offset + n, 0);
  std::memcpy(image->data() + offset, p, n);
}
}  // namespace

class FaultInjectionFileSystem::FaultFile final : public File {
 public:
  FaultFile(FaultInjectionFileSystem* fs, std::string path, std::shared_ptr<FileState> st,
            uint64_t owner)
      : fs_(fs), path_(std::move(path)), st_(std::move(st)), owner_(owner) {}
  ~FaultFile() override {
    std::lock_guard lock(fs_->mu_);
    if (owner_ != 0 && st_->lock_owner == owner_) st_->lock_owner = 0;
  }

  Status ReadAt(uint64_t offset, void* buf, size_t n) override {
    std::lock_guard lock(fs_->mu_);
    if (offset > st_->current.size() || n > st_->current.size() - offset) {
      return Status::Internal("reading " + path_ + ": unexpected end of file at offset " +
                              std::to_string(offset));
    }
    std::memcpy(buf, st_->current.data() + offset, n);
    return Status::Ok();
  }

  Status WriteAt(uint64_t offset, const void* buf, size_t n) override {
    std::lock_guard lock(fs_->mu_);
    SNAPSET_RETURN_IF_ERROR(fs_->CheckMutation(path_, true, false));
    const auto* p = static_cast<const uint8_t*>(buf);
    Apply(&st_->current, offset, p, n);
    st_->pending.push_back({offset, std::vector<uint8_t>(p, p + n)});
    ++fs_->writes_;
    return Status::Ok();
  }

  Status Sync() override {
    std::lock_guard lock(fs_->mu_);
    Status st = fs_->CheckMutation(path_, false, true);
    if (!st.ok()) {
      // An injected fault is a writeback that failed. Linux then leaves the
      // pages clean in its cache: readable until the machine goes down,
      // never written, and a later fsync succeeds without them.
      if (!fs_->killed_) st_->pending.clear();
      return st;
    }
    for (const auto& w : st_->pending) Apply(&st_->durable, w.offset, w.data.data(), w.data.size());
    st_->pending.clear();
    ++fs_->syncs_;
    return Status::Ok();
  }

  Result<uint64_t> Size() override {
    std::lock_guard lock(fs_->mu_);
    return uint64_t(st_->current.size());
  }

  Status Allocate(uint64_t size) override {
    std::lock_guard lock(fs_->mu_);
    if (size > (uint64_t(1) << 34)) {  // an in-memory disk of 16 GiB
      return Status::InsufficientStorage("cannot reserve " + std::to_string(size) + " bytes for " +
                                         path_ + ": the in-memory test disk is too small");
    }
    SNAPSET_RETURN_IF_ERROR(fs_->CheckMutation(path_, false, false));
    if (st_->current.size() < size) st_->current.resize(size, 0);
    if (st_->durable.size() < size) st_->durable.resize(size, 0);
    return Status::Ok();
  }

  const std::string& path() const override { return path_; }

 private:
  FaultInjectionFileSystem* fs_;
  std::string path_;
  std::shared_ptr<FileState> st_;
  uint64_t owner_;
};

FaultInjectionFileSystem::FaultInjectionFileSystem() = default;
FaultInjectionFileSystem::~FaultInjectionFileSystem() = default;

Status FaultInjectionFileSystem::CheckMutation(const std::string& path, bool is_write, bool is_sync) {
  if (killed_) return Status::Internal("simulated power loss (fault injection): " + path);
  if (is_write && path.find(fail_write_part_) != std::string::npos) {
    ++matching_writes_;
    if (fail_write_at_ != 0 && matching_writes_ == fail_write_at_) {
      fail_write_at_ = 0;
      return Status::Internal("injected write fault on " + path);
    }
  }
  if (is_sync && path.find(fail_sync_part_) != std::string::npos) {
    ++matching_syncs_;
    if (fail_sync_at_ != 0 && matching_syncs_ == fail_sync_at_) {
      fail_sync_at_ = 0;
      return Status::Internal("injected sync fault on " + path);
    }
  }
  if (kill_budget_ >= 0) {
    if (kill_budget_ == 0) {
      killed_ = true;
      return Status::Internal("simulated power loss (fault injection): " + path);
    }
    --kill_budget_;
  }
  ++mutating_;
  return Status::Ok();
}

Result<std::unique_ptr<File>> FaultInjectionFileSystem::Open(const std::string& path,
                                                             const OpenOptions& o) {
  std::lock_guard lock(mu_);
  if (path.empty()) return Status::InvalidArgument("empty path");
  auto it = files_.find(path);
  if (o.create) {
    if (it != files_.end()) {
      return Status::AlreadyExists(path + " already exists; choose another path or remove it");
    }
    if (killed_) return Status::Internal("simulated power loss (fault injection): " + path);
    it = files_.emplace(path, std::make_shared<FileState>()).first;
  } else if (it == files_.end()) {
    return Status::NotFound(path + " does not exist");
  }
  uint64_t owner = 0;
  if (o.lock) {
    if (it->second->lock_owner != 0) {
      return Status::BadState(path + " is in use by another volume (another handle holds its "
                                     "lock; close that one first)");
    }
    owner = next_owner_++;
    it->second->lock_owner = owner;
  }
  return std::unique_ptr<File>(new FaultFile(this, path, it->second, owner));
}

Status FaultInjectionFileSystem::Remove(const std::string& path) {
  std::lock_guard lock(mu_);
  if (files_.erase(path) == 0) return Status::NotFound(path + " does not exist");
  return Status::Ok();
}

bool FaultInjectionFileSystem::Exists(const std::string& path) {
  std::lock_guard lock(mu_);
  return files_.count(path) != 0;
}

void FaultInjectionFileSystem::Crash(uint64_t seed, CrashMode mode) {
  std::lock_guard lock(mu_);
  std::mt19937_64 rng(seed);
  for (auto& [path, st] : files_) {
    // Cut each pending write at sector boundaries: a disk writes a sector
    // whole or not at all, but sectors in any order.
    struct Piece {
      uint64_t offset;
      const uint8_t* p;
      size_t n;
    };
    std::vector<Piece> pieces;
    for (const auto& w : st->pending) {
      uint64_t off = w.offset;
      const uint64_t end = w.offset + w.data.size();
      while (off < end) {
        const uint64_t next = std::min(end, (off / kSector + 1) * kSector);
        pieces.push_back({off, w.data.data() + (off - w.offset), size_t(next - off)});
        off = next;
      }
    }
    size_t keep_prefix = 0;
    if (mode == CrashMode::kKeepRandomPrefix && !pieces.empty()) {
      keep_prefix = size_t(rng() % (pieces.size() + 1));
    }
    for (size_t i = 0; i < pieces.size(); ++i) {
      bool keep = false;
      switch (mode) {
        case CrashMode::kDropAll: keep = false; break;
        case CrashMode::kKeepRandomSectors: keep = (rng() & 1) != 0; break;
        case CrashMode::kKeepRandomPrefix: keep = i < keep_prefix; break;
      }
      if (keep) Apply(&st->durable, pieces[i].offset, pieces[i].p, pieces[i].n);
    }
    st->pending.clear();
    st->current = st->durable;
    st->lock_owner = 0;
  }
  killed_ = false;
  kill_budget_ = -1;
  fail_write_at_ = fail_sync_at_ = 0;  // a fault not yet reached died with the machine
}

void FaultInjectionFileSystem::KillAfter(int64_t ops) {
  std::lock_guard lock(mu_);
  kill_budget_ = ops;
  killed_ = false;
}

bool FaultInjectionFileSystem::killed() const {
  std::lock_guard lock(mu_);
  return killed_;
}

void FaultInjectionFileSystem::FailNthWrite(uint64_t n, const std::string& path_part) {
  std::lock_guard lock(mu_);
  fail_write_part_ = path_part;
  matching_writes_ = 0;
  fail_write_at_ = n;
}

void FaultInjectionFileSystem::FailNthSync(uint64_t n, const std::string& path_part) {
  std::lock_guard lock(mu_);
  fail_sync_part_ = path_part;
  matching_syncs_ = 0;
  fail_sync_at_ = n;
}

uint64_t FaultInjectionFileSystem::syncs() const {
  std::lock_guard lock(mu_);
  return syncs_;
}
uint64_t FaultInjectionFileSystem::writes() const {
  std::lock_guard lock(mu_);
  return writes_;
}
uint64_t FaultInjectionFileSystem::mutating_ops() const {
  std::lock_guard lock(mu_);
  return mutating_;
}
void FaultInjectionFileSystem::ResetCounters() {
  std::lock_guard lock(mu_);
  syncs_ = writes_ = mutating_ = 0;
}

std::vector<uint8_t> FaultInjectionFileSystem::Contents(const std::string& path) const {
  std::lock_guard lock(mu_);
  auto it = files_.find(path);
  return it == files_.end() ? std::vector<uint8_t>{} : it->second->current;
}

void FaultInjectionFileSystem::Poke(const std::string& path, uint64_t offset,
                                    const std::vector<uint8_t>& bytes) {
  std::lock_guard lock(mu_);
  auto it = files_.find(path);
  if (it == files_.end()) return;
  Apply(&it->second->current, offset, bytes.data(), bytes.size());
  Apply(&it->second->durable, offset, bytes.data(), bytes.size());
}

uint64_t FaultInjectionFileSystem::UnsyncedBytes(const std::string& path) const {
  std::lock_guard lock(mu_);
  auto it = files_.find(path);
  if (it == files_.end()) return 0;
  uint64_t n = 0;
  for (const auto& w : it->second->pending) n += w.data.size();
  return n;
}

}  // namespace snapset::cow
