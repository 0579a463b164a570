// SPDX-License-Identifier: Apache-2.0
// The bundled PostgreSQL writer, as a PostgreSQL administrator relies on it:
// a set taken on a software-cow volume while pgbench runs gives a data
// directory that, with the backup_label the set recorded, a second
// PostgreSQL recovers to a consistent state that passes pg_amcheck and holds
// every transaction acknowledged before the freeze. All real: snapset-cowd,
// ext4 on its volume, PostgreSQL 15 run as the postgres user, the writer
// process run as postgres and allowed by writers.json, the snapset CLI.
#define BOOST_TEST_MODULE pg_writer
#include <rapidjson/document.h>
#include <signal.h>

#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <fstream>
#include <thread>

#include "core/socket_writer.hpp"
#include "tests/software-cow/e2e/cow_stack.hpp"
#include "tests/support/pg_set.hpp"
#include "tests/support/postgres_server.hpp"
#include "tests/support/writer_process.hpp"

namespace snapset::test {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

bool PgPrerequisites() {
  return CowStackAvailable() && Available(PostgresServer::MissingPrerequisite());
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_set_under_pgbench_recovers_on_a_second_server_with_every_acknowledged_row) {
  if (!PgPrerequisites()) return;
  CowStack stack("640M");
  const std::string data = stack.mnt().string() + "/pgdata";
  const std::string sock = stack.dir().str() + "/pgsock";
  ::chmod(stack.dir().str().c_str(), 0755);
  // WAL archiving, as the writer requires: recovery needs the WAL written
  // until pg_backup_stop, after the cut.
  const std::string archive = stack.dir().str() + "/wal-archive";
  fs::create_directories(archive);
  PostgresServer pg(data, sock, /*init=*/true, ArchivingTo(archive));
  pg.Own(archive);
  pg.Sql("CREATE TABLE acks (seq bigint PRIMARY KEY)");
  auto init = pg.Tool({"pgbench", "-i", "-s", "2", "-q", pg.conninfo()});
  BOOST_TEST_REQUIRE(init.exit_code == 0, init.output);

  // The writer runs as postgres; snapset accepts it because writers.json says so.
  stack.AllowWriterUser("postgres");
  WriterProcess writer(
      {"/usr/bin/setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--",
       SNAPSET_PG_WRITER, "--dbname", pg.conninfo(), "--name", "pg", "--run-dir", stack.run_dir()},
      stack.run_dir() + "/writers/pg.sock");

  // Load: pgbench, and a client whose acknowledged rows the restore must hold.
  Pgbench bench(pg);
  Acker acker;
  acker.conninfo = pg.conninfo();
  acker.Start();
  std::this_thread::sleep_for(std::chrono::seconds(2));

  rapidjson::Document made = stack.Create({stack.mnt().string()});
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  acker.Stop();
  BOOST_TEST_REQUIRE(acker.error.empty(), acker.error);
  const std::string set_id = made["set_id"].GetString();
  const std::string snapshot_id = made["snapshots"][0]["snapshot_id"].GetString();
  const int64_t freeze_begin = EventTime(made["timeline"], "writer:pg", "freeze", "begin");
  BOOST_TEST_REQUIRE(freeze_begin > 0);
  const int64_t acked_before_freeze = acker.AckedBefore(freeze_begin);
  BOOST_TEST_MESSAGE("acknowledged " << acker.acked.size() << ", before freeze "
                                     << acked_before_freeze);
  BOOST_TEST_REQUIRE(acked_before_freeze > 0);

  // The set recorded the backup label pg_backup_stop gave.
  auto shown = stack.Cli({"--json", "show", set_id, "--writers"});
  BOOST_TEST_REQUIRE(shown.exit_code == 0, shown.output);
  rapidjson::Document doc;
  doc.Parse(shown.output.c_str());
  BOOST_TEST_REQUIRE(doc["set"]["writers"].Size() == 1u, shown.output);
  const auto& blob = doc["set"]["writers"][0]["backup_blob"];
  BOOST_TEST_REQUIRE(blob.HasMember("backup_label"), shown.output);
  const std::string label = blob["backup_label"].GetString();
  BOOST_TEST(label.find("LABEL: snapset set " + set_id) != std::string::npos, label);
  const std::string component =
      doc["set"]["writers"][0]["metadata"]["components"][0]["logical_path"].GetString();
  BOOST_TEST(component == "pg");

  // Restore elsewhere: the snapshot's data directory plus the label.
  const fs::path mounted = stack.ExposeMounted(snapshot_id);
  const std::string restored = stack.dir().str() + "/restored";
  auto copied =
      RunCommand({"cp", "-a", (mounted / "pgdata").string(), restored}, std::chrono::seconds(300));
  BOOST_TEST_REQUIRE(copied.exit_code == 0, copied.output);
  PrepareRecovery(restored, blob);
  PostgresServer second(restored, stack.dir().str() + "/pgsock2", /*init=*/false,
                        {"restore_command=cp " + archive + "/%f %p", "archive_mode=off"});
  WaitPromoted(second);  // archive recovery ends by promoting
  auto check = second.Tool({"pg_amcheck", "--install-missing", "--all", "--heapallindexed", "-h",
                            second.socket_dir(), "-p", "5432", "-U", "postgres"});
  BOOST_TEST(check.exit_code == 0, check.output);
  const int64_t rows = std::stoll(second.Sql("SELECT count(*) FROM acks"));
  const int64_t max_seq = std::stoll(second.Sql("SELECT coalesce(max(seq), 0) FROM acks"));
  BOOST_TEST(rows == max_seq);  // one row per transaction: no gap
  BOOST_TEST(max_seq >= acked_before_freeze);
  // The label says the restore started from this set's backup.
  const std::string log = second.Log();
  BOOST_TEST_MESSAGE("restored server log:\n" << log);
  second.Stop();
}

BOOST_AUTO_TEST_CASE(a_cluster_reverted_to_a_set_recovers_its_rows_and_loses_later_ones) {
  if (!PgPrerequisites()) return;
  CowStack stack("640M");
  ::chmod(stack.dir().str().c_str(), 0755);
  const std::string data = stack.mnt().string() + "/pgdata";
  const std::string archive = stack.dir().str() + "/wal-archive";
  fs::create_directories(archive);
  auto pg = std::make_unique<PostgresServer>(data, stack.dir().str() + "/pgsock", /*init=*/true,
                                             ArchivingTo(archive));
  pg->Own(archive);
  pg->Sql("CREATE TABLE acks (seq bigint PRIMARY KEY)");
  WriterProcess writer(
      {SNAPSET_PG_WRITER, "--dbname", pg->conninfo(), "--name", "pg", "--run-dir", stack.run_dir()},
      stack.run_dir() + "/writers/pg.sock");
  Acker acker;
  acker.conninfo = pg->conninfo();
  acker.Start();
  std::this_thread::sleep_for(std::chrono::seconds(1));
  rapidjson::Document made = stack.Create({stack.mnt().string()});
  acker.Stop();
  const std::string set_id = made["set_id"].GetString();
  const int64_t freeze_begin = EventTime(made["timeline"], "writer:pg", "freeze", "begin");
  const int64_t acked_before_freeze = acker.AckedBefore(freeze_begin);
  BOOST_TEST_REQUIRE(acked_before_freeze > 0);
  pg->Sql("INSERT INTO acks VALUES (-1)");  // after the set: the revert must lose it

  // The writer refuses pre-restore while its cluster runs.
  auto conn = SocketWriter::Connect("pg", stack.run_dir() + "/writers/pg.sock", {},
                                    Clock::now() + std::chrono::seconds(5));
  BOOST_TEST_REQUIRE(conn.ok(), conn.status().ToString());
  writer_protocol::Request q;
  q.event = writer::Event::kPreRestore;
  q.set_id = set_id;
  auto refused = (*conn)->Call(q, Clock::now() + std::chrono::seconds(10));
  BOOST_TEST_REQUIRE(refused.ok(), refused.status().ToString());
  BOOST_TEST(!refused->ok);
  BOOST_TEST(refused->message.find("PostgreSQL is running") != std::string::npos, refused->message);
  (*conn)->Close();

  // Stop, unmount, revert, mount; then start with recovery from the set's label.
  pg->Stop();
  pg.reset();
  stack.Detach();
  auto reverted = stack.Cli({"revert", "--set", set_id});
  BOOST_TEST_REQUIRE(reverted.exit_code == 0, reverted.output);
  stack.Attach();
  auto shown = stack.Cli({"--json", "show", set_id, "--writers"});
  rapidjson::Document doc;
  doc.Parse(shown.output.c_str());
  PrepareRecovery(data, doc["set"]["writers"][0]["backup_blob"]);
  PostgresServer back(data, stack.dir().str() + "/pgsock2", /*init=*/false,
                      {"restore_command=cp " + archive + "/%f %p", "recovery_target=immediate",
                       "recovery_target_action=promote", "archive_mode=off"});
  WaitPromoted(back);
  const int64_t max_seq = std::stoll(back.Sql("SELECT coalesce(max(seq), 0) FROM acks"));
  const int64_t rows = std::stoll(back.Sql("SELECT count(*) FROM acks WHERE seq > 0"));
  BOOST_TEST(max_seq >= acked_before_freeze);
  BOOST_TEST(rows == max_seq);
  BOOST_TEST(back.Sql("SELECT count(*) FROM acks WHERE seq = -1") == "0");
  auto check = back.Tool({"pg_amcheck", "--install-missing", "--all", "-h", back.socket_dir(), "-p",
                          "5432", "-U", "postgres"});
  BOOST_TEST(check.exit_code == 0, check.output);
}

BOOST_AUTO_TEST_CASE(with_restart_and_remount_one_command_stops_reverts_and_recovers_the_cluster) {
  if (!PgPrerequisites()) return;
  CowStack stack("640M");
  ::chmod(stack.dir().str().c_str(), 0755);
  const std::string data = stack.mnt().string() + "/pgdata";
  const std::string archive = stack.dir().str() + "/wal-archive";
  fs::create_directories(archive);
  PostgresServer pg(data, stack.dir().str() + "/pgsock", /*init=*/true, ArchivingTo(archive));
  StopServerOf restarted{data};
  pg.Own(archive);
  pg.Sql("CREATE TABLE acks (seq bigint PRIMARY KEY)");
  // As postgres: pg_ctl refuses to run as root.
  stack.AllowWriterUser("postgres");
  WriterProcess writer(
      {"/usr/bin/setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--",
       SNAPSET_PG_WRITER, "--dbname", pg.conninfo(), "--name", "pg", "--run-dir", stack.run_dir(),
       "--restart", "--restore-command", "cp " + archive + "/%f %p"},
      stack.run_dir() + "/writers/pg.sock");
  Acker acker;
  acker.conninfo = pg.conninfo();
  acker.Start();
  std::this_thread::sleep_for(std::chrono::seconds(1));
  rapidjson::Document made = stack.Create({stack.mnt().string()});
  acker.Stop();
  const std::string set_id = made["set_id"].GetString();
  const int64_t acked_before_freeze =
      acker.AckedBefore(EventTime(made["timeline"], "writer:pg", "freeze", "begin"));
  BOOST_TEST_REQUIRE(acked_before_freeze > 0);
  pg.Sql("INSERT INTO acks VALUES (-1)");  // after the set: the revert must lose it

  // Busy (a file open on the filesystem): nothing reverted, and the writer
  // starts the cluster again as it was, without recovery.
  {
    std::ifstream busy(data + "/PG_VERSION");
    auto refused = stack.Cli({"revert", "--set", set_id, "--remount"});
    BOOST_TEST(refused.exit_code == 8, refused.output);
    BOOST_TEST(refused.output.find("nothing was reverted") != std::string::npos, refused.output);
  }
  BOOST_TEST(pg.Sql("SELECT count(*) FROM acks WHERE seq = -1") == "1");
  BOOST_TEST(!fs::exists(data + "/recovery.signal"));

  // One command: stopped, unmounted, reverted, mounted, recovering.
  auto reverted = stack.Cli({"--json", "revert", "--set", set_id, "--remount"});
  stack.FollowMount();
  BOOST_TEST_REQUIRE(reverted.exit_code == 0, reverted.output);
  WaitPromoted(pg);  // the same socket: the server the writer started
  const int64_t max_seq = std::stoll(pg.Sql("SELECT coalesce(max(seq), 0) FROM acks"));
  BOOST_TEST(max_seq >= acked_before_freeze);
  BOOST_TEST(std::stoll(pg.Sql("SELECT count(*) FROM acks WHERE seq > 0")) == max_seq);
  BOOST_TEST(pg.Sql("SELECT count(*) FROM acks WHERE seq = -1") == "0");
  auto check = pg.Tool({"pg_amcheck", "--install-missing", "--all", "-h", pg.socket_dir(), "-p",
                        "5432", "-U", "postgres"});
  BOOST_TEST(check.exit_code == 0, check.output);
}

BOOST_AUTO_TEST_CASE(a_cluster_without_wal_archiving_is_refused_before_anything_is_frozen) {
  if (!PgPrerequisites()) return;
  CowStack stack("320M");
  ::chmod(stack.dir().str().c_str(), 0755);
  PostgresServer pg(stack.mnt().string() + "/pgdata", stack.dir().str() + "/pgsock");
  WriterProcess writer(
      {SNAPSET_PG_WRITER, "--dbname", pg.conninfo(), "--name", "pg", "--run-dir", stack.run_dir()},
      stack.run_dir() + "/writers/pg.sock");
  auto r = stack.Cli({"create", stack.mnt().string()});
  BOOST_TEST(r.exit_code == 11, r.output);  // writer failed
  BOOST_TEST(r.output.find("writer pg failed prepare-snapshot (non-retryable") != std::string::npos,
             r.output);
  BOOST_TEST(r.output.find("archive_mode") != std::string::npos, r.output);
  // Nothing was frozen, and no snapshot stayed.
  auto list = stack.Cli({"--json", "list"});
  BOOST_TEST(list.output.find("snapshot_id") == std::string::npos, list.output);
  BOOST_TEST(pg.Sql("SELECT 1") == "1");
}

BOOST_AUTO_TEST_CASE(a_writer_for_an_unreachable_cluster_refuses_to_start_saying_why) {
  auto r = RunCommand({SNAPSET_PG_WRITER, "--dbname", "host=/nonexistent port=5432"},
                      std::chrono::seconds(30));
  BOOST_TEST(r.exit_code == 1);
  BOOST_TEST(r.output.find("cannot connect to PostgreSQL") != std::string::npos, r.output);
}

}  // namespace snapset::test
