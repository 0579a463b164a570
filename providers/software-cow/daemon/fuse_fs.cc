#define FUSE_USE_VERSION 314
#include "providers/software-cow/daemon/fuse_fs.hpp"

#include <fuse_lowlevel.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <vector>

#include "providers/software-cow/daemon/log.hpp"

namespace snapset::cow::daemon {

namespace {

// ---- inode numbers: (volume uid << 40) | kind, snapshots kSubSnapBase + epoch ----
constexpr fuse_ino_t kRootIno = FUSE_ROOT_ID;
constexpr int kUidShift = 40;
constexpr uint64_t kSubMask = (uint64_t(1) << kUidShift) - 1;
constexpr uint64_t kSubVolDir = 1, kSubOrigin = 2, kSubSnapDir = 3, kSubSnapBase = 4;

fuse_ino_t Ino(uint64_t uid, uint64_t sub) { return fuse_ino_t((uid << kUidShift) | sub); }

// Attributes of files never change under one inode number (sizes are fixed,
// numbers are not reused), so the kernel may cache them. Names are looked up
// every time so that deleted volumes and snapshots vanish at once.
constexpr double kFileAttrTimeout = 3600.0;
constexpr double kDirAttrTimeout = 0.0;
constexpr double kEntryTimeout = 0.0;

// Largest write the kernel may send in one request.
constexpr unsigned kMaxWrite = 1u << 20;

enum class Type { kRoot, kVolDir, kOrigin, kSnapDir, kSnapshot };

struct Node {
  Type type = Type::kRoot;
  VolumePtr vol;
  uint64_t size = 0;
  SnapshotInfo snap;  // kSnapshot
};

// An open file.
struct Handle {
  VolumePtr vol;
  bool origin = false;
  std::string snapshot_id;
  uint64_t epoch = 0;
  uint64_t size = 0;
};

// An open directory: its listing, built at opendir.
struct DirHandle {
  std::vector<char> buf;
};

VolumeRegistry* Registry(fuse_req_t req) {
  return static_cast<FuseFs*>(fuse_req_userdata(req))->registry();
}

std::optional<SnapshotInfo> SnapshotByEpoch(Volume& v, uint64_t epoch) {
  std::shared_lock<std::shared_mutex> life(v.life);
  if (!v.cow) return std::nullopt;
  for (auto& s : v.cow->ListSnapshots()) {
    if (s.epoch == epoch) return s;
  }
  return std::nullopt;
}

std::optional<uint64_t> VolumeSize(Volume& v) {
  std::shared_lock<std::shared_mutex> life(v.life);
  if (!v.cow) return std::nullopt;
  return v.cow->size();
}

// Resolves an inode number; nullopt when it names nothing (any more).
std::optional<Node> Resolve(VolumeRegistry* reg, fuse_ino_t ino) {
  Node n;
  if (ino == kRootIno) return n;
  uint64_t uid = uint64_t(ino) >> kUidShift;
  uint64_t sub = uint64_t(ino) & kSubMask;
  n.vol = reg->FindByUid(uid);
  if (!n.vol) return std::nullopt;
  auto size = VolumeSize(*n.vol);
  if (!size) return std::nullopt;
  n.size = *size;
  switch (sub) {
    case kSubVolDir: n.type = Type::kVolDir; return n;
    case kSubOrigin: n.type = Type::kOrigin; return n;
    case kSubSnapDir: n.type = Type::kSnapDir; return n;
    default: break;
  }
  if (sub < kSubSnapBase) return std::nullopt;
  auto snap = SnapshotByEpoch(*n.vol, sub - kSubSnapBase);
  if (!snap) return std::nullopt;
  n.type = Type::kSnapshot;
  n.snap = std::move(*snap);
  return n;
}

fuse_ino_t InoOf(const Node& n) {
  switch (n.type) {
    case Type::kRoot: return kRootIno;
    case Type::kVolDir: return Ino(n.vol->uid, kSubVolDir);
    case Type::kOrigin: return Ino(n.vol->uid, kSubOrigin);
    case Type::kSnapDir: return Ino(n.vol->uid, kSubSnapDir);
    case Type::kSnapshot: return Ino(n.vol->uid, kSubSnapBase + n.snap.epoch);
  }
  return kRootIno;
}

// Times of the directories and origins: when the daemon started.
const timespec& StartTime() {
  static const timespec t = [] {
    timespec now{};
    ::clock_gettime(CLOCK_REALTIME, &now);
    return now;
  }();
  return t;
}

struct stat AttrOf(const Node& n) {
  struct stat st{};
  st.st_atim = st.st_mtim = st.st_ctim = StartTime();
  st.st_ino = InoOf(n);
  st.st_uid = ::getuid();
  st.st_gid = ::getgid();
  st.st_blksize = 4096;
  switch (n.type) {
    case Type::kRoot:
    case Type::kVolDir:
    case Type::kSnapDir:
      st.st_mode = S_IFDIR | 0755;
      st.st_nlink = 2;
      break;
    case Type::kOrigin:
      st.st_mode = S_IFREG | 0600;
      st.st_nlink = 1;
      st.st_size = off_t(n.size);
      st.st_blocks = blkcnt_t(n.size / 512);
      break;
    case Type::kSnapshot:
      st.st_mode = S_IFREG | 0400;
      st.st_nlink = 1;
      st.st_size = off_t(n.size);
      st.st_blocks = blkcnt_t(n.size / 512);
      st.st_mtim.tv_sec = time_t(n.snap.created_unix_ns / 1000000000);
      st.st_mtim.tv_nsec = long(n.snap.created_unix_ns % 1000000000);
      st.st_ctim = st.st_mtim;
      st.st_atim = st.st_mtim;
      break;
  }
  return st;
}

double AttrTimeout(const Node& n) {
  return (n.type == Type::kOrigin || n.type == Type::kSnapshot) ? kFileAttrTimeout
                                                                 : kDirAttrTimeout;
}

void ReplyEntry(fuse_req_t req, const Node& n) {
  fuse_entry_param e{};
  e.ino = InoOf(n);
  e.attr = AttrOf(n);
  e.attr_timeout = AttrTimeout(n);
  e.entry_timeout = kEntryTimeout;
  fuse_reply_entry(req, &e);
}

// Engine errors on the data path reach the caller as EIO; the log says
// why, but not thousands of times.
void LogIoError(const std::string& what, const Status& s) {
  static std::atomic<uint64_t> count{0};
  uint64_t n = ++count;
  if (n <= 50 || n % 1000 == 0) {
    Log(what + ": " + s.ToString() + " (returned EIO; I/O error #" + std::to_string(n) + ")");
  }
}

// ---- handlers ----

void OnInit(void*, fuse_conn_info* conn) {
  conn->max_write = kMaxWrite;
  conn->max_readahead = std::max(conn->max_readahead, kMaxWrite);
  conn->max_background = 64;
  conn->congestion_threshold = 48;
  // Writes must reach the engine when write(2) returns.
  conn->want &= ~unsigned(FUSE_CAP_WRITEBACK_CACHE);
  // Contents change only through this daemon; a getattr per read is waste.
  conn->want &= ~unsigned(FUSE_CAP_AUTO_INVAL_DATA);
  // Origins and snapshots cannot be truncated; an O_TRUNC open must fail.
  conn->want &= ~unsigned(FUSE_CAP_ATOMIC_O_TRUNC);
}

void OnLookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  VolumeRegistry* reg = Registry(req);
  auto p = Resolve(reg, parent);
  if (!p) return void(fuse_reply_err(req, ENOENT));
  Node n;
  n.vol = p->vol;
  n.size = p->size;
  std::string nm = name;
  switch (p->type) {
    case Type::kRoot: {
      n.vol = reg->FindByName(nm);
      if (!n.vol) return void(fuse_reply_err(req, ENOENT));
      auto size = VolumeSize(*n.vol);
      if (!size) return void(fuse_reply_err(req, ENOENT));
      n.size = *size;
      n.type = Type::kVolDir;
      return ReplyEntry(req, n);
    }
    case Type::kVolDir:
      if (nm == "origin") n.type = Type::kOrigin;
      else if (nm == "snapshots") n.type = Type::kSnapDir;
      else return void(fuse_reply_err(req, ENOENT));
      return ReplyEntry(req, n);
    case Type::kSnapDir: {
      std::shared_lock<std::shared_mutex> life(n.vol->life);
      if (!n.vol->cow) return void(fuse_reply_err(req, ENOENT));
      auto s = n.vol->cow->GetSnapshot(nm);
      if (!s.ok()) return void(fuse_reply_err(req, ENOENT));
      n.type = Type::kSnapshot;
      n.snap = std::move(s).value();
      life.unlock();
      return ReplyEntry(req, n);
    }
    case Type::kOrigin:
    case Type::kSnapshot:
      return void(fuse_reply_err(req, ENOTDIR));
  }
}

void OnForget(fuse_req_t req, fuse_ino_t, uint64_t) { fuse_reply_none(req); }

void OnForgetMulti(fuse_req_t req, size_t, fuse_forget_data*) { fuse_reply_none(req); }

void OnGetattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  auto n = Resolve(Registry(req), ino);
  if (!n) return void(fuse_reply_err(req, ENOENT));
  struct stat st = AttrOf(*n);
  fuse_reply_attr(req, &st, AttrTimeout(*n));
}

void OnSetattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info*) {
  auto n = Resolve(Registry(req), ino);
  if (!n) return void(fuse_reply_err(req, ENOENT));
  if (n->type == Type::kSnapshot) return void(fuse_reply_err(req, EROFS));
  if ((to_set & FUSE_SET_ATTR_SIZE) && uint64_t(attr->st_size) != n->size) {
    return void(fuse_reply_err(req, EPERM));  // an origin has the size of its volume
  }
  // Mode, owner and times are fixed; accept and ignore them (cp -p, touch).
  struct stat st = AttrOf(*n);
  fuse_reply_attr(req, &st, AttrTimeout(*n));
}

void AddEntry(fuse_req_t req, std::vector<char>& buf, const std::string& name, fuse_ino_t ino,
              mode_t mode) {
  struct stat st{};
  st.st_ino = ino;
  st.st_mode = mode;
  size_t old = buf.size();
  size_t need = fuse_add_direntry(req, nullptr, 0, name.c_str(), nullptr, 0);
  buf.resize(old + need);
  fuse_add_direntry(req, buf.data() + old, need, name.c_str(), &st, off_t(buf.size()));
}

void OnOpendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  VolumeRegistry* reg = Registry(req);
  auto n = Resolve(reg, ino);
  if (!n) return void(fuse_reply_err(req, ENOENT));
  auto d = std::make_unique<DirHandle>();
  switch (n->type) {
    case Type::kRoot:
      AddEntry(req, d->buf, ".", ino, S_IFDIR);
      AddEntry(req, d->buf, "..", kRootIno, S_IFDIR);
      for (const auto& v : reg->Healthy()) AddEntry(req, d->buf, v->name, Ino(v->uid, kSubVolDir), S_IFDIR);
      break;
    case Type::kVolDir:
      AddEntry(req, d->buf, ".", ino, S_IFDIR);
      AddEntry(req, d->buf, "..", kRootIno, S_IFDIR);
      AddEntry(req, d->buf, "origin", Ino(n->vol->uid, kSubOrigin), S_IFREG);
      AddEntry(req, d->buf, "snapshots", Ino(n->vol->uid, kSubSnapDir), S_IFDIR);
      break;
    case Type::kSnapDir: {
      AddEntry(req, d->buf, ".", ino, S_IFDIR);
      AddEntry(req, d->buf, "..", Ino(n->vol->uid, kSubVolDir), S_IFDIR);
      std::shared_lock<std::shared_mutex> life(n->vol->life);
      if (!n->vol->cow) return void(fuse_reply_err(req, ENOENT));
      for (const auto& s : n->vol->cow->ListSnapshots()) {
        AddEntry(req, d->buf, s.id, Ino(n->vol->uid, kSubSnapBase + s.epoch), S_IFREG);
      }
      break;
    }
    case Type::kOrigin:
    case Type::kSnapshot:
      return void(fuse_reply_err(req, ENOTDIR));
  }
  fi->fh = reinterpret_cast<uint64_t>(d.release());
  fuse_reply_open(req, fi);
}

void OnReaddir(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info* fi) {
  auto* d = reinterpret_cast<DirHandle*>(fi->fh);
  if (off < 0 || size_t(off) >= d->buf.size()) return void(fuse_reply_buf(req, nullptr, 0));
  // As libfuse's examples do: a slice of the listing; the kernel ignores
  // a trailing partial entry and asks again from the last whole one.
  size_t start = size_t(off);
  fuse_reply_buf(req, d->buf.data() + start, std::min(size, d->buf.size() - start));
}

void OnReleasedir(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  delete reinterpret_cast<DirHandle*>(fi->fh);
  fuse_reply_err(req, 0);
}

// Undoes the open counts of a handle.
void Forget(const Handle& h) {
  Volume& v = *h.vol;
  std::lock_guard<std::mutex> lock(v.mu);
  if (h.origin) {
    --v.origin_opens;
  } else {
    --v.snapshot_opens;
    auto it = v.open_snapshot_epochs.find(h.epoch);
    if (it != v.open_snapshot_epochs.end() && --it->second == 0) v.open_snapshot_epochs.erase(it);
  }
  v.cv.notify_all();  // a volume or snapshot delete may wait for the release
}

void OnOpen(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  auto n = Resolve(Registry(req), ino);
  if (!n) return void(fuse_reply_err(req, ENOENT));
  if (n->type != Type::kOrigin && n->type != Type::kSnapshot) {
    return void(fuse_reply_err(req, EISDIR));
  }
  auto h = std::make_unique<Handle>();
  h->vol = n->vol;
  h->size = n->size;
  Volume& v = *n->vol;
  if (n->type == Type::kSnapshot) {
    if ((fi->flags & O_ACCMODE) != O_RDONLY) return void(fuse_reply_err(req, EROFS));
    if (!n->snap.valid) {
      Log("volume \"" + v.name + "\": open of invalid snapshot \"" + n->snap.id +
          "\" refused (EIO): " + n->snap.invalid_reason);
      return void(fuse_reply_err(req, EIO));
    }
    h->snapshot_id = n->snap.id;
    h->epoch = n->snap.epoch;
    fi->keep_cache = 1;  // a snapshot's contents never change
  } else {
    h->origin = true;
    fi->keep_cache = 0;  // a revert may have changed it since the last open
  }
  {
    std::lock_guard<std::mutex> lock(v.mu);
    if (!v.busy.empty()) return void(fuse_reply_err(req, EBUSY));
    if (v.closing) return void(fuse_reply_err(req, ESHUTDOWN));
    if (h->origin) {
      ++v.origin_opens;
    } else {
      ++v.snapshot_opens;
      ++v.open_snapshot_epochs[h->epoch];
    }
  }
  fi->fh = reinterpret_cast<uint64_t>(h.release());
  if (fuse_reply_open(req, fi) == -ENOENT) {
    // The opener was interrupted: the kernel will not release this handle.
    auto* lost = reinterpret_cast<Handle*>(fi->fh);
    Forget(*lost);
    delete lost;
  }
}

void OnRelease(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  auto* h = reinterpret_cast<Handle*>(fi->fh);
  Forget(*h);
  delete h;
  fuse_reply_err(req, 0);
}

void OnRead(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info* fi) {
  auto* h = reinterpret_cast<Handle*>(fi->fh);
  if (off < 0) return void(fuse_reply_err(req, EINVAL));
  if (uint64_t(off) >= h->size || size == 0) return void(fuse_reply_buf(req, nullptr, 0));
  size_t n = size_t(std::min<uint64_t>(size, h->size - uint64_t(off)));
  thread_local std::unique_ptr<char[]> buf;
  thread_local size_t cap = 0;
  if (cap < n) {
    buf.reset(new char[n]);
    cap = n;
  }
  Volume& v = *h->vol;
  Status s;
  {
    std::shared_lock<std::shared_mutex> life(v.life);
    if (!v.cow) return void(fuse_reply_err(req, EIO));
    s = h->origin ? v.cow->Read(uint64_t(off), buf.get(), n)
                  : v.cow->ReadSnapshot(h->snapshot_id, uint64_t(off), buf.get(), n);
  }
  if (!s.ok()) {
    LogIoError("volume \"" + v.name + "\": read of " +
                   (h->origin ? std::string("origin") : "snapshot \"" + h->snapshot_id + "\"") +
                   " at " + std::to_string(off),
               s);
    return void(fuse_reply_err(req, EIO));
  }
  fuse_reply_buf(req, buf.get(), n);
}

void OnWrite(fuse_req_t req, fuse_ino_t, const char* data, size_t size, off_t off,
             fuse_file_info* fi) {
  auto* h = reinterpret_cast<Handle*>(fi->fh);
  if (!h->origin) return void(fuse_reply_err(req, EROFS));
  if (off < 0) return void(fuse_reply_err(req, EINVAL));
  if (size == 0) return void(fuse_reply_write(req, 0));
  // Like a block device: the size is fixed, nothing is written past it.
  if (uint64_t(off) >= h->size) return void(fuse_reply_err(req, ENOSPC));
  size_t n = size_t(std::min<uint64_t>(size, h->size - uint64_t(off)));
  VolumeRegistry* reg = Registry(req);
  Volume& v = *h->vol;
  reg->BeginWrite(v);  // waits while writes are held
  Status s;
  {
    std::shared_lock<std::shared_mutex> life(v.life);
    s = v.cow ? v.cow->Write(uint64_t(off), data, n) : Status::NotFound("volume closed");
    if (s.ok()) reg->CheckOverflow(v);
  }
  reg->EndWrite(v);
  if (!s.ok()) {
    LogIoError("volume \"" + v.name + "\": write of origin at " + std::to_string(off), s);
    return void(fuse_reply_err(req, EIO));
  }
  fuse_reply_write(req, n);
}

void FlushOrigin(fuse_req_t req, fuse_file_info* fi, const char* what) {
  auto* h = reinterpret_cast<Handle*>(fi->fh);
  if (!h->origin) return void(fuse_reply_err(req, 0));
  Volume& v = *h->vol;
  Status s;
  {
    std::shared_lock<std::shared_mutex> life(v.life);
    s = v.cow ? v.cow->Flush() : Status::NotFound("volume closed");
  }
  if (!s.ok()) {
    LogIoError("volume \"" + v.name + "\": " + what + " of origin", s);
    return void(fuse_reply_err(req, EIO));
  }
  fuse_reply_err(req, 0);
}

void OnFlush(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) { FlushOrigin(req, fi, "flush"); }

void OnFsync(fuse_req_t req, fuse_ino_t, int, fuse_file_info* fi) { FlushOrigin(req, fi, "fsync"); }

void OnStatfs(fuse_req_t req, fuse_ino_t) {
  struct statvfs s{};
  s.f_bsize = 4096;
  s.f_frsize = 4096;
  uint64_t total = 0, files = 2;
  for (const auto& v : Registry(req)->Healthy()) {
    if (auto size = VolumeSize(*v)) total += *size;
    files += 3;
  }
  s.f_blocks = total / 4096;
  s.f_files = files;
  s.f_namemax = kMaxSnapshotIdLength;
  fuse_reply_statfs(req, &s);
}

fuse_lowlevel_ops MakeOps() {
  fuse_lowlevel_ops ops{};
  ops.init = OnInit;
  ops.lookup = OnLookup;
  ops.forget = OnForget;
  ops.forget_multi = OnForgetMulti;
  ops.getattr = OnGetattr;
  ops.setattr = OnSetattr;
  ops.opendir = OnOpendir;
  ops.readdir = OnReaddir;
  ops.releasedir = OnReleasedir;
  ops.open = OnOpen;
  ops.release = OnRelease;
  ops.read = OnRead;
  ops.write = OnWrite;
  ops.flush = OnFlush;
  ops.fsync = OnFsync;
  ops.statfs = OnStatfs;
  return ops;
}

// The connection number of the mount (its device minor), for aborting it.
std::string ConnectionOf(const std::string& mount_dir) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string id, parent, dev, root, point;
    f >> id >> parent >> dev >> root >> point;
    if (point == mount_dir && line.find(" - fuse.snapset-cowd ") != std::string::npos) {
      return dev.substr(dev.find(':') + 1);
    }
  }
  return "";
}

}  // namespace

FuseFs::~FuseFs() {
  if (loop_.joinable()) (void)Stop();
}

Status FuseFs::Mount(const std::string& mount_dir, bool debug) {
  mount_dir_ = mount_dir;
  (void)StartTime();
  std::vector<std::string> argv = {"snapset-cowd", "-o",
                                   "fsname=snapset-cowd,subtype=snapset-cowd,default_permissions"};
  if (debug) argv.push_back("-d");
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  fuse_args args = FUSE_ARGS_INIT(int(cargv.size()), cargv.data());
  static const fuse_lowlevel_ops ops = MakeOps();
  se_ = fuse_session_new(&args, &ops, sizeof ops, this);
  if (!se_) return Status::Internal("fuse_session_new failed (see the message above)");
  if (fuse_session_mount(se_, mount_dir.c_str()) != 0) {
    fuse_session_destroy(se_);
    se_ = nullptr;
    return Status::Unavailable("cannot mount FUSE on " + mount_dir +
                               " (is /dev/fuse there and are you root? see the message above)");
  }
  mounted_ = true;
  return Status::Ok();
}

void FuseFs::InvalidateSnapshot(uint64_t volume_uid, uint64_t epoch, bool wait) {
  if (wait) {
    // -ENOENT: the kernel has no such inode cached; nothing to drop.
    fuse_lowlevel_notify_inval_inode(se_, Ino(volume_uid, kSubSnapBase + epoch), 0, 0);
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  to_invalidate_.push_back(Ino(volume_uid, kSubSnapBase + epoch));
  cv_.notify_all();
}

void FuseFs::InvalidatorLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return invalidator_stop_ || !to_invalidate_.empty(); });
    if (invalidator_stop_) return;
    std::vector<uint64_t> inos;
    inos.swap(to_invalidate_);
    lock.unlock();
    for (uint64_t ino : inos) {
      // -ENOENT: the kernel has no such inode cached; nothing to drop.
      fuse_lowlevel_notify_inval_inode(se_, fuse_ino_t(ino), 0, 0);
    }
    lock.lock();
  }
}

void FuseFs::Start(std::function<void()> on_unexpected_end) {
  invalidator_ = std::thread([this] { InvalidatorLoop(); });
  loop_ = std::thread([this, on_unexpected_end = std::move(on_unexpected_end)] {
    fuse_loop_config* cfg = fuse_loop_cfg_create();
    fuse_loop_cfg_set_clone_fd(cfg, 0);
    // Writes blocked by a hold occupy a worker each; reads must still find one.
    fuse_loop_cfg_set_max_threads(cfg, 256);
    int rc = fuse_session_loop_mt(se_, cfg);
    fuse_loop_cfg_destroy(cfg);
    bool expected;
    {
      std::lock_guard<std::mutex> lock(mu_);
      loop_done_ = true;
      expected = stopping_;
      cv_.notify_all();
    }
    if (!expected) {
      Log("the FUSE session on " + mount_dir_ + " ended (rc " + std::to_string(rc) +
          "): unmounted or aborted from outside");
      if (on_unexpected_end) on_unexpected_end();
    }
  });
}

Status FuseFs::Stop() {
  if (!se_) return Status::Ok();
  Status result;
  if (invalidator_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      invalidator_stop_ = true;
      cv_.notify_all();
    }
    invalidator_.join();
  }
  if (loop_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    fuse_session_exit(se_);
    // Workers notice the exit flag after their next request: send one.
    std::thread([dir = mount_dir_] {
      struct stat st{};
      ::stat(dir.c_str(), &st);
    }).detach();
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_for(lock, std::chrono::seconds(5), [&] { return loop_done_; })) {
      std::string conn = ConnectionOf(mount_dir_);
      Log("the FUSE loop did not stop within 5 s; aborting connection " + conn);
      if (!conn.empty()) {
        std::ofstream("/sys/fs/fuse/connections/" + conn + "/abort") << "1";
      }
      if (!cv_.wait_for(lock, std::chrono::seconds(5), [&] { return loop_done_; })) {
        return Status::Internal("the FUSE loop on " + mount_dir_ + " would not stop");
      }
    }
    lock.unlock();
    loop_.join();
  }
  if (mounted_) {
    fuse_session_unmount(se_);
    mounted_ = false;
  }
  fuse_session_destroy(se_);
  se_ = nullptr;
  return result;
}

}  // namespace snapset::cow::daemon
