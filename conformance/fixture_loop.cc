// SPDX-License-Identifier: Apache-2.0
//
// The loop fixture, for loop-clone (examples/minimal-provider): one xfs
// "pool" on a loop device (reflink, so FICLONE works), holding the snapshot
// directory and one sparse backing file per test volume; each backing file
// is a loop device carrying a mounted ext4. The volumes are the mount
// points: snapset resolves them to filesystems and the suite holds them
// with FIFREEZE.
//
// Records live in a file `.snapset-conformance` on each ext4, made at start
// (4 KiB, fsync'd), so a record overwrites the same blocks in place. In a
// snapshot (an ext4 image) the file is read with debugfs, which reads an
// image without mounting it or replaying its journal.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "conformance/fixture.hpp"
#include "conformance/paths.hpp"
#include "conformance/record_io.hpp"
#include "core/run_command.hpp"

namespace snapset::conformance {

namespace {

namespace fs = std::filesystem;

constexpr uint64_t kPoolBytes = 2ull << 30;  // sparse
constexpr uint64_t kVolumeBytes = 64ull << 20;
constexpr char kRecordFile[] = ".snapset-conformance";

// Output of a helper program that must succeed within a minute.
Result<std::string> Run(const std::vector<std::string>& argv) {
  CommandResult r = RunCommand(argv, std::chrono::seconds(60));
  if (r.exit_code != 0) {
    std::string line;
    for (const auto& a : argv) line += (line.empty() ? "" : " ") + a;
    return Status::Unavailable(
        line + (r.timed_out ? " timed out" : " failed (exit " + std::to_string(r.exit_code) + ")") +
        ": " + r.output);
  }
  return r.output;
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

Status MakeSparseFile(const std::string& path, uint64_t bytes) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return Status::Unavailable("cannot create " + path + ": " + std::strerror(errno));
  const bool ok = ::ftruncate(fd, off_t(bytes)) == 0;
  ::close(fd);
  return ok ? Status::Ok() : Status::Unavailable("cannot size " + path);
}

class LoopFixture : public Fixture {
 public:
  explicit LoopFixture(const FixtureOptions& o) : dir_(o.work_dir) {}
  ~LoopFixture() override { Stop(); }

  std::string Describe() const override {
    return "ext4 on " + std::to_string(count_) +
           " loop devices whose backing files sit on an xfs pool (reflink)";
  }

  Result<FixtureSetup> Start(int count) override {
    count_ = count;
    owner_ = ::getpid();
    if (::geteuid() != 0)
      return Status::Unavailable("the loop fixture needs root (losetup, mount)");
    if (::access("/dev/loop-control", F_OK) != 0)
      return Status::Unavailable("the loop fixture needs /dev/loop-control (the loop driver)");
    for (const char* tool : {"losetup", "mkfs.xfs", "mkfs.ext4", "debugfs", "mount", "umount"}) {
      if (!HaveProgram(tool))
        return Status::Unavailable(std::string("the loop fixture needs ") + tool +
                                   " (scripts/install-deps.sh installs it)");
    }
    auto library = BundledPath(Bundled::kLoopCloneProvider);
    if (!library.ok()) return library.status();
    pool_ = dir_ + "/pool";
    fs::create_directories(pool_);
    SNAPSET_RETURN_IF_ERROR(MakeSparseFile(dir_ + "/pool.img", kPoolBytes));
    auto dev = Run({"losetup", "--find", "--show", dir_ + "/pool.img"});
    if (!dev.ok()) return dev.status();
    pool_device_ = Trim(*dev);
    if (auto r = Run({"mkfs.xfs", "-q", "-m", "reflink=1", pool_device_}); !r.ok())
      return r.status();
    if (auto r = Run({"mount", pool_device_, pool_}); !r.ok()) return r.status();
    pool_mounted_ = true;
    snapshots_ = pool_ + "/snapshots";
    fs::create_directories(snapshots_);
    for (int i = 0; i < count; ++i) {
      const std::string backing = pool_ + "/vol-" + std::to_string(i) + ".img";
      SNAPSET_RETURN_IF_ERROR(MakeSparseFile(backing, kVolumeBytes));
      // No lazy initialisation: a background thread writing inode tables
      // would slow every freeze of the run.
      auto loop = Run({"losetup", "--find", "--show", backing});
      if (!loop.ok()) return loop.status();
      devices_.push_back(Trim(*loop));
      if (auto r = Run({"mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0",
                        devices_.back()});
          !r.ok())
        return r.status();
      const std::string mount = dir_ + "/vol-" + std::to_string(i);
      fs::create_directories(mount);
      if (auto r = Run({"mount", "-t", "ext4", devices_.back(), mount}); !r.ok()) return r.status();
      volumes_.push_back(mount);
      // The record file, allocated now so records overwrite it in place.
      const std::string file = mount + "/" + kRecordFile;
      int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
      const std::string zeros(kRecordBlock, '\0');
      const bool ok = fd >= 0 && ::write(fd, zeros.data(), zeros.size()) == ssize_t(zeros.size()) &&
                      ::fsync(fd) == 0;
      if (fd >= 0) ::close(fd);
      if (!ok) return Status::Unavailable("cannot make " + file);
    }
    ::sync();
    FixtureSetup setup;
    setup.provider_library = *library;
    setup.provider_config = "{\"snapshot_dir\":\"" + snapshots_ + "\"}";
    setup.provider_name = "loop-clone";
    return setup;
  }

  const std::vector<std::string>& volumes() const override { return volumes_; }

  Status WriteRecord(int index, const std::string& record) override {
    return WriteRecordFile(RecordPath(index), record);
  }
  Result<std::string> ReadRecord(int index) override { return ReadRecordFile(RecordPath(index)); }
  Result<std::unique_ptr<RecordWriter>> OpenWriter(int index) override {
    return OpenRecordFileWriter(RecordPath(index));
  }

  // The exposure is the image file: an ext4 the record file sits in.
  Result<std::string> ReadExposedRecord(int index, const std::string& exposed_as) override {
    const std::string copy =
        dir_ + "/exposed-record-" + std::to_string(index) + "-" + std::to_string(::getpid());
    ::unlink(copy.c_str());
    auto r = Run({"debugfs", "-R", "dump /" + std::string(kRecordFile) + " " + copy, exposed_as});
    if (!r.ok()) return r.status();
    auto record = ReadRecordFile(copy);
    ::unlink(copy.c_str());
    if (!record.ok() && record.status().code() == Code::kUnavailable)
      return Status::Unavailable("debugfs found no " + std::string(kRecordFile) + " in " +
                                 exposed_as + ": " + *r);
    return record;
  }

  // loop-clone exposes a file the host attaches with losetup --read-only;
  // root may write any file, so "read-only" here is its mode: no write bit,
  // and the image is not the origin's own backing file.
  Status TryWriteExposed(int index, const std::string& exposed_as) override {
    struct stat st;
    if (::stat(exposed_as.c_str(), &st) != 0)
      return Status::NotFound("the exposure " + exposed_as + " does not exist");
    if (st.st_mode & (S_IWUSR | S_IWGRP | S_IWOTH)) return Status::Ok();  // writable: a defect
    struct stat origin;
    const std::string backing = pool_ + "/vol-" + std::to_string(index) + ".img";
    if (::stat(backing.c_str(), &origin) == 0 && origin.st_ino == st.st_ino)
      return Status::Ok();  // the "snapshot" is the origin itself
    return Status::BadState("the exposure " + exposed_as + " is mode 0" +
                            std::to_string(st.st_mode & 0777) + ": read-only");
  }

  // Every file in the snapshot directory: a case's leftovers show up as
  // files the baseline did not have.
  Result<std::vector<std::string>> Residue() override {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(snapshots_, ec))
      out.push_back("file " + e.path().string());
    if (ec) return Status::Unavailable("cannot read " + snapshots_ + ": " + ec.message());
    // Loop devices attached to a snapshot's image (an exposure left
    // attached): they keep the image, and the pool, busy.
    auto loops = Run({"losetup", "--list", "--noheadings", "--output", "NAME,BACK-FILE"});
    if (!loops.ok()) return loops.status();
    std::istringstream lines(*loops);
    std::string device, back;
    while (lines >> device && std::getline(lines >> std::ws, back)) {
      if (back.starts_with(snapshots_ + "/")) out.push_back("loop " + device + " " + back);
    }
    return out;
  }
  bool residue_visible() const override { return true; }

  void Stop() override {
    // Only the process that made the volumes undoes them: a case's forked
    // process destroying its copy of the fixture must leave them alone.
    if (owner_ != ::getpid()) return;
    // A crashed case may have left a freeze: thaw before unmounting.
    for (const auto& m : volumes_) {
      (void)RunCommand({"fsfreeze", "-u", m});
      (void)RunCommand({"umount", "-l", m});
    }
    for (const auto& d : devices_) (void)RunCommand({"losetup", "-d", d});
    // A snapshot image a case left attached keeps the pool busy.
    if (pool_mounted_) {
      CommandResult loops =
          RunCommand({"losetup", "--list", "--noheadings", "--output", "NAME,BACK-FILE"},
                     std::chrono::seconds(60));
      std::istringstream lines(loops.output);
      std::string device, back;
      while (lines >> device && std::getline(lines >> std::ws, back)) {
        if (back.starts_with(snapshots_ + "/")) (void)RunCommand({"losetup", "-d", device});
      }
    }
    if (pool_mounted_) (void)RunCommand({"umount", "-l", pool_});
    if (!pool_device_.empty()) (void)RunCommand({"losetup", "-d", pool_device_});
    volumes_.clear();
    devices_.clear();
    pool_device_.clear();
    pool_mounted_ = false;
  }

 private:
  std::string RecordPath(int index) const { return volumes_.at(index) + "/" + kRecordFile; }

  std::string dir_, pool_, pool_device_, snapshots_;
  bool pool_mounted_ = false;
  pid_t owner_ = 0;
  int count_ = 0;
  std::vector<std::string> devices_, volumes_;
};

}  // namespace

std::unique_ptr<Fixture> MakeLoopFixture(const FixtureOptions& options) {
  return std::make_unique<LoopFixture>(options);
}

}  // namespace snapset::conformance
