// SPDX-License-Identifier: Apache-2.0
// The PostgreSQL writer on array LUNs, on a real kernel, as a database
// administrator runs it: a cluster whose data directory is ext4 on a LUN of
// array a and whose tablespace (holding the table a client inserts into) is
// ext4 on a LUN of array b, both attached with Open-iSCSI. Under pgbench,
// `snapset create --writer pg` takes both LUNs from the writer's metadata,
// holds the writes with pg_backup_start in one session and fsfreeze, and
// both arrays cut their groups. Then, as the issue asks:
// - restore elsewhere: a second PostgreSQL on copies of the two exposed
//   snapshots, with the set's backup_label and its tablespace_map pointed
//   at the copy, recovers, passes pg_amcheck and holds every row
//   acknowledged before the freeze;
// - revert: refused while the filesystems are mounted, also where one is
//   mounted somewhere else; after the cluster is stopped and both
//   unmounted, each array reverts its LUN in place, and the cluster started
//   with recovery holds the set's rows and not a later one; then again in
//   one command, `snapset revert --set ID --remount` with the writer run
//   with --restart: it stops the cluster, snapset unmounts both LUNs, the
//   arrays revert, snapset mounts them again, the writer starts the cluster
//   with recovery from the set's label.
// Runs in the test bed's guest (tests/vm/guest_suite.sh).
#define BOOST_TEST_MODULE pg_array_guest_test
#include <sys/stat.h>

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/iscsi/provider_fixture.hpp"
#include "tests/support/must.hpp"
#include "tests/support/pg_set.hpp"
#include "tests/support/postgres_server.hpp"
#include "tests/support/prerequisites.hpp"
#include "tests/support/timeline.hpp"
#include "tests/support/writer_process.hpp"
#include "tools/iscsi_attach.hpp"

namespace snapset::test {
namespace {

namespace fs = std::filesystem;
using std::chrono::seconds;

constexpr char kHostChapUser[] = "snapset-host";
constexpr char kHostChapSecret[] = "host-secret-15";
constexpr char kSnapChapUser[] = "snapset-snaps";
constexpr char kSnapChapSecret[] = "snap-secret-15";
constexpr const char* kNames[] = {"data", "space"};  // LUN 0 on array a, LUN 1 on array b

ProviderFixtureOptions Options(const std::string& snap_chap_file) {
  ProviderFixtureOptions o;
  o.luns_a = 1;
  o.luns_b = 1;
  o.lun_bytes = 256 << 20;
  o.host_chap_user = kHostChapUser;
  o.host_chap_password = kHostChapSecret;
  o.config_a = o.config_b = R"("chap_file": ")" + snap_chap_file + "\"";
  return o;
}

bool Prerequisites() {
  if (!ProviderFixtureAvailable()) return false;
  Status kernel = cli::KernelIscsiAvailable();
  return Available(kernel.ok() ? "" : kernel.message()) &&
         Available(PostgresServer::MissingPrerequisite());
}

// Two LUNs attached with Open-iSCSI, ext4 on each, mounted; the snapset
// run directory a writer run as postgres may join. The destructor unmounts
// and logs out of every session, whatever the test did.
class ArrayCluster {
 public:
  ArrayCluster()
      : snap_chap_(WriteChapFile(work_, "snap.chap", kSnapChapUser, kSnapChapSecret)),
        f_(Options(snap_chap_)) {
    ::chmod(work_.str().c_str(), 0755);  // postgres reaches its sockets and archive
    BOOST_TEST_REQUIRE(f_.luns().size() == 2u);
    for (size_t i = 0; i < 2; ++i) {
      const ArrayLun& lun = f_.luns()[i];
      auto device = cli::AttachIscsi(lun.url, cli::ChapCredentials{kHostChapUser, kHostChapSecret},
                                     lun.naa, seconds(90));
      BOOST_TEST_REQUIRE(device.ok(),
                         "attaching " << lun.url << ": " << device.status().ToString());
      devices_.push_back(*device);
      mounts_.push_back(work_.str() + "/mnt/" + kNames[i]);
      fs::create_directories(mounts_.back());
      Must({"mkfs.ext4", "-q", "-F", *device});
      Mount(i);
    }
    run_ = work_.str() + "/run";
    fs::create_directories(run_ + "/writers");
    ::chmod(run_.c_str(), 0755);
    ::chmod((run_ + "/writers").c_str(), 01777);
    f_.dir().Write("config/writers.json", R"({"allowed_users": ["postgres"]})");
  }
  ~ArrayCluster() {
    for (const auto& m : snapshot_mounts_) RunCommand({"umount", m}, seconds(30));
    for (const auto& m : mounts_) RunCommand({"umount", m}, seconds(30));
    for (const ArrayLun& lun : f_.luns()) (void)cli::DetachIscsi(lun.url, seconds(30));
    RunCommand({"iscsiadm", "-m", "node", "--logoutall=all"}, seconds(30));
    RunCommand({"iscsiadm", "-m", "node", "-o", "delete"}, seconds(30));
  }

  ProviderFixture& f() { return f_; }
  const TempDir& work() const { return work_; }
  const std::string& mount(size_t i) const { return mounts_[i]; }
  const std::string& snap_chap() const { return snap_chap_; }
  const std::string& device(size_t i) const { return devices_[i]; }
  void Mount(size_t i) { Must({"mount", devices_[i], mounts_[i]}); }
  void Unmount(size_t i) { Must({"umount", mounts_[i]}); }
  // snapset with the run directory the writer joined.
  CommandResult Cli(std::vector<std::string> args) const {
    args.insert(args.begin(), {"--run-dir", run_});
    return f_.Cli(args);
  }
  std::string writer_socket() const { return run_ + "/writers/pg.sock"; }
  const std::string& run_dir() const { return run_; }
  std::string SnapshotMount(const std::string& name) {
    snapshot_mounts_.push_back(work_.str() + "/snap/" + name);
    fs::create_directories(snapshot_mounts_.back());
    return snapshot_mounts_.back();
  }

 private:
  TempDir work_;
  std::string snap_chap_;
  ProviderFixture f_;
  std::vector<std::string> devices_, mounts_, snapshot_mounts_;
  std::string run_;
};

BOOST_AUTO_TEST_CASE(a_cluster_on_two_arrays_recovers_from_its_set_elsewhere_and_reverts_to_it) {
  if (!Prerequisites()) return;
  ArrayCluster bed;
  ProviderFixture& f = bed.f();
  const std::string data = bed.mount(0) + "/pgdata", space = bed.mount(1) + "/ts";
  const std::string archive = bed.work().str() + "/wal-archive";
  fs::create_directories(archive);
  fs::create_directories(space);
  auto pg = std::make_unique<PostgresServer>(
      data, bed.work().str() + "/pgsock", /*init=*/true,
      ArchivingTo(archive, {"min_wal_size=32MB", "max_wal_size=64MB"}));
  pg->Own(archive);
  pg->Own(space);
  pg->Sql("CREATE TABLESPACE space LOCATION '" + space + "'");
  pg->Sql("CREATE TABLE acks (seq bigint PRIMARY KEY) TABLESPACE space");
  auto init = pg->Tool({"pgbench", "-i", "-s", "1", "-q", pg->conninfo()});
  BOOST_TEST_REQUIRE(init.exit_code == 0, init.output);
  // --restart: at the second revert the writer stops and starts the
  // cluster itself (pg_ctl refuses root, hence postgres).
  WriterProcess writer(
      {"/usr/bin/setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--",
       SNAPSET_PG_WRITER, "--dbname", pg->conninfo(), "--name", "pg", "--run-dir", bed.run_dir(),
       "--restart", "--restore-command", "cp " + archive + "/%f %p"},
      bed.writer_socket());

  // The set, under load, planned from the writer's metadata alone.
  int64_t acked_before_freeze = 0;
  rapidjson::Document made;
  {
    Pgbench bench(*pg);
    Acker acker;
    acker.conninfo = pg->conninfo();
    acker.Start();
    std::this_thread::sleep_for(seconds(2));
    CommandResult created = bed.Cli({"--json", "create", "--writer", "pg"});
    BOOST_TEST_REQUIRE(created.exit_code == 0, created.output);
    made = JsonOfOutput(created.output);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    acker.Stop();
    BOOST_TEST_REQUIRE(acker.error.empty(), acker.error);
    const int64_t freeze_begin = EventTime(made["timeline"], "writer:pg", "freeze", "begin");
    BOOST_TEST_REQUIRE(freeze_begin > 0);
    acked_before_freeze = acker.AckedBefore(freeze_begin);
    BOOST_TEST_MESSAGE("acknowledged " << acker.acked.size() << ", before the freeze "
                                       << acked_before_freeze << "; writes held "
                                       << made["hold_ns"].GetInt64() / 1000000 << " ms");
    BOOST_TEST_REQUIRE(acked_before_freeze > 0);
  }
  const std::string set_id = Field(made, "set_id");
  std::map<std::string, std::string> snapshot_of;  // mount -> snapshot id
  for (const auto& s : made["snapshots"].GetArray())
    snapshot_of[Field(s, "volume")] = Field(s, "snapshot_id");
  BOOST_TEST_REQUIRE(snapshot_of.size() == 2u, "the set holds " << snapshot_of.size());
  for (const auto& p : made["plan"].GetArray()) {
    BOOST_TEST(Field(p, "provider") == "iscsi", Field(p, "volume"));
    BOOST_TEST(Field(p, "hold") == "fsfreeze", Field(p, "volume"));
  }
  BOOST_TEST_REQUIRE(snapshot_of.count(bed.mount(0)) == 1u);
  BOOST_TEST_REQUIRE(snapshot_of.count(bed.mount(1)) == 1u);
  pg->Sql("INSERT INTO acks VALUES (-1)");  // after the set: no restore of it may hold this
  CommandResult shown = bed.Cli({"--json", "show", set_id, "--writers"});
  BOOST_TEST_REQUIRE(shown.exit_code == 0, shown.output);
  rapidjson::Document doc = JsonOfOutput(shown.output);
  BOOST_TEST_REQUIRE(doc["set"]["writers"].Size() == 1u, shown.output);
  const rapidjson::Value& blob = doc["set"]["writers"][0]["backup_blob"];
  BOOST_TEST(Field(blob, "tablespace_map").find(" " + space + "\n") != std::string::npos,
             Field(blob, "tablespace_map"));

  // Restore elsewhere: both snapshots attached and mounted, copied, and the
  // tablespace pointed at its copy.
  const std::string restored = bed.work().str() + "/restored",
                    restored_space = bed.work().str() + "/restored-ts";
  {
    std::vector<std::string> dirs;
    for (size_t i = 0; i < 2; ++i) {
      dirs.push_back(bed.SnapshotMount(kNames[i]));
      rapidjson::Document e = f.Json({"expose", snapshot_of[bed.mount(i)], "--attach",
                                      "--chap-file", bed.snap_chap(), "--mount", dirs[i]});
      BOOST_TEST_REQUIRE(Field(e, "mounted_on") == dirs[i]);
    }
    Must({"cp", "-a", dirs[0] + "/pgdata", restored}, seconds(300));
    Must({"cp", "-a", dirs[1] + "/ts", restored_space}, seconds(300));
    for (size_t i = 0; i < 2; ++i) {
      CommandResult u = f.Cli({"unexpose", snapshot_of[bed.mount(i)]});
      BOOST_TEST_REQUIRE(u.exit_code == 0, u.output);
    }
  }
  PrepareRecovery(restored, blob, {{space, restored_space}});
  pg->OwnTree(restored_space);
  {
    PostgresServer second(restored, bed.work().str() + "/pgsock2", /*init=*/false,
                          {"restore_command=cp " + archive + "/%f %p", "archive_mode=off"});
    WaitPromoted(second);
    auto check = second.Tool({"pg_amcheck", "--install-missing", "--all", "--heapallindexed", "-h",
                              second.socket_dir(), "-p", "5432", "-U", "postgres"});
    BOOST_TEST(check.exit_code == 0, check.output);
    BOOST_TEST(second.Sql("SELECT pg_tablespace_location(oid) FROM pg_tablespace WHERE "
                          "spcname = 'space'") == restored_space);
    const int64_t max_seq = std::stoll(second.Sql("SELECT coalesce(max(seq), 0) FROM acks"));
    BOOST_TEST(max_seq >= acked_before_freeze);
    BOOST_TEST(std::stoll(second.Sql("SELECT count(*) FROM acks WHERE seq > 0")) == max_seq);
    BOOST_TEST(second.Sql("SELECT count(*) FROM acks WHERE seq = -1") == "0");
  }

  // Revert in place. First, what a hurried administrator tries: refused
  // while mounted, before anything changed.
  CommandResult mounted = bed.Cli({"revert", "--set", set_id});
  BOOST_TEST(mounted.exit_code != 0, mounted.output);
  BOOST_TEST(mounted.output.find("mounted filesystem") != std::string::npos, mounted.output);
  BOOST_TEST(pg->Sql("SELECT count(*) FROM acks WHERE seq = -1") == "1");
  // Then as the writer's pre-restore asks: the cluster stopped, both
  // filesystems unmounted.
  pg->Stop();
  pg.reset();
  bed.Unmount(0);
  bed.Unmount(1);
  // The LUN mounted somewhere else is the same volume: still refused.
  const std::string elsewhere = bed.SnapshotMount("elsewhere");
  Must({"mount", bed.device(1), elsewhere});
  CommandResult moved = bed.Cli({"revert", "--set", set_id});
  Must({"umount", elsewhere});
  BOOST_TEST(moved.exit_code == 8, moved.output);
  BOOST_TEST(moved.output.find("mounted filesystem " + elsewhere) != std::string::npos,
             moved.output);
  BOOST_TEST(moved.output.find("naa." + f.luns()[1].naa) != std::string::npos, moved.output);
  for (int i = 0; i < 2; ++i) BOOST_TEST(f.Rest(i, "DELETE", "/mock/requests").status == 204);
  CommandResult reverted = bed.Cli({"--json", "revert", "--set", set_id});
  BOOST_TEST_REQUIRE(reverted.exit_code == 0, reverted.output);
  for (int i = 0; i < 2; ++i) {
    HttpResponse log = f.Rest(i, "GET", "/mock/requests");
    int reverts = 0;
    for (const auto& r : log.Json()["Members"].GetArray())
      reverts += Field(r, "Operation") == "Volume.RevertToSnapshot";
    BOOST_TEST(reverts == 1, "array " << i);
  }
  // Each LUN now holds its filesystem as frozen at the cut: clean.
  for (size_t i = 0; i < 2; ++i) {
    CommandResult fsck = RunCommand({"e2fsck", "-fn", bed.device(i)}, seconds(120));
    BOOST_TEST(fsck.exit_code == 0, fsck.output);
    bed.Mount(i);
  }
  PrepareRecovery(data, blob);
  // As the administrator runs it: on its own socket, archiving on.
  PostgresServer back(
      data, bed.work().str() + "/pgsock", /*init=*/false,
      ArchivingTo(archive,
                  {"restore_command=cp " + archive + "/%f %p", "recovery_target=immediate",
                   "recovery_target_action=promote", "min_wal_size=32MB", "max_wal_size=64MB"}));
  auto holds_the_set = [&](const char* when) {
    BOOST_TEST_CONTEXT(when) {
      WaitPromoted(back);  // the server on that socket, whoever started it
      const int64_t max_seq = std::stoll(back.Sql("SELECT coalesce(max(seq), 0) FROM acks"));
      BOOST_TEST(max_seq >= acked_before_freeze);
      BOOST_TEST(std::stoll(back.Sql("SELECT count(*) FROM acks WHERE seq > 0")) == max_seq);
      BOOST_TEST(back.Sql("SELECT count(*) FROM acks WHERE seq < 0") == "0");
      auto check = back.Tool({"pg_amcheck", "--install-missing", "--all", "-h", back.socket_dir(),
                              "-p", "5432", "-U", "postgres"});
      BOOST_TEST(check.exit_code == 0, check.output);
    }
  };
  holds_the_set("reverted by hand");

  // Again, in one command: the writer stops the cluster, snapset unmounts
  // both LUNs, both arrays revert, snapset mounts them again, the writer
  // starts the cluster with recovery from the set's label.
  back.Sql("INSERT INTO acks VALUES (-2)");
  StopServerOf restarted{data};
  CommandResult again = bed.Cli({"--json", "revert", "--set", set_id, "--remount"});
  BOOST_TEST_REQUIRE(again.exit_code == 0, again.output);
  BOOST_TEST_REQUIRE(
      JsonOfOutput(again.output)["post_restore"].IsNull(),
      again.output << "\nthe writer's restore log:\n"
                   << RunCommand({"tail", "-n", "30", data + "/snapset-restore.log"}).output);
  for (size_t i = 0; i < 2; ++i)
    BOOST_TEST(Must({"findmnt", "-n", "-o", "SOURCE", bed.mount(i)}).find("/dev/sd") == 0u);
  holds_the_set("reverted with --remount and the writer's --restart");

  CommandResult deleted = f.Cli({"delete", "--set", set_id});
  BOOST_TEST(deleted.exit_code == 0, deleted.output);
  f.ExpectNothingLeft();
}

}  // namespace
}  // namespace snapset::test
