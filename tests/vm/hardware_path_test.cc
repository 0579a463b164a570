// SPDX-License-Identifier: Apache-2.0
// The VSS hardware path on a real kernel, as a storage engineer runs it: ext4
// on array LUNs attached with Open-iSCSI (iscsiadm, iscsi_tcp, udev's
// /dev/disk/by-id/wwn-0x<NAA>), snapset freezing the filesystems while each
// array cuts its consistency group, and every snapshot attached with
// Open-iSCSI and mounted again. Needs what this project's host kernel lacks,
// so it runs in the test bed's guest (tests/vm/guest_suite.sh), which has
// iscsid running and the fixture's initiator name as its own.
//
// Two mock arrays over HTTPS (tests/iscsi/provider_fixture.hpp), three LUNs:
// a1 and a2 on array a, b1 on array b, each mapped to this host with target
// CHAP. On each filesystem an application rewrites files with fsync and is
// quiesced by a hook writer that records their sha256 at freeze; one sequence
// writer, never quiesced, writes 1, 2, 3, ... to a1, a2, b1 in that order, so
// a set taken at one instant across both arrays shows a prefix of it.
#define BOOST_TEST_MODULE hardware_path_test
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/iscsi/provider_fixture.hpp"
#include "tests/support/must.hpp"
#include "tests/support/prerequisites.hpp"
#include "tools/iscsi_attach.hpp"

namespace snapset::test {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::steady_clock;

constexpr int kHoldWritesTimeout = 9;  // snapset's exit code (docs/cli.md)
// Target CHAP: the host's mapping of the source LUNs, and the exposures.
constexpr char kHostChapUser[] = "snapset-host";
constexpr char kHostChapSecret[] = "host-secret-14";
constexpr char kSnapChapUser[] = "snapset-snaps";
constexpr char kSnapChapSecret[] = "snap-secret-14";
constexpr const char* kNames[] = {"a1", "a2", "b1"};  // the fixture's LUN order
constexpr int kFilesPerFs = 4;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// "HASH  PATH" lines of sha256sum: path -> hash.
std::map<std::string, std::string> Sums(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream lines(text);
  for (std::string hash, path; lines >> hash >> path;) out[path] = hash;
  return out;
}

// The application on one filesystem: rewrites data/f0..f3 in turn, each
// write followed by fsync. While <ctl>/pause exists it stops between two
// writes and says so with <ctl>/paused-<name> (its writer's freeze).
class AppWriter {
 public:
  AppWriter(std::string mount, std::string name, std::string ctl)
      : mount_(std::move(mount)), name_(std::move(name)), ctl_(std::move(ctl)) {
    fs::create_directories(mount_ + "/data");
    thread_ = std::thread([this] { Run(); });
  }
  ~AppWriter() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  uint64_t writes() const { return writes_; }
  const std::string& name() const { return name_; }

 private:
  void Run() {
    const std::string pause = ctl_ + "/pause", paused = ctl_ + "/paused-" + name_;
    for (uint64_t v = 0; !stop_; ++v) {
      if (fs::exists(pause)) {
        std::ofstream(paused).put('\n');
        while (fs::exists(pause) && !stop_) std::this_thread::sleep_for(milliseconds(5));
        fs::remove(paused);
        continue;
      }
      const std::string file = mount_ + "/data/f" + std::to_string(v % kFilesPerFs);
      std::string text = name_ + " " + file + " version " + std::to_string(v) + "\n";
      text.resize(16384, char('a' + v % 26));
      const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (fd < 0) break;
      const bool ok =
          ::write(fd, text.data(), text.size()) == ssize_t(text.size()) && ::fsync(fd) == 0;
      ::close(fd);
      if (!ok) break;
      ++writes_;
      std::this_thread::sleep_for(milliseconds(20));
    }
  }

  std::string mount_, name_, ctl_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> writes_{0};
  std::thread thread_;
};

// Writes n = 1, 2, 3, ... to <mount>/seq of each mount in order, each write
// acknowledged before the next: at any instant the files hold a prefix of
// that sequence. Never quiesced, so only the host's hold makes a set of
// snapshots on two arrays one instant. Its write to a frozen filesystem
// sleeps in D state until the thaw.
class SequenceWriter {
 public:
  explicit SequenceWriter(const std::vector<std::string>& mounts) {
    for (const auto& m : mounts) {
      fds_.push_back(::open((m + "/seq").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
      BOOST_TEST_REQUIRE(fds_.back() >= 0, "open " << m << "/seq");
    }
    thread_ = std::thread([this] {
      for (uint64_t n = 1; !stop_; ++n) {
        char record[32];
        const int len =
            std::snprintf(record, sizeof record, "%020llu\n", static_cast<unsigned long long>(n));
        for (int fd : fds_) {
          if (::pwrite(fd, record, len, 0) != len || ::fdatasync(fd) != 0) return;
        }
        last_ = n;
      }
    });
  }
  ~SequenceWriter() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    for (int fd : fds_) ::close(fd);
    fds_.clear();
  }
  uint64_t last() const { return last_; }  // written to every mount

 private:
  std::vector<int> fds_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> last_{0};
  std::thread thread_;
};

uint64_t SequenceIn(const std::string& dir) {
  const std::string text = ReadFile(dir + "/seq");
  BOOST_TEST_REQUIRE(!text.empty(), "no sequence record in " << dir);
  return std::stoull(text);
}

ProviderFixtureOptions BedOptions(const std::string& snap_chap_file) {
  ProviderFixtureOptions o;
  o.luns_a = 2;
  o.luns_b = 1;
  o.lun_bytes = 32 << 20;
  o.tls = true;
  o.host_chap_user = kHostChapUser;
  o.host_chap_password = kHostChapSecret;
  // The provider exposes snapshots with target CHAP.
  o.config_a = o.config_b = R"("chap_file": ")" + snap_chap_file + "\"";
  return o;
}

// The source LUNs attached to this host with Open-iSCSI and CHAP, ext4 on
// each mounted by its wwn name, the applications and their hook writer.
// The destructor undoes all of it, whatever the test did: thaw, unmount,
// log out of every session.
class HardwarePath {
 public:
  HardwarePath()
      : snap_chap_(WriteChapFile(work_, "snap.chap", kSnapChapUser, kSnapChapSecret)),
        f_(BedOptions(snap_chap_)) {
    ctl_ = work_.str() + "/ctl";
    fs::create_directories(ctl_);
    BOOST_TEST_REQUIRE(f_.luns().size() == 3u);
    for (size_t i = 0; i < 3; ++i) {
      const ArrayLun& lun = f_.luns()[i];
      auto device = cli::AttachIscsi(lun.url, cli::ChapCredentials{kHostChapUser, kHostChapSecret},
                                     lun.naa, seconds(90));
      BOOST_TEST_REQUIRE(device.ok(),
                         "attaching " << lun.url << ": " << device.status().ToString());
      BOOST_TEST_REQUIRE(*device == "/dev/disk/by-id/wwn-0x" + lun.naa);
      devices_.push_back(*device);
      const std::string mount = work_.str() + "/mnt/" + kNames[i];
      fs::create_directories(mount);
      Must({"mkfs.ext4", "-q", "-F", *device});
      Must({"mount", *device, mount});
      mounts_.push_back(mount);
    }
    WriteHook();
  }

  ~HardwarePath() {
    for (const auto& m : mounts_) Unfreeze(m).Now();
    apps_.clear();
    for (const auto& m : snapshot_mounts_) RunCommand({"umount", m}, seconds(30));
    for (const auto& m : mounts_) RunCommand({"umount", m}, seconds(30));
    for (const ArrayLun& lun : f_.luns()) (void)cli::DetachIscsi(lun.url, seconds(30));
    RunCommand({"iscsiadm", "-m", "node", "--logoutall=all"}, seconds(30));
    RunCommand({"iscsiadm", "-m", "node", "-o", "delete"}, seconds(30));
  }

  ProviderFixture& f() { return f_; }
  const std::vector<std::string>& mounts() const { return mounts_; }
  const std::string& snap_chap() const { return snap_chap_; }
  std::string SumsAtFreeze() const { return ReadFile(ctl_ + "/sums"); }

  void StartApps() {
    for (size_t i = 0; i < 3; ++i)
      apps_.push_back(std::make_unique<AppWriter>(mounts_[i], kNames[i], ctl_));
  }
  void StopApps() { apps_.clear(); }
  const std::vector<std::unique_ptr<AppWriter>>& apps() const { return apps_; }

  std::string snapshot_root() const { return work_.str() + "/snap"; }
  // A directory to mount a snapshot on, unmounted by the destructor if the
  // test does not get to unexpose it.
  std::string SnapshotMount(const std::string& name) {
    const std::string dir = snapshot_root() + "/" + name;
    fs::create_directories(dir);
    snapshot_mounts_.push_back(dir);
    return dir;
  }

 private:
  // The applications' writer: at freeze it stops them (touch pause, wait for
  // each paused-NAME) and records the sha256 of every file; at thaw it lets
  // them go. One sha256sum for all files: under TCG each exec costs ~1 s.
  void WriteHook() {
    std::string files, names;
    for (const auto& m : mounts_) files += " " + m + "/data/*";
    for (const char* n : kNames) names += std::string(" ") + n;
    const std::string hook = f_.dir().Write(
        "config/writers.d/10-app", "#!/bin/bash\n# tests/vm/hardware_path_test.cc\nctl=" + ctl_ +
                                       "\nfiles='" + files + "'\nnames='" + names + "'\n" + R"(
case "$1" in
freeze)
  touch "$ctl/pause"
  for i in $(seq 300); do
    all=1
    for n in $names; do [ -e "$ctl/paused-$n" ] || all=; done
    [ -n "$all" ] && break
    sleep 0.1
  done
  [ -n "$all" ] || { echo "the applications did not pause within 30 s"; exit 1; }
  sha256sum $files > "$ctl/sums" ;;
thaw) rm -f "$ctl/pause" ;;
esac
)");
    ::chmod(hook.c_str(), 0755);
  }

  TempDir work_;
  std::string snap_chap_;
  ProviderFixture f_;
  std::string ctl_;
  std::vector<std::string> devices_, mounts_, snapshot_mounts_;
  std::vector<std::unique_ptr<AppWriter>> apps_;
};

bool GuestAvailable() {
  if (!ProviderFixtureAvailable()) return false;
  Status kernel = cli::KernelIscsiAvailable();
  return Available(kernel.ok() ? "" : kernel.message());
}

// The first timeline event on a lane starting with `lane` with this step
// and kind, or null; the last one when `last`.
const rapidjson::Value* Event(const rapidjson::Value& timeline, const std::string& lane,
                              const std::string& step, bool last = false) {
  const rapidjson::Value* found = nullptr;
  for (const auto& e : timeline["events"].GetArray()) {
    if (Field(e, "lane").rfind(lane, 0) == 0 && Field(e, "step") == step) {
      found = &e;
      if (!last) break;
    }
  }
  return found;
}

BOOST_AUTO_TEST_CASE(ext4_on_two_arrays_is_frozen_cut_once_per_array_and_every_snapshot_mounts) {
  if (!GuestAvailable()) return;
  HardwarePath bed;
  ProviderFixture& f = bed.f();
  const std::vector<std::string>& mounts = bed.mounts();

  // What a user asks first: which disk and NAA a mount point is, and who
  // would snapshot it.
  rapidjson::Document shown = f.Json({"volumes", "show", mounts[0], mounts[1], mounts[2]});
  for (size_t i = 0; i < 3; ++i) {
    const rapidjson::Value& v = shown["volumes"][rapidjson::SizeType(i)];
    BOOST_TEST(Field(v, "kind") == "filesystem");
    BOOST_TEST(Field(v, "filesystem") == "ext4");
    BOOST_TEST(Field(v, "naa") == f.luns()[i].naa);
    BOOST_TEST(Field(v, "device").rfind("/dev/sd", 0) == 0u, Field(v, "device"));
  }
  CommandResult explained = f.Cli({"providers", "explain", mounts[0], mounts[1], mounts[2]});
  BOOST_TEST_REQUIRE(explained.exit_code == 0, explained.output);
  for (const ArrayLun& lun : f.luns())
    BOOST_TEST(explained.output.find(lun.naa) != std::string::npos, explained.output);
  BOOST_TEST(explained.output.find("array \"a\"") != std::string::npos, explained.output);
  BOOST_TEST(explained.output.find("array \"b\"") != std::string::npos, explained.output);
  BOOST_TEST(explained.output.find("=> iscsi takes it") != std::string::npos, explained.output);

  // The set, with both kinds of writers busy.
  bed.StartApps();
  SequenceWriter sequence(mounts);
  while (sequence.last() < 3) std::this_thread::sleep_for(milliseconds(10));
  for (int i = 0; i < 2; ++i) BOOST_TEST(f.Rest(i, "DELETE", "/mock/requests").status == 204);
  rapidjson::Document set = f.Create(mounts);
  const uint64_t after_create = sequence.last();

  for (const auto& p : set["plan"].GetArray()) {
    BOOST_TEST(Field(p, "provider") == "iscsi", Field(p, "volume"));
    BOOST_TEST(Field(p, "hold") == "fsfreeze", Field(p, "volume"));
    BOOST_TEST(!p["crash_consistent"].GetBool(), Field(p, "volume"));
  }
  // Exactly one request per array while the writes were held: its group
  // snapshot. The arrays log arrival times on this guest's CLOCK_MONOTONIC,
  // the clock of the timeline.
  const rapidjson::Value& timeline = set["timeline"];
  const rapidjson::Value* window = Event(timeline, "set", "commit window");
  const rapidjson::Value* released = Event(timeline, "volume:", "released", /*last=*/true);
  BOOST_TEST_REQUIRE((window && released));
  const int64_t from = (*window)["t_ns"].GetInt64(), to = (*released)["t_ns"].GetInt64();
  for (int i = 0; i < 2; ++i) {
    BOOST_TEST_CONTEXT("array " << (i == 0 ? "a" : "b")) {
      HttpResponse log = f.Rest(i, "GET", "/mock/requests");
      BOOST_TEST_REQUIRE(log.status == 200);
      std::vector<std::string> inside;
      for (const auto& r : log.Json()["Members"].GetArray()) {
        const int64_t at = r["ReceivedMonotonicNs"].GetInt64();
        if (at >= from && at <= to) inside.push_back(Field(r, "Operation"));
      }
      BOOST_TEST_REQUIRE(inside.size() == 1u, inside.size() << " requests in the window");
      BOOST_TEST(inside[0] == "ConsistencyGroup.CreateReplicaTarget");
    }
  }

  // Writes go on after the set; then a marker no snapshot may hold.
  const std::map<std::string, std::string> at_freeze = Sums(bed.SumsAtFreeze());
  BOOST_TEST_REQUIRE(at_freeze.size() == size_t(3 * kFilesPerFs), bed.SumsAtFreeze());
  std::vector<uint64_t> writes_then;
  for (const auto& app : bed.apps()) writes_then.push_back(app->writes());
  const auto until = steady_clock::now() + seconds(60);
  auto progressed = [&] {
    for (size_t i = 0; i < 3; ++i)
      if (bed.apps()[i]->writes() < writes_then[i] + kFilesPerFs) return false;
    return sequence.last() > after_create + 2;
  };
  while (!progressed() && steady_clock::now() < until)
    std::this_thread::sleep_for(milliseconds(50));
  BOOST_TEST_REQUIRE(progressed(), "the writers did not go on after the set");
  bed.StopApps();
  sequence.Stop();
  const uint64_t live = SequenceIn(mounts[0]);
  for (const auto& m : mounts) {
    const std::string marker = m + "/after-create";
    std::ofstream(marker) << "written after snapset create returned\n";
    Must({"sync", "-f", marker});
  }
  const std::map<std::string, std::string> now = Sums(
      Must({"sha256sum", mounts[0] + "/data/f0", mounts[1] + "/data/f0", mounts[2] + "/data/f0"}));

  // Every snapshot attached with Open-iSCSI (CHAP), mounted, checked.
  std::map<std::string, std::string> snapshot_of;
  for (const auto& s : set["snapshots"].GetArray())
    snapshot_of[Field(s, "volume")] = Field(s, "snapshot_id");
  std::vector<uint64_t> seen;
  for (size_t i = 0; i < 3; ++i) {
    BOOST_TEST_CONTEXT("snapshot of " << kNames[i]) {
      const std::string id = snapshot_of[mounts[i]];
      BOOST_TEST_REQUIRE(!id.empty());
      const std::string dir = bed.SnapshotMount(kNames[i]);
      rapidjson::Document e =
          f.Json({"expose", id, "--attach", "--chap-file", bed.snap_chap(), "--mount", dir});
      const std::string device = Field(e, "attached_as");
      BOOST_TEST(device.rfind("/dev/disk/by-id/wwn-0x", 0) == 0u, device);
      BOOST_TEST(Field(e, "mounted_on") == dir);
      // Clean: the freeze left nothing for a journal replay.
      CommandResult fsck = RunCommand({"e2fsck", "-fn", device}, seconds(120));
      BOOST_TEST(fsck.exit_code == 0, fsck.output);
      // Equal to the application's state at freeze, not to anything later.
      std::vector<std::string> argv = {"sha256sum"};
      for (int k = 0; k < kFilesPerFs; ++k) argv.push_back(dir + "/data/f" + std::to_string(k));
      const std::map<std::string, std::string> sums = Sums(Must(argv));
      for (int k = 0; k < kFilesPerFs; ++k) {
        const std::string file = "/data/f" + std::to_string(k);
        BOOST_TEST(sums.at(dir + file) == at_freeze.at(mounts[i] + file), dir + file);
      }
      BOOST_TEST(now.at(mounts[i] + "/data/f0") != at_freeze.at(mounts[i] + "/data/f0"),
                 "the application rewrote f0 after the set");
      BOOST_TEST(!fs::exists(dir + "/after-create"));
      seen.push_back(SequenceIn(dir));
    }
  }

  // One instant across both arrays: the snapshots hold a prefix of the
  // sequence a1, a2, b1, a1, ... (a1 >= a2 >= b1 >= a1 - 1).
  BOOST_TEST_REQUIRE(seen.size() == 3u);
  BOOST_TEST_MESSAGE("writes held " << set["hold_ns"].GetInt64() / 1000000 << " ms; the snapshots"
                                    << " hold the sequence at a1 " << seen[0] << ", a2 " << seen[1]
                                    << ", b1 " << seen[2] << " (" << after_create
                                    << " when create returned)");
  BOOST_TEST(seen[0] >= seen[1]);
  BOOST_TEST(seen[1] >= seen[2]);
  BOOST_TEST(seen[2] + 1 >= seen[0], "a1 " << seen[0] << ", a2 " << seen[1] << ", b1 " << seen[2]);
  BOOST_TEST(seen[0] <= after_create + 1);
  BOOST_TEST(seen[0] < live);

  BOOST_TEST(f.Cli({"list", "--verify"}).exit_code == 0);
  for (size_t i = 0; i < 3; ++i) {
    CommandResult u = f.Cli({"unexpose", snapshot_of[mounts[i]]});
    BOOST_TEST(u.exit_code == 0, u.output);
  }
  // Unmounted; the snapshots' sessions are gone; the two to the source
  // LUNs' targets (conn-1 on each array) stay.
  const std::string mounted = ReadFile("/proc/mounts");
  BOOST_TEST(mounted.find(bed.snapshot_root()) == std::string::npos, mounted);
  CommandResult sessions = RunCommand({"iscsiadm", "-m", "session"}, seconds(30));
  std::istringstream lines(sessions.output);
  int count = 0;
  for (std::string line; std::getline(lines, line); ++count)
    BOOST_TEST(line.find(":conn-1 ") != std::string::npos, line);
  BOOST_TEST(count == 2, sessions.output);
  CommandResult deleted = f.Cli({"delete", "--set", Field(set, "set_id")});
  BOOST_TEST(deleted.exit_code == 0, deleted.output);
  f.ExpectNothingLeft();
  CommandResult verify = f.Cli({"list", "--verify"});
  BOOST_TEST(verify.exit_code == 0, verify.output);
}

BOOST_AUTO_TEST_CASE(
    a_commit_an_array_stalls_past_the_window_thaws_by_the_deadline_and_leaves_nothing) {
  if (!GuestAvailable()) return;
  HardwarePath bed;
  ProviderFixture& f = bed.f();
  const std::vector<std::string>& mounts = bed.mounts();
  bed.StartApps();
  SequenceWriter sequence(mounts);
  while (sequence.last() < 3) std::this_thread::sleep_for(milliseconds(10));
  // Array b answers its group snapshot two seconds after the 10 s window.
  f.Fault(1, R"({"Operation":"ConsistencyGroup.CreateReplicaTarget","Mode":"Delay",)"
             R"("DelayMs":12000})");

  const auto start = steady_clock::now();
  std::vector<std::string> create = {"--json", "create"};
  create.insert(create.end(), mounts.begin(), mounts.end());
  CommandResult r = f.Cli(create);
  const uint64_t at_return = sequence.last();
  BOOST_TEST(r.exit_code == kHoldWritesTimeout, r.output);
  rapidjson::Document doc = JsonOfOutput(r.output);
  BOOST_TEST(Field(doc["error"], "message").find("array b") != std::string::npos, r.output);
  // The filesystems were thawed at the deadline, not when array b answered.
  const rapidjson::Value* window = Event(doc["timeline"], "set", "commit window");
  const rapidjson::Value* released = Event(doc["timeline"], "volume:", "released", true);
  BOOST_TEST_REQUIRE((window && released), r.output);
  const double release_s =
      double((*released)["t_ns"].GetInt64() - (*window)["t_ns"].GetInt64()) / 1e9;
  BOOST_TEST(release_s > 9.0, "released " << release_s << " s into the window");
  BOOST_TEST(release_s < 11.5, "released " << release_s << " s into the window");
  for (const auto& m : mounts) BOOST_TEST(!IsFrozen(m), m << " is still frozen");
  for (const auto& abort : doc["aborts"].GetArray())
    BOOST_TEST(Field(abort, "outcome") == "ok", r.output);
  // Writes flow again: the sequence writer, blocked in D state while the
  // filesystems were frozen, goes on.
  const auto until = steady_clock::now() + seconds(30);
  while (sequence.last() <= at_return + 2 && steady_clock::now() < until)
    std::this_thread::sleep_for(milliseconds(20));
  BOOST_TEST(sequence.last() > at_return + 2);

  // The stalled request reaches array b after the abort: it must find no
  // group, so no replica appears late on either array.
  const auto stalled_done = start + seconds(15);
  if (steady_clock::now() < stalled_done) std::this_thread::sleep_until(stalled_done);
  f.ExpectNothingLeft();
  CommandResult verify = f.Cli({"list", "--verify"});
  BOOST_TEST(verify.exit_code == 0, verify.output);
}

}  // namespace
}  // namespace snapset::test
