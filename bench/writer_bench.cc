// SPDX-License-Identifier: Apache-2.0
// writer_bench: what writers cost a set (docs/benchmarks.md, "writer_bench").
//
// Part 1, the protocol (no root needed). A writer served by the writer
// library on a thread, and the coordinator's WriterSet driving it:
//   - the round trip of one event ("status"), against a bare round trip of
//     one line over a Unix socketpair to an echo thread, in the same run;
//   - each phase of a set (discover = connect + identify, prepare-backup,
//     prepare-snapshot, freeze, thaw, post-snapshot), against the same bare
//     round trip.
//
// Part 2, PostgreSQL (--pg, root): PostgreSQL 15 with WAL archiving on an
// ext4 on a loop device whose backing file sits on an xfs pool, the
// loop-clone provider, and snapset-pg-writer. Alternating rounds of pgbench
// alone and pgbench while sets are taken back to back:
//   - pgbench throughput during sets, against without (median of the
//     per-round ratios);
//   - how long PostgreSQL's writes are held (the set's hold: FIFREEZE to
//     FITHAW), against the whole set.
//
//   writer_bench [--quick] [--pg] [--rounds N] [--seconds S]
#include <snapset/requestor.hpp>

#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "core/run_command.hpp"
#include "core/set_creation.hpp"
#include "core/socket_writer.hpp"
#include "core/writer_set.hpp"
#include "tests/support/loop_filesystem.hpp"
#include "tests/support/postgres_server.hpp"
#include "writer/line_channel.hpp"
#include "writer/writer_protocol.hpp"

extern char** environ;

namespace snapset::bench {
namespace {

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}
double P99(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(v.size() * 0.99))];
}

struct TempDir {
  std::string path;
  TempDir() {
    std::string t = (fs::temp_directory_path() / "writer-bench-XXXXXX").string();
    if (!::mkdtemp(t.data())) throw std::runtime_error("mkdtemp");
    path = t;
    ::chmod(path.c_str(), 0755);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

class NoopWriter : public writer::Writer {
 public:
  writer::Metadata Identify() override {
    writer::Metadata m;
    m.name = "bench";
    writer::Component c;
    c.logical_path = "data";
    c.database_files.push_back({"/srv/bench", "*", true});
    m.components.push_back(c);
    return m;
  }
};

// One line out, one line back, over a socketpair to an echo thread.
std::vector<double> BareRoundTrips(int n) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    throw std::runtime_error("socketpair");
  writer_protocol::LineChannel client(sv[0]);
  std::thread echo([fd = sv[1], n] {
    writer_protocol::LineChannel server(fd);
    writer_protocol::Reply r;
    const std::string reply = writer_protocol::EncodeReply(r);
    for (int i = 0; i < n; ++i) {
      auto line = server.ReadLine(Clock::now() + std::chrono::seconds(10));
      if (!line.ok()) return;
      (void)server.Write(reply, Clock::now() + std::chrono::seconds(10));
    }
  });
  writer_protocol::Request q;
  q.event = writer::Event::kStatus;
  const std::string request = writer_protocol::EncodeRequest(q);
  std::vector<double> out;
  for (int i = 0; i < n; ++i) {
    const auto t0 = Clock::now();
    (void)client.Write(request, t0 + std::chrono::seconds(10));
    auto line = client.ReadLine(t0 + std::chrono::seconds(10));
    if (!line.ok()) throw std::runtime_error("bare round trip failed");
    (void)writer_protocol::DecodeReply(*line);
    out.push_back(Ms(Clock::now() - t0));
  }
  echo.join();
  return out;
}

int ProtocolPart(bool quick) {
  TempDir dir;
  const std::string run = dir.path + "/run", config = dir.path + "/config";
  fs::create_directories(config);
  NoopWriter w;
  std::atomic<bool> stop{false};
  writer::ServeOptions so;
  so.name = "bench";
  so.run_dir = run;
  so.stop = &stop;
  so.handle_signals = false;
  Status served;
  std::thread server([&] { served = writer::Serve(w, so); });
  // Joined on every way out: an exception below must not leave it running.
  struct Join {
    std::atomic<bool>& stop;
    std::thread& thread;
    ~Join() {
      stop = true;
      if (thread.joinable()) thread.join();
    }
  } join{stop, server};
  const std::string sock = run + "/writers/bench.sock";

  const int n = quick ? 200 : 5000, sets = quick ? 20 : 300;
  // Alternate the two measurements in blocks so drift hits both alike.
  std::vector<double> bare, status;
  // The socket file exists from bind() on, but accepts only after listen():
  // retry until it does.
  auto conn = SocketWriter::Connect("bench", sock, {}, Clock::now() + std::chrono::seconds(5));
  for (int i = 0; i < 500 && !conn.ok(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    conn = SocketWriter::Connect("bench", sock, {}, Clock::now() + std::chrono::seconds(5));
  }
  if (!conn.ok()) throw std::runtime_error(conn.status().ToString());
  writer_protocol::Request q;
  q.event = writer::Event::kStatus;
  for (int block = 0; block < 10; ++block) {
    auto b = BareRoundTrips(n / 10);
    bare.insert(bare.end(), b.begin(), b.end());
    for (int i = 0; i < n / 10; ++i) {
      const auto t0 = Clock::now();
      auto r = (*conn)->Call(q, t0 + std::chrono::seconds(10));
      if (!r.ok()) throw std::runtime_error(r.status().ToString());
      status.push_back(Ms(Clock::now() - t0));
    }
  }
  const double bare_p50 = Median(bare);

  const char* phases[] = {"discover", "prepare-backup", "prepare-snapshot",
                          "freeze",   "thaw",           "post-snapshot"};
  std::vector<std::vector<double>> per(6);
  WriterSetOptions o;
  o.config_dir = config;
  o.run_dir = run;
  for (int s = 0; s < sets; ++s) {
    const std::string id = NewUuid();
    auto t0 = Clock::now();
    auto set = WriterSet::Discover(o, nullptr);
    if (!set.ok()) throw std::runtime_error(set.status().ToString());
    per[0].push_back(Ms(Clock::now() - t0));
    std::function<Status()> steps[] = {
        [&] { return (*set)->PrepareBackup(id, {"/srv/bench"}, {}); },
        [&] { return (*set)->PrepareSnapshot(); }, [&] { return (*set)->Freeze(); },
        [&] { return (*set)->Thaw(); }, [&] { return (*set)->PostSnapshot(); }};
    for (int p = 0; p < 5; ++p) {
      t0 = Clock::now();
      Status st = steps[p]();
      if (!st.ok()) throw std::runtime_error(st.ToString());
      per[p + 1].push_back(Ms(Clock::now() - t0));
    }
  }
  stop = true;
  server.join();

  std::printf("| row | p50 ms | p99 ms | ratio to bare p50 |\n|---|---|---|---|\n");
  std::printf("| `rtt.bare` | %.4f | %.4f | 1.00 |\n", bare_p50, P99(bare));
  std::printf("| `rtt.status` | %.4f | %.4f | %.2f |\n", Median(status), P99(status),
              Median(status) / bare_p50);
  double total = 0;
  for (int p = 0; p < 6; ++p) {
    total += Median(per[p]);
    std::printf("| `phase.%s` | %.4f | %.4f | %.2f |\n", phases[p], Median(per[p]), P99(per[p]),
                Median(per[p]) / bare_p50);
  }
  std::printf("| `phase.all` (sum of p50) | %.4f | | %.2f |\n", total, total / bare_p50);
  std::printf(
      "{\"bench\":\"writer_bench\",\"part\":\"protocol\",\"bare_p50_ms\":%.4f,\"status_p50_ms\":%."
      "4f,"
      "\"status_over_bare\":%.2f,\"set_phases_p50_ms\":%.4f}\n",
      bare_p50, Median(status), Median(status) / bare_p50, total);
  return served.ok() ? 0 : 1;
}

// ---- part 2: PostgreSQL ----

std::string Must(const std::vector<std::string>& argv) {
  CommandResult r = RunCommand(argv, std::chrono::seconds(300));
  if (r.exit_code != 0) {
    std::string line;
    for (const auto& a : argv) line += a + " ";
    throw std::runtime_error(line + "failed: " + r.output);
  }
  return r.output;
}

double Tps(const std::string& out) {
  std::smatch m;
  static const std::regex re(R"(tps = ([0-9.]+) \(without initial connection time\))");
  if (!std::regex_search(out, m, re)) throw std::runtime_error("no tps in pgbench output: " + out);
  return std::stod(m[1]);
}

// pgbench with a progress line per second ("progress: 5.0 s, 950.2 tps, ...").
struct Pgbench {
  pid_t pid = -1;
  std::string out, text;
  Clock::time_point started;
  void Start(const std::string& bin, const std::string& conninfo, int seconds) {
    out = fs::temp_directory_path() / ("pgbench-" + std::to_string(::getpid()) + ".out");
    std::string cmd = bin + "/pgbench -n -P 1 -c 4 -j 2 -T " + std::to_string(seconds) + " \"" +
                      conninfo + "\" > " + out + " 2>&1";
    started = Clock::now();
    char* argv[] = {const_cast<char*>("/bin/sh"), const_cast<char*>("-c"), cmd.data(), nullptr};
    if (::posix_spawn(&pid, "/bin/sh", nullptr, nullptr, argv, environ) != 0)
      throw std::runtime_error("cannot start pgbench");
  }
  double Wait() {
    int status = 0;
    ::waitpid(pid, &status, 0);
    pid = -1;
    text = RunCommand({"cat", out}).output;
    ::unlink(out.c_str());
    return Tps(text);
  }
  // Mean tps of the one-second progress intervals that overlap [from, to]
  // (seconds since start); all intervals but the first when from < 0.
  double TpsBetween(double from, double to) const {
    static const std::regex re(R"(progress: ([0-9.]+) s, ([0-9.]+) tps)");
    double sum = 0;
    int n = 0;
    for (auto it = std::sregex_iterator(text.begin(), text.end(), re); it != std::sregex_iterator();
         ++it) {
      const double end = std::stod((*it)[1]), tps = std::stod((*it)[2]);
      const bool take = from < 0 ? end > 1.5 : (end > from && end - 1 < to);
      if (take) {
        sum += tps;
        ++n;
      }
    }
    return n ? sum / n : 0;
  }
  ~Pgbench() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
};

int PgPart(bool quick, int rounds, int seconds) {
  if (::geteuid() != 0) {
    std::fprintf(stderr, "writer_bench --pg: needs root\n");
    return 2;
  }
  const std::string missing = test::PostgresServer::MissingPrerequisite();
  if (!missing.empty()) {
    std::fprintf(stderr, "writer_bench --pg: needs %s\n", missing.c_str());
    return 2;
  }
  auto pool = test::LoopFilesystem::Create(2ull << 30, "xfs");
  if (!pool.ok()) throw std::runtime_error(pool.status().ToString());
  TempDir dir;
  const std::string backing = (*pool)->mount_point() + "/vol.img";
  Must({"truncate", "-s", "1G", backing});
  std::string device = Must({"losetup", "--find", "--show", backing});
  device.erase(device.find_last_not_of('\n') + 1);
  struct Undo {
    std::string mount, device;
    ~Undo() {
      RunCommand({"fsfreeze", "--unfreeze", mount});
      RunCommand({"umount", mount});
      RunCommand({"losetup", "-d", device});
    }
  } undo{dir.path + "/data", device};
  Must({"mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0", device});
  fs::create_directories(undo.mount);
  Must({"mount", "-t", "ext4", device, undo.mount});
  const std::string snapshots = (*pool)->mount_point() + "/snapshots";
  fs::create_directories(snapshots);
  const std::string config = dir.path + "/config", run = dir.path + "/run";
  fs::create_directories(config + "/providers.d");
  fs::create_directories(run + "/writers");
  ::chmod(config.c_str(), 0755);
  ::chmod(run.c_str(), 0755);
  ::chmod((run + "/writers").c_str(), 01777);
  std::ofstream(config + "/providers.d/loop-clone.json")
      << "{\"id\": \"" << NewUuid() << "\", \"name\": \"loop-clone\", \"type\": \"software\", "
      << "\"library\": \"" SNAPSET_LOOP_CLONE "\", \"config\": {\"snapshot_dir\": \"" << snapshots
      << "\"}}";
  std::ofstream(config + "/writers.json") << "{\"allowed_users\": [\"postgres\"]}";
  const std::string archive = dir.path + "/archive";
  fs::create_directories(archive);
  test::PostgresServer pg(undo.mount + "/pgdata", dir.path + "/sock", true,
                          {"archive_mode=on", "archive_command=cp %p " + archive + "/%f"});
  pg.Own(archive);
  Must({pg.bin() + "/pgbench", "-i", "-q", "-s", quick ? "1" : "8", pg.conninfo()});

  pid_t writer = -1;
  {
    std::vector<std::string> args = {"/usr/bin/setpriv",
                                     "--reuid=postgres",
                                     "--regid=postgres",
                                     "--init-groups",
                                     "--",
                                     SNAPSET_PG_WRITER,
                                     "--dbname",
                                     pg.conninfo(),
                                     "--name",
                                     "pg",
                                     "--run-dir",
                                     run};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (::posix_spawn(&writer, argv[0], nullptr, nullptr, argv.data(), environ) != 0)
      throw std::runtime_error("cannot start snapset-pg-writer");
  }
  struct KillWriter {
    pid_t pid;
    ~KillWriter() {
      ::kill(pid, SIGTERM);
      ::waitpid(pid, nullptr, 0);
    }
  } kill_writer{writer};
  for (int i = 0; i < 500 && !fs::exists(run + "/writers/pg.sock"); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));

  RequestorOptions ro;
  ro.config_dir = config;
  ro.state_dir = dir.path + "/state";
  ro.run_dir = run;
  ro.log_level = SNAPSET_LOG_ERROR;
  ro.thaw_guard = SNAPSET_BENCH_THAW_GUARD;
  auto r = Requestor::Open(ro);
  if (!r.ok()) throw std::runtime_error(r.status().ToString());

  // Each round: pgbench alone, then pgbench with one set taken in its
  // middle. Throughput "during the set" is the mean of pgbench's one-second
  // progress intervals that overlap the set, against the alone run's.
  std::vector<double> ratios, run_ratios, base_tps, during_tps, hold_ms, set_ms, writer_ms;
  for (int round = 0; round < rounds; ++round) {
    Pgbench alone;
    alone.Start(pg.bin(), pg.conninfo(), seconds);
    const double whole_alone = alone.Wait();
    const double alone_tps = alone.TpsBetween(-1, 0);
    Pgbench with;
    with.Start(pg.bin(), pg.conninfo(), seconds);
    std::this_thread::sleep_for(std::chrono::milliseconds(seconds * 1000 / 2));
    SetRequest req;
    req.volumes = {undo.mount};
    const auto s0 = Clock::now();
    SetResult res = (*r)->CreateSet(req);
    const auto s1 = Clock::now();
    if (!res.status.ok()) throw std::runtime_error(res.status.ToString());
    const double whole_with = with.Wait();
    const double from = std::chrono::duration<double>(s0 - with.started).count();
    const double to = std::chrono::duration<double>(s1 - with.started).count();
    const double set_tps = with.TpsBetween(from, to);
    hold_ms.push_back(res.hold_ns / 1e6);
    set_ms.push_back(Ms(s1 - s0));
    int64_t fb = -1, te = -1;
    for (const auto& e : res.timeline.events) {
      if (e.lane == "writer:pg" && e.step == "freeze" && e.kind == TimelineKind::kBegin)
        fb = e.t_ns;
      if (e.lane == "writer:pg" && e.step == "thaw" && e.kind == TimelineKind::kEnd) te = e.t_ns;
    }
    if (fb > 0 && te > 0) writer_ms.push_back((te - fb) / 1e6);
    (void)(*r)->DeleteSet(res.set_id);
    base_tps.push_back(alone_tps);
    during_tps.push_back(set_tps);
    ratios.push_back(set_tps / alone_tps);
    run_ratios.push_back(whole_with / whole_alone);
    std::fprintf(
        stderr,
        "round %d: alone %.0f tps; during the set (%.2f s) %.0f tps; whole runs %.0f / %.0f\n",
        round + 1, alone_tps, Ms(s1 - s0) / 1000, set_tps, whole_with, whole_alone);
  }
  const int sets_taken = rounds;
  std::printf("\n| row | value |\n|---|---|\n");
  std::printf("| `pg.tps.alone` (median) | %.0f |\n", Median(base_tps));
  std::printf("| `pg.tps.during_set` (median) | %.0f |\n", Median(during_tps));
  std::printf("| `pg.tps.during_set_over_alone` (median of per-round ratios) | %.3f |\n",
              Median(ratios));
  std::printf("| `pg.tps.run_with_one_set_over_alone` (%d s runs) | %.3f |\n", seconds,
              Median(run_ratios));
  std::printf("| `pg.sets` | %d |\n", sets_taken);
  std::printf("| `pg.hold_ms` p50 / p99 | %.2f / %.2f |\n", Median(hold_ms), P99(hold_ms));
  std::printf("| `pg.writer_freeze_to_thaw_ms` p50 | %.2f |\n", Median(writer_ms));
  std::printf("| `pg.set_ms` p50 / p99 | %.2f / %.2f |\n", Median(set_ms), P99(set_ms));
  std::printf("| `pg.hold_over_set` (p50s) | %.4f |\n", Median(hold_ms) / Median(set_ms));
  std::printf(
      "{\"bench\":\"writer_bench\",\"part\":\"pg\",\"tps_ratio\":%.3f,\"hold_ms_p50\":%.2f,"
      "\"set_ms_p50\":%.2f,\"hold_over_set\":%.4f}\n",
      Median(ratios), Median(hold_ms), Median(set_ms), Median(hold_ms) / Median(set_ms));
  return 0;
}

}  // namespace
}  // namespace snapset::bench

int main(int argc, char** argv) {
  bool quick = false, pg = false;
  int rounds = 5, seconds = 20;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick")
      quick = true;
    else if (a == "--pg")
      pg = true;
    else if (a == "--rounds" && i + 1 < argc)
      rounds = std::atoi(argv[++i]);
    else if (a == "--seconds" && i + 1 < argc)
      seconds = std::atoi(argv[++i]);
    else {
      std::fprintf(stderr, "usage: writer_bench [--quick] [--pg] [--rounds N] [--seconds S]\n");
      return 1;
    }
  }
  if (quick) {
    rounds = std::min(rounds, 1);
    seconds = std::min(seconds, 5);
  }
  try {
    int rc = snapset::bench::ProtocolPart(quick);
    if (rc == 0 && pg) rc = snapset::bench::PgPart(quick, rounds, seconds);
    return rc;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "writer_bench: %s\n", e.what());
    return 1;
  }
}
