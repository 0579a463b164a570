// SPDX-License-Identifier: Apache-2.0
#define FUSE_USE_VERSION 314
#include "providers/mock-array/write_gate.hpp"

#include <fcntl.h>
#include <fuse.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace snapset::mock {

// The FUSE callbacks: a passthrough by path, files only, no create or
// delete (the array makes and removes its files in the source folder).
struct GateOps {
  static WriteGate* Self() { return static_cast<WriteGate*>(fuse_get_context()->private_data); }
  static std::string Source(const char* path) { return Self()->source_dir_ + path; }
  static std::string Name(const char* path) { return path[0] == '/' ? path + 1 : path; }

  static int GetAttr(const char* path, struct stat* st, fuse_file_info* fi) {
    int rc = fi ? ::fstat(int(fi->fh), st) : ::lstat(Source(path).c_str(), st);
    return rc == 0 ? 0 : -errno;
  }
  static int ReadDir(const char* path, void* buf, fuse_fill_dir_t fill, off_t, fuse_file_info*,
                     fuse_readdir_flags) {
    if (std::strcmp(path, "/") != 0) return -ENOTDIR;
    fill(buf, ".", nullptr, 0, fuse_fill_dir_flags(0));
    fill(buf, "..", nullptr, 0, fuse_fill_dir_flags(0));
    return 0;  // names are known to the array; listing them is not needed
  }
  static int Open(const char* path, fuse_file_info* fi) {
    if (fi->flags & (O_CREAT | O_TRUNC)) return -EPERM;
    const int fd = ::open(Source(path).c_str(), (fi->flags & O_ACCMODE) | O_CLOEXEC);
    if (fd < 0) return -errno;
    fi->fh = uint64_t(fd);
    fi->direct_io = 1;  // nothing cached in the gate: every write reaches the file
    return 0;
  }
  static int Read(const char*, char* buf, size_t size, off_t offset, fuse_file_info* fi) {
    const ssize_t n = ::pread(int(fi->fh), buf, size, offset);
    return n < 0 ? -errno : int(n);
  }
  static int Write(const char* path, const char* buf, size_t size, off_t offset,
                   fuse_file_info* fi) {
    const std::string name = Name(path);
    Self()->WaitForWrite(name);
    const ssize_t n = ::pwrite(int(fi->fh), buf, size, offset);
    const int rc = n < 0 ? -errno : int(n);
    Self()->WriteDone(name);
    return rc;
  }
  static int Fsync(const char* path, int datasync, fuse_file_info* fi) {
    const std::string name = Name(path);
    Self()->WaitForWrite(name);
    const int rc = datasync ? ::fdatasync(int(fi->fh)) : ::fsync(int(fi->fh));
    Self()->WriteDone(name);
    return rc == 0 ? 0 : -errno;
  }
  static int Release(const char*, fuse_file_info* fi) {
    ::close(int(fi->fh));
    return 0;
  }
  static void* Init(fuse_conn_info*, fuse_config* cfg) {
    cfg->use_ino = 1;
    cfg->direct_io = 1;
    cfg->attr_timeout = 0;
    cfg->entry_timeout = 0;
    return fuse_get_context()->private_data;
  }

  static fuse_operations Make() {
    fuse_operations ops{};
    ops.getattr = GetAttr;
    ops.readdir = ReadDir;
    ops.open = Open;
    ops.read = Read;
    ops.write = Write;
    ops.fsync = Fsync;
    ops.release = Release;
    ops.init = Init;
    return ops;
  }
};

Result<std::unique_ptr<WriteGate>> WriteGate::Mount(const std::string& source_dir,
                                                    const std::string& mount_dir) {
  std::unique_ptr<WriteGate> gate(new WriteGate(source_dir, mount_dir));
  std::vector<std::string> argv = {"snapset-mock-array", "-o",
                                   "fsname=snapset-mock-array-gate,subtype=snapset-gate"};
  std::vector<char*> cargv;
  for (std::string& a : argv) cargv.push_back(a.data());
  fuse_args args = FUSE_ARGS_INIT(int(cargv.size()), cargv.data());
  static const fuse_operations ops = GateOps::Make();
  gate->fuse_ = fuse_new(&args, &ops, sizeof ops, gate.get());
  if (!gate->fuse_) return Status::Internal("fuse_new failed (see the message above)");
  if (fuse_mount(gate->fuse_, mount_dir.c_str()) != 0) {
    fuse_destroy(gate->fuse_);
    gate->fuse_ = nullptr;
    return Status::Unavailable("cannot mount the write gate (FUSE) on " + mount_dir +
                               ": is /dev/fuse there, and is this root?");
  }
  struct fuse* f = gate->fuse_;
  gate->loop_ = std::thread([f] {
    fuse_loop_config* cfg = fuse_loop_cfg_create();
    // Held writes occupy a worker each; reads and other LUNs need more.
    fuse_loop_cfg_set_max_threads(cfg, 256);
    fuse_loop_mt(f, cfg);
    fuse_loop_cfg_destroy(cfg);
  });
  return gate;
}

WriteGate::~WriteGate() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    holds_.clear();
    changed_.notify_all();
  }
  if (!fuse_) return;
  // The unmount ends the session (a worker's read of /dev/fuse fails), so
  // the loop returns. No request is sent to wake it: this thread would wait
  // for an answer no worker is left to give.
  fuse_exit(fuse_);
  fuse_unmount(fuse_);
  if (loop_.joinable()) loop_.join();
  fuse_destroy(fuse_);
}

uint64_t WriteGate::Hold(const std::vector<std::string>& files, Clock::time_point until) {
  std::lock_guard<std::mutex> lock(mu_);
  const uint64_t id = next_id_++;
  holds_[id] = HoldInfo{id, files, until};
  return id;
}

uint64_t WriteGate::HoldAndDrain(const std::vector<std::string>& files, Clock::time_point until) {
  const uint64_t id = Hold(files, until);
  std::unique_lock<std::mutex> lock(mu_);
  changed_.wait_until(lock, until, [&] {
    return std::all_of(files.begin(), files.end(), [&](const std::string& f) {
      auto it = in_flight_.find(f);
      return it == in_flight_.end() || it->second == 0;
    });
  });
  return id;
}

void WriteGate::WriteDone(const std::string& file) {
  std::lock_guard<std::mutex> lock(mu_);
  if (--in_flight_[file] <= 0) in_flight_.erase(file);
  changed_.notify_all();
}

void WriteGate::Lift(uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  holds_.erase(id);
  changed_.notify_all();
}

std::vector<WriteGate::HoldInfo> WriteGate::Holds() {
  std::lock_guard<std::mutex> lock(mu_);
  Expire(Clock::now());
  std::vector<HoldInfo> out;
  for (const auto& [id, hold] : holds_) out.push_back(hold);
  return out;
}

int WriteGate::waiting() {
  std::lock_guard<std::mutex> lock(mu_);
  return waiting_;
}

void WriteGate::Expire(Clock::time_point now) {
  for (auto it = holds_.begin(); it != holds_.end();) {
    it = it->second.until <= now ? holds_.erase(it) : std::next(it);
  }
}

void WriteGate::WaitForWrite(const std::string& file) {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    Expire(Clock::now());
    // The earliest end of a hold on this file, if any.
    Clock::time_point until = Clock::time_point::max();
    bool held = false;
    for (const auto& [id, hold] : holds_) {
      if (std::find(hold.files.begin(), hold.files.end(), file) == hold.files.end()) continue;
      held = true;
      until = std::min(until, hold.until);
    }
    if (!held) {
      ++in_flight_[file];  // until WriteDone: HoldAndDrain waits for it
      return;
    }
    ++waiting_;
    changed_.wait_until(lock, until);
    --waiting_;
  }
}

}  // namespace snapset::mock
