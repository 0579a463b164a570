// SPDX-License-Identifier: Apache-2.0
// Reverting to a set, as an administrator relies on it: the volume holds the
// set's instant again, a mounted filesystem is refused with nothing
// changed, the writers get pre-restore and post-restore (and a refusal at
// pre-restore changes nothing). On a real cow volume with ext4 on it.
#define BOOST_TEST_MODULE set_revert
#include <rapidjson/document.h>
#include <sys/stat.h>

#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/software-cow/e2e/cow_stack.hpp"

namespace snapset::test {
namespace {

namespace fs = std::filesystem;

std::string Read(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void WriteSynced(const fs::path& p, const std::string& text) {
  std::ofstream(p) << text;
  RunCommand({"sync", p.string()});
}

// An express writer whose pre-restore and post-restore commands record
// themselves; pre-restore fails when `refuse` exists.
void AddRecordingWriter(const CowStack& stack, const std::string& refuse) {
  const std::string bin = stack.dir().str() + "/bin/record";
  stack.dir().Write("bin/record",
                    "#!/bin/sh\n[ \"$1\" = pre-restore ] && [ -e " + refuse +
                        " ] && { echo refused; exit 4; }\necho \"$1 $SNAPSET_SET_ID\" >> " +
                        stack.dir().str() + "/events\n");
  ::chmod(bin.c_str(), 0755);
  ::chmod((stack.dir().str() + "/bin").c_str(), 0755);
  ::chmod((stack.dir().str() + "/config").c_str(), 0755);
  stack.dir().Write("config/writers.d/app.json",
                    R"({"metadata": {"name": "app"}, "commands": {"pre-restore": [")" + bin +
                        R"(", "pre-restore"], "post-restore": [")" + bin +
                        R"(", "post-restore"]}})");
  ::chmod((stack.dir().str() + "/config/writers.d").c_str(), 0755);
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_volume_reverted_to_a_set_holds_that_instant_and_mounted_is_refused) {
  if (!CowStackAvailable()) return;
  CowStack stack;
  const std::string refuse = stack.dir().str() + "/refuse";
  AddRecordingWriter(stack, refuse);
  WriteSynced(stack.mnt() / "data", "as at the set");
  rapidjson::Document made = stack.Create({stack.mnt().string()});
  const std::string set = made["set_id"].GetString();
  WriteSynced(stack.mnt() / "data", "changed after the set");
  WriteSynced(stack.mnt() / "new", "made after the set");

  // Mounted: refused, nothing changed, writers not asked.
  auto mounted = stack.Cli({"revert", "--set", set});
  BOOST_TEST(mounted.exit_code == 8, mounted.output);
  BOOST_TEST(mounted.output.find("mounted filesystem") != std::string::npos, mounted.output);
  BOOST_TEST(mounted.output.find("unmount it") != std::string::npos, mounted.output);
  BOOST_TEST(Read(stack.mnt() / "data") == "changed after the set");
  BOOST_TEST(!fs::exists(stack.dir().path() / "events"));

  // Mounted somewhere else: the same volume (its device as recorded at the
  // cut), still refused, naming where.
  const std::string elsewhere = stack.dir().str() + "/elsewhere";
  fs::create_directories(elsewhere);
  BOOST_TEST_REQUIRE(RunCommand({"umount", stack.mnt().string()}).exit_code == 0);
  BOOST_TEST_REQUIRE(RunCommand({"mount", stack.loop(), elsewhere}).exit_code == 0);
  auto moved = stack.Cli({"revert", "--set", set});
  BOOST_TEST(RunCommand({"umount", elsewhere}).exit_code == 0);
  BOOST_TEST_REQUIRE(RunCommand({"mount", stack.loop(), stack.mnt().string()}).exit_code == 0);
  BOOST_TEST(moved.exit_code == 8, moved.output);
  BOOST_TEST(moved.output.find("mounted filesystem " + elsewhere) != std::string::npos,
             moved.output);
  BOOST_TEST(Read(stack.mnt() / "data") == "changed after the set");

  // A writer refusing pre-restore: nothing reverted, and every writer hears
  // so at post-restore (one that accepted may have stopped its application).
  stack.Detach();
  std::ofstream(refuse) << "";
  auto refused = stack.Cli({"revert", "--set", set});
  BOOST_TEST(refused.exit_code == 11, refused.output);
  BOOST_TEST(refused.output.find("nothing was reverted") != std::string::npos, refused.output);
  stack.Attach();
  BOOST_TEST(Read(stack.mnt() / "data") == "changed after the set");
  BOOST_TEST(Read(stack.dir().path() / "events") == "post-restore " + set + "\n");
  fs::remove(stack.dir().path() / "events");

  // Unmounted and accepted: the set's instant, and both writer events.
  stack.Detach();
  fs::remove(refuse);
  auto done = stack.Cli({"--json", "revert", "--set", set});
  BOOST_TEST_REQUIRE(done.exit_code == 0, done.output);
  rapidjson::Document doc;
  doc.Parse(done.output.c_str());
  BOOST_TEST(doc["reverted"].Size() == 1u);
  stack.Attach();
  BOOST_TEST(Read(stack.mnt() / "data") == "as at the set");
  BOOST_TEST(!fs::exists(stack.mnt() / "new"));
  BOOST_TEST(Read(stack.dir().path() / "events") ==
             "pre-restore " + set + "\npost-restore " + set + "\n");
}

// Where the filesystem of `stack` is mounted now, as /proc/self/mounts says:
// "SOURCE TYPE", or "" when it is not.
std::string MountedAs(const CowStack& stack) {
  std::ifstream mounts("/proc/self/mounts");
  std::string source, point, type, rest, found;
  while (mounts >> source >> point >> type && std::getline(mounts, rest))
    if (point == stack.mnt().string()) found = source + " " + type;
  return found;
}

BOOST_AUTO_TEST_CASE(remount_unmounts_reverts_and_mounts_again_before_post_restore) {
  if (!CowStackAvailable()) return;
  CowStack stack;
  // The writer reads the volume at post-restore: it must be mounted again.
  const std::string bin = stack.dir().str() + "/bin/record";
  const std::string events = stack.dir().str() + "/events";
  stack.dir().Write("bin/record", "#!/bin/sh\necho \"$1 $(cat " + (stack.mnt() / "data").string() +
                                      " 2>&1)\" >> " + events + "\n");
  ::chmod(bin.c_str(), 0755);
  stack.dir().Write("config/writers.d/app.json",
                    R"({"metadata": {"name": "app"}, "commands": {"pre-restore": [")" + bin +
                        R"(", "pre-restore"], "post-restore": [")" + bin +
                        R"(", "post-restore"]}})");
  WriteSynced(stack.mnt() / "data", "as at the set");
  rapidjson::Document made = stack.Create({stack.mnt().string()});
  const std::string set = made["set_id"].GetString();
  WriteSynced(stack.mnt() / "data", "changed after the set");
  const std::string before = MountedAs(stack);
  BOOST_TEST_REQUIRE(!before.empty());

  // Busy: a process has a file open on it. Refused, nothing reverted, still
  // mounted; the writers get post-restore after their pre-restore.
  {
    std::ifstream busy(stack.mnt() / "data");
    auto refused = stack.Cli({"revert", "--set", set, "--remount"});
    BOOST_TEST(refused.exit_code == 8, refused.output);
    BOOST_TEST(refused.output.find("nothing was reverted") != std::string::npos, refused.output);
    BOOST_TEST(refused.output.find("fuser -vm " + stack.mnt().string()) != std::string::npos,
               refused.output);
  }
  BOOST_TEST(MountedAs(stack) == before);
  BOOST_TEST(Read(stack.mnt() / "data") == "changed after the set");
  BOOST_TEST(Read(events) ==
             "pre-restore changed after the set\npost-restore changed after the set\n");
  fs::remove(events);

  // Mounted twice: which one goes back where is the administrator's call.
  const std::string twice = stack.dir().str() + "/twice";
  fs::create_directories(twice);
  BOOST_TEST_REQUIRE(RunCommand({"mount", "--bind", stack.mnt().string(), twice}).exit_code == 0);
  auto bound = stack.Cli({"revert", "--set", set, "--remount"});
  RunCommand({"umount", twice});
  BOOST_TEST(bound.exit_code == 8, bound.output);
  BOOST_TEST(bound.output.find("is mounted on both") != std::string::npos, bound.output);
  BOOST_TEST(!fs::exists(events));  // refused before the writers were asked

  // Free: unmounted, the loop device detached, reverted, attached and
  // mounted again, then post-restore.
  auto done = stack.Cli({"--json", "revert", "--set", set, "--remount"});
  stack.FollowMount();
  BOOST_TEST_REQUIRE(done.exit_code == 0, done.output);
  BOOST_TEST(MountedAs(stack).find(" ext4") != std::string::npos, MountedAs(stack));
  BOOST_TEST(Read(stack.mnt() / "data") == "as at the set");
  BOOST_TEST(Read(events) == "pre-restore changed after the set\npost-restore as at the set\n");
}

BOOST_AUTO_TEST_CASE(reverting_an_unknown_set_or_snapshot_is_not_found) {
  if (!CowStackAvailable()) return;
  CowStack stack;
  auto set = stack.Cli({"revert", "--set", "7d1f7c1e-7a43-4d0b-9a64-3c1f2b5e9d01"});
  BOOST_TEST(set.exit_code == 4, set.output);
  auto snap = stack.Cli({"revert", "--snapshot", "7d1f7c1e-7a43-4d0b-9a64-3c1f2b5e9d01"});
  BOOST_TEST(snap.exit_code == 4, snap.output);
  auto usage = stack.Cli({"revert"});
  BOOST_TEST(usage.exit_code == 2, usage.output);
}

}  // namespace snapset::test
