// The software-cow provider end to end, on real parts only, run the way a
// user runs it: snapset-cowd serving a cow volume through FUSE, a loop
// device over its origin carrying ext4, files being written, and the
// `snapset` CLI creating, exposing and mounting snapshots through the
// coordinator (FIFREEZE on the ext4, then the daemon's write gate, then the
// provider's O(1) commit).
#define BOOST_TEST_MODULE cow_e2e_test
#include <rapidjson/document.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

#include "tests/software-cow/daemon/cowd_fixture.hpp"
#include "tests/software-cow/e2e/cow_stack.hpp"
#include "tests/support/command.hpp"
#include "tests/support/freeze_probe.hpp"
#include "tests/support/prerequisites.hpp"
#include "tests/support/spawn.hpp"
#include "tests/support/temp_dir.hpp"

namespace snapset::test {
namespace {

namespace fs = std::filesystem;

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void WriteFileSynced(const fs::path& p, const std::string& data) {
  std::ofstream(p, std::ios::binary) << data;
  RunCommand({"sync", p.string()});
}

std::string RandomBytes(std::mt19937_64& rng, size_t n) {
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

BOOST_AUTO_TEST_CASE(snapshot_of_ext4_on_cow_volume_holds_the_files_of_that_instant) {
  if (!CowStackAvailable()) return;
  CowStack stack;
  std::mt19937_64 rng(42);

  // Files of the instant, flushed.
  std::map<std::string, std::string> before;
  fs::create_directories(stack.mnt() / "data");
  for (int i = 0; i < 40; ++i) {
    const std::string name = "data/file-" + std::to_string(i);
    before[name] = RandomBytes(rng, 4096 + (rng() % 200000));
    WriteFileSynced(stack.mnt() / name, before[name]);
  }

  // A writer keeps creating files while the set is taken. Each file is
  // recorded once its close returned.
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::map<std::string, std::string> written;  // finished files
  std::vector<std::pair<std::string, std::chrono::steady_clock::time_point>> started;
  std::thread writer([&] {
    std::mt19937_64 wrng(7);
    for (int i = 0; !stop; ++i) {
      const std::string name = "data/live-" + std::to_string(i);
      const std::string data = RandomBytes(wrng, 65536);
      {
        std::lock_guard<std::mutex> lock(mu);
        started.emplace_back(name, std::chrono::steady_clock::now());
      }
      std::ofstream(stack.mnt() / name, std::ios::binary) << data;
      std::lock_guard<std::mutex> lock(mu);
      written[name] = data;
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  std::map<std::string, std::string> finished_before_create;
  {
    std::lock_guard<std::mutex> lock(mu);
    finished_before_create = written;
  }
  auto doc = stack.Create({stack.volume()});
  const auto create_returned = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  stop = true;
  writer.join();

  // The plan: the cow provider, the ext4 frozen above the daemon's gate.
  const auto& plan = doc["plan"][0];
  BOOST_TEST(std::string(plan["provider"].GetString()) == "software-cow");
  BOOST_TEST(std::string(plan["hold"].GetString()) == "fsfreeze+write-gate");
  BOOST_TEST(plan["crash_consistent"].GetBool() == false);
  const auto& timeline = doc["timeline"];
  const std::string fs_lane = "volume:" + stack.mnt().string();
  const int64_t freeze = EventTime(timeline, fs_lane, "hold", "begin");
  const int64_t gate = EventTime(timeline, "volume:" + stack.volume(), "hold", "begin");
  const int64_t gate_released = EventTime(timeline, "volume:" + stack.volume(), "hold", "end");
  const int64_t thawed = EventTime(timeline, fs_lane, "hold", "end");
  BOOST_TEST_REQUIRE(freeze > 0);
  BOOST_TEST_REQUIRE(gate > 0);
  BOOST_TEST(freeze < gate, "the filesystem is frozen before the gate closes below it");
  BOOST_TEST(gate_released <= thawed, "the gate opens before the filesystem thaws");
  const std::string snapshot_id = doc["snapshots"][0]["snapshot_id"].GetString();

  // After the snapshot: change and delete the old files, add a marker.
  for (auto& [name, data] : before)
    if (name.back() % 2)
      WriteFileSynced(stack.mnt() / name, "changed after the snapshot");
    else
      fs::remove(stack.mnt() / name);
  WriteFileSynced(stack.mnt() / "after-the-snapshot", "must not be in the snapshot");

  // The snapshot file passes e2fsck on a read-only loop device.
  const std::string snap_file =
      stack.daemon().mount() + "/" + stack.name() + "/snapshots/" + snapshot_id;
  auto ro = RunCommand({"losetup", "--read-only", "--find", "--show", snap_file});
  BOOST_TEST_REQUIRE(ro.exit_code == 0, ro.output);
  const std::string ro_loop = ro.output.substr(0, ro.output.find('\n'));
  auto fsck = RunCommand({"e2fsck", "-fn", ro_loop});
  RunCommand({"losetup", "-d", ro_loop});
  BOOST_TEST(fsck.exit_code == 0, "e2fsck -fn on the snapshot: " << fsck.output);

  // Mounted read-only through the CLI, it has exactly the files of then.
  const fs::path snap = stack.ExposeMounted(snapshot_id);
  for (const auto& [name, data] : before)
    BOOST_TEST((ReadFile(snap / name) == data), name << " is as it was at the snapshot");
  BOOST_TEST(!fs::exists(snap / "after-the-snapshot"));
  for (const auto& [name, data] : finished_before_create)
    BOOST_TEST((ReadFile(snap / name) == data), name << " was written before the snapshot");
  std::lock_guard<std::mutex> lock(mu);
  size_t absent_after = 0;
  for (const auto& [name, when] : started)
    if (when > create_returned) {
      BOOST_TEST(!fs::exists(snap / name), name << " was begun after the snapshot");
      ++absent_after;
    }
  BOOST_TEST(absent_after > 0, "the writer kept writing after the snapshot");
  // And a snapshot cannot be written.
  std::ofstream probe(snap / "data" / "file-0", std::ios::app);
  BOOST_TEST(!(probe << "x" << std::flush));
}

BOOST_AUTO_TEST_CASE(naming_the_mount_point_takes_the_same_stack) {
  if (!CowStackAvailable()) return;
  CowStack stack;
  WriteFileSynced(stack.mnt() / "a", "first");
  auto doc = stack.Create({stack.mnt().string()});
  const auto& plan = doc["plan"][0];
  BOOST_TEST(std::string(plan["provider"].GetString()) == "software-cow");
  BOOST_TEST(std::string(plan["hold"].GetString()) == "fsfreeze+write-gate");
  const std::string id = doc["snapshots"][0]["snapshot_id"].GetString();
  WriteFileSynced(stack.mnt() / "a", "second");
  BOOST_TEST(ReadFile(stack.ExposeMounted(id) / "a") == "first");

  // snapset volumes show tells the stack from either end.
  auto shown = stack.Cli({"volumes", "show", stack.volume(), stack.mnt().string()});
  BOOST_TEST(shown.exit_code == 0);
  BOOST_TEST(shown.output.find("is a filesystem on " + stack.volume()) != std::string::npos,
             shown.output);
  BOOST_TEST(shown.output.find("carries the filesystem mounted on " + stack.mnt().string()) !=
                 std::string::npos,
             shown.output);
}

BOOST_AUTO_TEST_CASE(naming_both_ends_of_a_stack_is_refused_and_nothing_is_made) {
  if (!CowStackAvailable()) return;
  CowStack stack;
  auto r = stack.Cli({"create", stack.volume(), stack.mnt().string()});
  BOOST_TEST(r.exit_code == 3, r.output);  // invalid argument
  BOOST_TEST(r.output.find("are one stack") != std::string::npos, r.output);
  auto listed = stack.Cli({"--json", "cow", "stats", stack.name()});
  BOOST_TEST(listed.output.find("\"snapshots\": 0") != std::string::npos, listed.output);
}

BOOST_AUTO_TEST_CASE(many_snapshots_each_keep_their_instant_and_delete_reclaims_space) {
  if (!CowStackAvailable()) return;
  CowStack stack;
  std::vector<std::pair<std::string, std::string>> taken;  // id, content of "f" then
  for (int i = 0; i < 6; ++i) {
    const std::string content = "generation " + std::to_string(i) + std::string(300000, 'a' + i);
    WriteFileSynced(stack.mnt() / "f", content);
    auto doc = stack.Create({stack.volume()});
    taken.emplace_back(doc["snapshots"][0]["snapshot_id"].GetString(), content);
  }
  for (const auto& [id, content] : taken)
    BOOST_TEST((ReadFile(stack.ExposeMounted(id) / "f") == content), "snapshot " << id);
  auto stats = [&] {
    auto r = stack.Cli({"--json", "cow", "stats", stack.name()});
    rapidjson::Document d;
    d.Parse(r.output.c_str());
    BOOST_TEST_REQUIRE((!d.HasParseError() && d.HasMember("volume")), r.output);
    return std::make_pair(d["volume"]["snapshots"].GetUint64(),
                          d["volume"]["diff_bytes_used"].GetUint64());
  };
  const auto [count, used] = stats();
  BOOST_TEST(count == 6u);
  BOOST_TEST(used > 0u);
  for (const auto& [id, content] : taken) {
    RunCommand({"umount", (stack.dir().path() / ("snap-" + id)).string()});
    auto r = stack.Cli({"delete", id});
    BOOST_TEST(r.exit_code == 0, r.output);
  }
  const auto [count_after, used_after] = stats();
  BOOST_TEST(count_after == 0u);
  BOOST_TEST(used_after == 0u, "deleting every snapshot frees the whole diff area");
}

// The diff area's overflow deletes snapshots on its own, to keep origin
// writes going: the catalog must follow, without waiting for a
// `list --verify`. `list` and `show` then show the set's snapshot as lost,
// with the daemon's reason, and `list --verify` still reports it.
BOOST_AUTO_TEST_CASE(a_snapshot_the_diff_area_overflow_deleted_is_listed_as_lost_with_the_reason) {
  if (!CowStackAvailable()) return;
  CowStack stack("96M", "8M");
  WriteFileSynced(stack.mnt() / "before", "kept by the first snapshot");
  auto first = stack.Create({stack.volume()});
  const std::string lost = first["snapshots"][0]["snapshot_id"].GetString();
  // 24 MiB of new data into an 8 MiB diff area: the first snapshot goes.
  std::mt19937_64 rng(7);
  WriteFileSynced(stack.mnt() / "big", RandomBytes(rng, 24 << 20));
  auto second = stack.Create({stack.volume()});
  const std::string kept = second["snapshots"][0]["snapshot_id"].GetString();

  auto r = stack.Cli({"--json", "list"});
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
  rapidjson::Document d;
  d.Parse(r.output.c_str());
  BOOST_TEST_REQUIRE((!d.HasParseError() && d.HasMember("snapshots")), r.output);
  std::map<std::string, const rapidjson::Value*> by_id;
  for (const auto& s : d["snapshots"].GetArray()) by_id[s["snapshot_id"].GetString()] = &s;
  BOOST_TEST_REQUIRE(by_id.count(lost) == 1u, r.output);
  BOOST_TEST_REQUIRE(by_id.count(kept) == 1u, r.output);
  const auto& gone = *by_id[lost];
  BOOST_TEST(gone["lost"].GetBool(), r.output);
  const std::string reason = gone["lost_reason"].IsString() ? gone["lost_reason"].GetString() : "";
  BOOST_TEST(reason.find("deleted by snapset-cowd") != std::string::npos, reason);
  BOOST_TEST(reason.find("diff area full") != std::string::npos, reason);
  BOOST_TEST(gone["lost_ns"].GetInt64() > 0);
  BOOST_TEST(!(*by_id[kept])["lost"].GetBool(), r.output);
  BOOST_TEST(d["unanswered"].GetArray().Size() == 0u, r.output);

  auto text = stack.Cli({"list"});
  BOOST_TEST(text.exit_code == 0, text.output);
  BOOST_TEST(text.output.find("LOST") != std::string::npos, text.output);
  BOOST_TEST(text.output.find("diff area full") != std::string::npos, text.output);
  auto show = stack.Cli({"show", lost});
  BOOST_TEST(show.exit_code == 0, show.output);
  BOOST_TEST(show.output.find("LOST") != std::string::npos, show.output);
  auto verify = stack.Cli({"list", "--verify"});
  BOOST_TEST(verify.exit_code != 0, verify.output);
  BOOST_TEST(verify.output.find("recorded lost") != std::string::npos, verify.output);
  // Deleting the lost snapshot takes it out of the catalog; the kept one is whole.
  auto del = stack.Cli({"delete", lost});
  BOOST_TEST(del.exit_code == 0, del.output);
  BOOST_TEST(ReadFile(stack.ExposeMounted(kept) / "before") == "kept by the first snapshot");
}

// `snapset diff` between two snapshots of ext4 on a cow volume, checked
// against the snapshots' own bytes: every byte that differs lies in a
// reported range, and the ranges are the few chunks the writes touched, not
// the volume. Without --base, the whole volume may hold data.
BOOST_AUTO_TEST_CASE(diff_reports_every_changed_byte_of_two_snapshots_and_little_more) {
  if (!CowStackAvailable()) return;
  CowStack stack;
  std::mt19937_64 rng(11);
  WriteFileSynced(stack.mnt() / "a", RandomBytes(rng, 3 << 20));
  auto base = stack.Create({stack.volume()});
  const std::string base_id = base["snapshots"][0]["snapshot_id"].GetString();
  WriteFileSynced(stack.mnt() / "b", RandomBytes(rng, 1 << 20));
  {
    std::fstream f(stack.mnt() / "a", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(1 << 20);
    f << RandomBytes(rng, 4096);
  }
  RunCommand({"sync", (stack.mnt() / "a").string()});
  auto next = stack.Create({stack.volume()});
  const std::string next_id = next["snapshots"][0]["snapshot_id"].GetString();

  auto r = stack.Cli({"--json", "diff", next_id, "--base", base_id});
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
  rapidjson::Document d;
  d.Parse(r.output.c_str());
  BOOST_TEST_REQUIRE((!d.HasParseError() && d.HasMember("ranges")), r.output);
  const uint64_t size = d["volume_size"].GetUint64();
  BOOST_TEST(size == (96u << 20));
  BOOST_TEST(d["volume"].GetString() == stack.volume());
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  uint64_t reported = 0, last_end = 0;
  for (const auto& x : d["ranges"].GetArray()) {
    ranges.emplace_back(x["offset"].GetUint64(), x["length"].GetUint64());
    BOOST_TEST(ranges.back().first >= last_end);  // sorted, apart
    last_end = ranges.back().first + ranges.back().second;
    reported += ranges.back().second;
  }
  BOOST_TEST(last_end <= size);
  BOOST_TEST(d["changed_bytes"].GetUint64() == reported);
  // The snapshots' bytes, through their read-only files in the daemon's tree.
  const fs::path snapshots = fs::path(stack.origin()).parent_path() / "snapshots";
  const std::string old_img = ReadFile(snapshots / base_id);
  const std::string new_img = ReadFile(snapshots / next_id);
  BOOST_TEST_REQUIRE(old_img.size() == size);
  BOOST_TEST_REQUIRE(new_img.size() == size);
  uint64_t differing = 0, outside = 0;
  size_t k = 0;
  for (uint64_t i = 0; i < size; ++i) {
    if (old_img[i] == new_img[i]) continue;
    ++differing;
    while (k < ranges.size() && ranges[k].first + ranges[k].second <= i) ++k;
    if (k == ranges.size() || i < ranges[k].first) ++outside;
  }
  BOOST_TEST(differing >= (1u << 20));  // at least file b's data
  BOOST_TEST(outside == 0u, outside << " differing bytes lie in no reported range");
  // ext4 writes its journal and metadata too; still a few MiB, not the volume.
  BOOST_TEST(reported < (16u << 20), reported << " bytes reported");

  auto text = stack.Cli({"diff", next_id, "--base", base_id});
  BOOST_TEST(text.exit_code == 0, text.output);
  BOOST_TEST(text.output.find("may differ") != std::string::npos, text.output);
  auto all = stack.Cli({"--json", "diff", next_id});
  BOOST_TEST_REQUIRE(all.exit_code == 0, all.output);
  rapidjson::Document whole;
  whole.Parse(all.output.c_str());
  BOOST_TEST_REQUIRE(!whole.HasParseError(), all.output);
  BOOST_TEST(whole["changed_bytes"].GetUint64() == size);
  // Wrong order, unknown ids: clear errors, nonzero exits.
  auto backwards = stack.Cli({"diff", base_id, "--base", next_id});
  BOOST_TEST(backwards.exit_code == 3, backwards.output);
  BOOST_TEST(backwards.output.find("not older") != std::string::npos, backwards.output);
  auto unknown = stack.Cli({"diff", "00000000-0000-4000-8000-000000000000"});
  BOOST_TEST(unknown.exit_code == 4, unknown.output);
}

// The coordinator killed (kill -9) at any moment of `snapset create`: the
// filesystem is thawed (the thaw guard), the daemon's gate is open (the
// hold died with its connection), and the next snapset run's recovery
// leaves the catalog and the daemon agreeing: no snapshot leaked.
BOOST_AUTO_TEST_CASE(killing_snapset_create_at_any_moment_leaves_nothing_frozen_held_or_leaked) {
  if (!CowStackAvailable()) return;
  CowStack stack;
  WriteFileSynced(stack.mnt() / "f", "data");
  std::mt19937 rng(3);
  for (int trial = 0; trial < 10; ++trial) {
    const pid_t pid = SpawnQuietly(stack.CliArgv({"create", stack.volume()}));
    BOOST_REQUIRE(pid > 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 150));
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);

    // Thawed: at once on the coordinator's death, by the deadline at worst.
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(12);
    bool frozen = IsFrozen(stack.mnt().string());
    while (frozen && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      frozen = IsFrozen(stack.mnt().string());
    }
    if (frozen) RunCommand({"fsfreeze", "--unfreeze", stack.mnt().string()});
    BOOST_TEST_REQUIRE(!frozen, "trial " << trial << ": the filesystem stayed frozen");
    // The gate is open: a write through ext4, the loop device and the
    // daemon, flushed, completes.
    WriteFileSynced(stack.mnt() / "f", "trial " + std::to_string(trial));
    // Recovery (at the next start) and the daemon agree.
    auto verify = stack.Cli({"list", "--verify"});
    BOOST_TEST(verify.exit_code == 0, "trial " << trial << ": " << verify.output);
  }
  // What is left is whole: every snapshot the catalog lists is on the
  // daemon and mounts with a file of some trial's instant.
  auto listed = stack.Cli({"--json", "list"});
  rapidjson::Document doc;
  doc.Parse(listed.output.c_str());
  BOOST_TEST_REQUIRE(!doc.HasParseError(), listed.output);
  BOOST_TEST_MESSAGE(doc["snapshots"].Size() << " of 10 killed sets had completed");
  for (const auto& snap : doc["snapshots"].GetArray()) {
    const std::string id = snap["snapshot_id"].GetString();
    const std::string f = ReadFile(stack.ExposeMounted(id) / "f");
    BOOST_TEST((f == "data" || f.rfind("trial ", 0) == 0), id << " holds \"" << f << "\"");
  }
}

}  // namespace
}  // namespace snapset::test
