// SPDX-License-Identifier: Apache-2.0
// A cow volume as a user sets one up before taking snapshots of it: a
// private snapset-cowd, a cow volume, ext4 on a loop device over its origin,
// the software-cow provider registered, and the snapset CLI pointed at all
// of it. Shared by the tests that need a real filesystem on a cow volume
// (the software-cow end-to-end test, the PostgreSQL writer's test). Needs
// SNAPSET_CLI and SNAPSET_COW_PROVIDER defined, and Boost.Test.
#ifndef SNAPSET_TESTS_SOFTWARE_COW_E2E_COW_STACK_HPP
#define SNAPSET_TESTS_SOFTWARE_COW_E2E_COW_STACK_HPP

#include <rapidjson/document.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/software-cow/daemon/cowd_fixture.hpp"
#include "tests/support/command.hpp"
#include "tests/support/prerequisites.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/timeline.hpp"

namespace snapset::test {

// A cow volume with ext4 on a loop device over its served origin, and the
// software-cow provider registered: what a user sets up before snapshots.
class CowStack {
 public:
  using path = std::filesystem::path;
  // `size`: the cow volume's, as `snapset cow create --size` takes it;
  // `diff_max` its diff area's (`--diff-max`), "" for the default.
  explicit CowStack(const std::string& size = "96M", const std::string& diff_max = "") {
    daemon_ = std::make_unique<cowd::Daemon>(dir_.str() + "/cowd");
    if (Status s = daemon_->Start(); !s.ok()) throw std::runtime_error(s.ToString());
    config_ = dir_.str() + "/config";
    state_ = dir_.str() + "/state";
    run_ = dir_.str() + "/run";
    dir_.Write("config/providers.d/software-cow.json",
               Registration("6d1f7c1e-7a43-4d0b-9a64-3c1f2b5e9d01", "software-cow", "software",
                            SNAPSET_COW_PROVIDER, "{\"socket\": \"" + daemon_->socket() + "\"}"));
    // Unique on the host: the core finds what is stacked on cow:NAME in
    // every snapset-cowd mount, so two tests' "db" would be one volume to it.
    name_ = "db-" + dir_.str().substr(dir_.str().rfind('-') + 1);
    std::vector<std::string> create = {"cow", "create", name_, "--size", size, "--chunk", "64K"};
    if (!diff_max.empty()) create.insert(create.end(), {"--diff-max", diff_max});
    auto made = Cli(create);
    if (made.exit_code != 0) throw std::runtime_error("cow create: " + made.output);
    origin_ = daemon_->mount() + "/" + name_ + "/origin";
    auto loop = RunCommand({"losetup", "--direct-io=on", "--find", "--show", origin_});
    if (loop.exit_code != 0) throw std::runtime_error("losetup: " + loop.output);
    loop_ = loop.output.substr(0, loop.output.find('\n'));
    mnt_ = dir_.str() + "/mnt";
    std::filesystem::create_directories(mnt_);
    if (RunCommand({"mkfs.ext4", "-q", "-F", loop_}).exit_code != 0 ||
        RunCommand({"mount", loop_, mnt_}).exit_code != 0)
      throw std::runtime_error("cannot make and mount ext4 on " + loop_);
    mounted_ = true;
  }
  ~CowStack() {
    for (const auto& m : extra_mounts_) Unmount(m);
    RunCommand({"fsfreeze", "--unfreeze", mnt_});
    if (mounted_) Unmount(mnt_);
    if (!loop_.empty()) RunCommand({"losetup", "-d", loop_});
  }

  // Unmounts `dir`, waiting a little for a process that still has it open
  // (a server that just exited), then lazily: a mount left behind would
  // outlive the test, and removing the temporary folder would delete
  // through it.
  static void Unmount(const std::string& dir) {
    for (int i = 0; i < 30; ++i) {
      if (RunCommand({"umount", dir}).exit_code == 0) return;
      if (RunCommand({"mountpoint", "-q", dir}).exit_code != 0) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    RunCommand({"umount", "-l", dir});
  }

  // Unmounts the filesystem and detaches the loop device (what a revert
  // needs), and the reverse.
  void Detach() {
    // A server that just exited may still hold it for a moment.
    for (int i = 0; mounted_ && RunCommand({"umount", mnt_}).exit_code != 0; ++i) {
      if (i == 30) throw std::runtime_error("cannot unmount " + mnt_);
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    mounted_ = false;
    if (!loop_.empty() && RunCommand({"losetup", "-d", loop_}).exit_code != 0)
      throw std::runtime_error("cannot detach " + loop_);
    loop_.clear();
  }
  void Attach() {
    auto loop = RunCommand({"losetup", "--direct-io=on", "--find", "--show", origin_});
    if (loop.exit_code != 0) throw std::runtime_error("losetup: " + loop.output);
    loop_ = loop.output.substr(0, loop.output.find('\n'));
    if (RunCommand({"mount", loop_, mnt_}).exit_code != 0)
      throw std::runtime_error("cannot mount " + loop_);
    mounted_ = true;
  }

  // Lets writer processes run as `user` join: its run directory's writers/
  // open to it (sticky, as /tmp) and writers.json allowing it.
  void AllowWriterUser(const std::string& user) {
    std::filesystem::create_directories(run_ + "/writers");
    ::chmod(run_.c_str(), 0755);
    ::chmod((run_ + "/writers").c_str(), 01777);
    dir_.Write("config/writers.json", "{\"allowed_users\": [\"" + user + "\"]}");
  }

  // After something else (snapset revert --remount) mounted it again: the
  // loop device it is on now, so that the destructor detaches that one.
  void FollowMount() {
    std::ifstream mounts("/proc/self/mounts");
    std::string source, point, rest;
    mounted_ = false;
    loop_.clear();
    while (mounts >> source >> point && std::getline(mounts, rest)) {
      if (point != mnt_) continue;
      loop_ = source;
      mounted_ = true;
    }
  }

  // The snapset command line for `args`, with this stack's directories.
  std::vector<std::string> CliArgv(std::vector<std::string> args) const {
    std::vector<std::string> argv = {SNAPSET_CLI, "--config-dir", config_, "--state-dir",
                                     state_,      "--run-dir",    run_};
    argv.insert(argv.end(), args.begin(), args.end());
    // `cow` takes the daemon's socket after its own word.
    auto cow = std::find(argv.begin(), argv.end(), "cow");
    if (cow != argv.end()) argv.insert(cow + 1, {"--socket", daemon_->socket()});
    return argv;
  }
  CommandResult Cli(std::vector<std::string> args) const { return RunCommand(CliArgv(args)); }

  // `snapset --json create ...`: the parsed document; fails the test on error.
  rapidjson::Document Create(const std::vector<std::string>& volumes) const {
    std::vector<std::string> args = {"--json", "create"};
    args.insert(args.end(), volumes.begin(), volumes.end());
    auto r = Cli(args);
    BOOST_TEST_REQUIRE(r.exit_code == 0, "snapset create failed: " << r.output);
    rapidjson::Document doc;
    doc.Parse(r.output.c_str());
    BOOST_TEST_REQUIRE(!doc.HasParseError(), r.output);
    return doc;
  }

  // Mounts the snapshot read-only with `snapset expose ID --mount DIR`.
  std::filesystem::path ExposeMounted(const std::string& snapshot_id) {
    std::filesystem::path where = dir_.path() / ("snap-" + snapshot_id);
    std::filesystem::create_directories(where);
    auto r = Cli({"expose", snapshot_id, "--mount", where.string()});
    BOOST_TEST_REQUIRE(r.exit_code == 0, "expose --mount failed: " << r.output);
    extra_mounts_.push_back(where.string());
    return where;
  }

  const path mnt() const { return mnt_; }
  const std::string& loop() const { return loop_; }
  const std::string& name() const { return name_; }  // the cow volume's, "db-XXXXXX"
  std::string volume() const { return "cow:" + name_; }
  const std::string& origin() const { return origin_; }
  const cowd::Daemon& daemon() const { return *daemon_; }
  const TempDir& dir() const { return dir_; }
  const std::string& run_dir() const { return run_; }  // writers' sockets: run_dir/writers

 private:
  TempDir dir_;
  std::unique_ptr<cowd::Daemon> daemon_;
  std::string config_, state_, run_, name_, origin_, loop_, mnt_;
  bool mounted_ = false;
  std::vector<std::string> extra_mounts_;
};

// What a CowStack needs here (the skip rule of prerequisites.hpp).
inline bool CowStackAvailable() {
  return Available(cowd::MissingPrerequisite(/*loop_devices=*/true));
}

}  // namespace snapset::test

#endif  // SNAPSET_TESTS_SOFTWARE_COW_E2E_COW_STACK_HPP
