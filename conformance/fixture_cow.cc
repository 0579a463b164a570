// SPDX-License-Identifier: Apache-2.0
//
// The cow fixture, for the software-cow provider: a private snapset-cowd
// started by the suite (state, FUSE mount and control socket under the work
// directory), with `count` small volumes made through its control socket.
// The volumes are cow:NAME; snapset resolves them and the provider holds
// their writes in the daemon's write gate.
//
// Records sit at offset 0 of the origin file the daemon serves through FUSE
// (<mount>/NAME/origin). A snapshot's exposure is the daemon's read-only
// snapshot file (<mount>/NAME/snapshots/ID), read the same way.
//
// The daemon dies with the suite's parent (PR_SET_PDEATHSIG), so a suite
// that crashes leaves at most a dead FUSE mount under its work directory.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "conformance/fixture.hpp"
#include "conformance/paths.hpp"
#include "conformance/record_io.hpp"
#include "core/run_command.hpp"
#include "providers/software-cow/client/cowd_client.hpp"

namespace snapset::conformance {

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr uint64_t kVolumeBytes = 16ull << 20;
// Room for the suite's snapshots of small changes: each record written
// after a snapshot copies one chunk (64 KiB) once, so 64 MiB keeps about a
// thousand of them before overflow deletes the oldest snapshot.
constexpr uint64_t kDiffBytes = 64ull << 20;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// True when a snapset-cowd FUSE mount (live or dead) sits on `dir`.
bool FuseMounted(const std::string& dir) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string id, parent, dev, root, point;
    f >> id >> parent >> dev >> root >> point;
    if (point == dir && line.find(std::string(" - ") + cow::kFuseType + " ") != std::string::npos)
      return true;
  }
  return false;
}

// waitpid with a deadline; true once reaped.
bool Reap(pid_t pid, std::chrono::milliseconds limit, int* exit_status = nullptr) {
  const auto until = std::chrono::steady_clock::now() + limit;
  for (;;) {
    int status = 0;
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid && exit_status) *exit_status = status;
    if (r == pid || (r < 0 && errno == ECHILD)) return true;
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(5ms);
  }
}

class CowFixture : public Fixture {
 public:
  explicit CowFixture(const FixtureOptions& o)
      : dir_(o.work_dir + "/cow"),
        state_(dir_ + "/state"),
        mount_(dir_ + "/mnt"),
        socket_(dir_ + "/run/cowd.sock"),
        log_(dir_ + "/cowd.log") {}
  ~CowFixture() override { Stop(); }

  std::string Describe() const override {
    return std::to_string(count_) + " software-cow volumes of " +
           std::to_string(kVolumeBytes >> 20) + " MiB served by a private snapset-cowd";
  }

  Result<FixtureSetup> Start(int count) override {
    if (std::string missing = MissingPrerequisite(); !missing.empty())
      return Status::Unavailable("the cow fixture needs " + missing);
    auto library = BundledPath(Bundled::kCowProvider);
    if (!library.ok()) return library.status();
    auto daemon = BundledPath(Bundled::kCowDaemon);
    if (!daemon.ok()) return daemon.status();
    owner_ = ::getpid();
    count_ = count;
    std::error_code ec;
    fs::create_directories(mount_, ec);
    if (ec) return Status::Unavailable("cannot create " + mount_ + ": " + ec.message());
    SNAPSET_RETURN_IF_ERROR(StartDaemon(*daemon));
    auto client = cow::CowdClient::Connect(socket_, 30s);
    if (!client.ok()) return client.status().WithContext("the cow fixture's snapset-cowd");
    for (int i = 0; i < count; ++i) {
      cow::CreateVolumeRequest request;
      request.name = "conformance-" + std::to_string(i);
      request.size_bytes = kVolumeBytes;
      request.diff_max_bytes = kDiffBytes;
      auto made = (*client)->CreateVolume(request);
      if (!made.ok()) return made.status().WithContext("creating cow:" + request.name);
      names_.push_back(request.name);
      origins_.push_back(made->served_origin);
      volumes_.push_back("cow:" + request.name);
    }
    FixtureSetup setup;
    setup.provider_library = *library;
    setup.provider_config = "{\"socket\":\"" + socket_ + "\"}";
    setup.provider_name = "software-cow";
    return setup;
  }

  const std::vector<std::string>& volumes() const override { return volumes_; }

  Status WriteRecord(int index, const std::string& record) override {
    return WriteRecordFile(origins_.at(index), record);
  }
  Result<std::string> ReadRecord(int index) override { return ReadRecordFile(origins_.at(index)); }
  Result<std::unique_ptr<RecordWriter>> OpenWriter(int index) override {
    return OpenRecordFileWriter(origins_.at(index));
  }

  // The provider exposes a snapshot as the daemon's snapshot file.
  Result<std::string> ReadExposedRecord(int, const std::string& exposed_as) override {
    return ReadRecordFile(exposed_as);
  }

  // Opens the exposure for writing and writes back the block it holds, so
  // a writable exposure (the defect) is found without changing its data.
  Status TryWriteExposed(int, const std::string& exposed_as) override {
    const int fd = ::open(exposed_as.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0)
      return Status::BadState("the exposure " + exposed_as +
                              " cannot be opened for writing: " + std::strerror(errno));
    std::string block(kRecordBlock, '\0');
    const ssize_t got = ::pread(fd, block.data(), block.size(), 0);
    const ssize_t put = got > 0 ? ::pwrite(fd, block.data(), size_t(got), 0) : ::write(fd, "", 0);
    const int write_errno = errno;
    const bool synced = put >= 0 && ::fdatasync(fd) == 0;
    ::close(fd);
    if (put < 0 || !synced)
      return Status::BadState("the exposure " + exposed_as +
                              " refused a write: " + std::strerror(write_errno));
    return Status::Ok();  // it took the write: not read-only
  }

  // The snapshots of the fixture's volumes and any hold left on them.
  Result<std::vector<std::string>> Residue() override {
    auto client = cow::CowdClient::Connect(socket_, 30s);
    if (!client.ok()) return client.status().WithContext("the cow fixture's snapset-cowd");
    std::vector<std::string> out;
    for (const auto& name : names_) {
      auto snapshots = (*client)->ListSnapshots(name);
      if (!snapshots.ok()) return snapshots.status();
      for (const auto& s : *snapshots) out.push_back("snapshot cow:" + name + "/" + s.id);
      auto status = (*client)->GetVolume(name);
      if (!status.ok()) return status.status();
      if (status->writes_held) out.push_back("writes held on cow:" + name);
    }
    return out;
  }
  bool residue_visible() const override { return true; }

  // Only the process that started the daemon stops it: a case's forked
  // process that destroys its copy of the fixture must leave it running.
  void Stop() override {
    if (owner_ == 0 || owner_ != ::getpid()) return;
    if (pid_ > 0) {
      if (auto client = cow::CowdClient::Connect(socket_, 10s); client.ok()) {
        for (const auto& name : names_) (void)(*client)->DeleteVolume(name);
      }
      ::kill(pid_, SIGTERM);
      if (!Reap(pid_, 20s)) {
        ::kill(pid_, SIGKILL);
        (void)Reap(pid_, 20s);
      }
      pid_ = -1;
    }
    for (int i = 0; i < 5 && FuseMounted(mount_); ++i) {
      if (RunCommand({"fusermount3", "-u", "-z", mount_}, 10s).exit_code != 0)
        (void)RunCommand({"umount", "-l", mount_}, 10s);
    }
    std::error_code ec;
    if (!FuseMounted(mount_)) fs::remove_all(dir_, ec);
    names_.clear();
    origins_.clear();
    volumes_.clear();
    owner_ = 0;
  }

 private:
  static std::string MissingPrerequisite() {
    if (::geteuid() != 0) return "root (snapset-cowd mounts FUSE)";
    if (::access("/dev/fuse", R_OK | W_OK) != 0) return "/dev/fuse (the fuse kernel module)";
    if (!HaveProgram("fusermount3")) return "fusermount3 (Debian package fuse3)";
    return "";
  }

  // Starts snapset-cowd and waits for its ready line on stdout.
  Status StartDaemon(const std::string& program) {
    std::vector<std::string> args = {program, "--state-dir", state_, "--mount",
                                     mount_,  "--socket",    socket_};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0)
      return Status::Internal("pipe: " + std::string(strerror(errno)));
    const int err = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    const int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) {
      ::close(out[0]), ::close(out[1]), ::close(err), ::close(null);
      return Status::Internal("fork: " + std::string(strerror(errno)));
    }
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (::getppid() != parent) ::_exit(126);
      ::dup2(out[1], STDOUT_FILENO);
      if (err >= 0) ::dup2(err, STDERR_FILENO);
      if (null >= 0) ::dup2(null, STDIN_FILENO);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(out[1]);
    if (err >= 0) ::close(err);
    if (null >= 0) ::close(null);
    pid_ = pid;
    std::string text;
    const auto until = std::chrono::steady_clock::now() + 30s;
    while (text.find('\n') == std::string::npos && std::chrono::steady_clock::now() < until) {
      pollfd p{out[0], POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      char buf[4096];
      const ssize_t n = ::read(out[0], buf, sizeof buf);
      if (n <= 0) break;
      text.append(buf, size_t(n));
    }
    ::close(out[0]);
    if (text.find("\"ready\":true") != std::string::npos) return Status::Ok();
    std::string what = "did not report ready within 30 s";
    int status = 0;
    if (Reap(pid_, 1s, &status)) {
      what = "exited (" +
             (WIFEXITED(status) ? "status " + std::to_string(WEXITSTATUS(status))
                                : "signal " + std::to_string(WTERMSIG(status))) +
             ") before it reported ready";
      pid_ = -1;
    }
    return Status::Unavailable(program + " " + what + "; stdout: " + text + "\nits log (" + log_ +
                               "):\n" + ReadFile(log_));
  }

  const std::string dir_, state_, mount_, socket_, log_;
  pid_t owner_ = 0;
  pid_t pid_ = -1;
  int count_ = 0;
  std::vector<std::string> names_, origins_, volumes_;
};

}  // namespace

std::unique_ptr<Fixture> MakeCowFixture(const FixtureOptions& options) {
  return std::make_unique<CowFixture>(options);
}

}  // namespace snapset::conformance
