// SPDX-License-Identifier: Apache-2.0
// A writer process for tests, built on the writer library, that breaks on
// demand. It logs every handler call to --log (one line: "<event> <set id>"),
// and with --fault PHASE:KIND misbehaves at PHASE:
//   error         the handler fails (non-retryable)
//   inconsistent  the handler fails with inconsistent-snapshot
//   hang          the handler never returns
//   crash         the process aborts inside the handler
//   malformed     the process answers PHASE with a line that is not JSON
//                 (served without the library, which cannot send garbage)
//   slow=MS       the handler sleeps MS milliseconds, then succeeds
//
//   test_writer --name NAME --run-dir DIR --log FILE [--fault PHASE:KIND]
//               [--uid UID] [--metadata FILE]
#include <snapset/writer.hpp>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>

#include "writer/line_channel.hpp"
#include "writer/writer_protocol.hpp"

using namespace snapset;
using namespace snapset::writer;

namespace {

std::string g_log;
std::string g_fault_phase, g_fault_kind;

void Log(const std::string& line) { std::ofstream(g_log, std::ios::app) << line << std::endl; }

Outcome Maybe(Event e, const EventContext& c) {
  Log(std::string(EventName(e)) + " " + c.set_id);
  if (g_fault_phase != EventName(e)) return {};
  if (g_fault_kind == "error") return Outcome::Fail(Failure::kNonRetryable, "test writer refuses");
  if (g_fault_kind == "inconsistent")
    return Outcome::Fail(Failure::kInconsistentSnapshot, "test writer lost its hold");
  if (g_fault_kind == "hang")
    for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
  if (g_fault_kind == "crash") std::abort();
  if (g_fault_kind.rfind("slow=", 0) == 0)
    std::this_thread::sleep_for(std::chrono::milliseconds(std::atoi(g_fault_kind.c_str() + 5)));
  return {};
}

Metadata g_metadata;

class TestWriter : public Writer {
 public:
  Metadata Identify() override {
    EventContext c;
    Outcome o = Maybe(Event::kIdentify, c);
    if (!o.ok()) throw std::runtime_error(o.message);
    return g_metadata;
  }
  Outcome OnPrepareBackup(const EventContext& c) override {
    return Maybe(Event::kPrepareBackup, c);
  }
  Outcome OnPrepareSnapshot(const EventContext& c) override {
    return Maybe(Event::kPrepareSnapshot, c);
  }
  Outcome OnFreeze(const EventContext& c) override { return Maybe(Event::kFreeze, c); }
  Outcome OnThaw(const EventContext& c) override {
    Outcome o = Maybe(Event::kThaw, c);
    if (o.ok()) o.backup_blob["label"] = "thawed " + c.set_id;
    return o;
  }
  Outcome OnPostSnapshot(const EventContext& c) override { return Maybe(Event::kPostSnapshot, c); }
  void OnAbort(const EventContext& c) override { Log("abort " + c.set_id); }
  Outcome OnBackupComplete(const EventContext& c) override {
    return Maybe(Event::kBackupComplete, c);
  }
  Outcome OnPreRestore(const EventContext& c) override { return Maybe(Event::kPreRestore, c); }
  Outcome OnPostRestore(const EventContext& c) override { return Maybe(Event::kPostRestore, c); }
};

// Without the library: answers like a writer, except garbage at the fault.
int ServeMalformed(const std::string& name, const std::string& run_dir) {
  const std::string dir = run_dir + "/writers";
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/" + name + ".sock";
  ::unlink(path.c_str());
  int lfd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  if (::bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(lfd, 4) != 0) {
    std::perror("bind");
    return 1;
  }
  State state = State::kStable;
  for (;;) {
    int cfd = ::accept(lfd, nullptr, nullptr);
    if (cfd < 0) continue;
    writer_protocol::LineChannel ch(cfd);
    for (;;) {
      auto line = ch.ReadLine(std::chrono::steady_clock::now() + std::chrono::minutes(5));
      if (!line.ok()) break;
      auto q = writer_protocol::DecodeRequest(*line);
      if (!q.ok()) break;
      Log(std::string(EventName(q->event)) + " " + q->set_id);
      if (g_fault_phase == EventName(q->event)) {
        (void)ch.Write("this is { not json\n",
                       std::chrono::steady_clock::now() + std::chrono::seconds(5));
        continue;
      }
      writer_protocol::Reply r;
      switch (q->event) {
        case Event::kPrepareSnapshot:
          state = State::kWaitingForFreeze;
          break;
        case Event::kFreeze:
          state = State::kWaitingForThaw;
          break;
        case Event::kThaw:
          state = State::kWaitingForPostSnapshot;
          break;
        case Event::kPostSnapshot:
          state = State::kWaitingForBackupComplete;
          break;
        case Event::kAbort:
          state = State::kStable;
          break;
        case Event::kIdentify:
          r.metadata = g_metadata;
          break;
        default:
          break;
      }
      r.state = state;
      (void)ch.Write(writer_protocol::EncodeReply(r),
                     std::chrono::steady_clock::now() + std::chrono::seconds(5));
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string name = "test", run_dir, metadata_file;
  long uid = -1;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--name")
      name = v;
    else if (k == "--run-dir")
      run_dir = v;
    else if (k == "--log")
      g_log = v;
    else if (k == "--uid")
      uid = std::atol(v.c_str());
    else if (k == "--metadata")
      metadata_file = v;
    else if (k == "--fault") {
      const auto colon = v.find(':');
      g_fault_phase = v.substr(0, colon);
      g_fault_kind = colon == std::string::npos ? "error" : v.substr(colon + 1);
    } else {
      std::cerr << "test_writer: unknown option " << k << "\n";
      return 2;
    }
  }
  g_metadata.name = name;
  g_metadata.instance = "test instance of " + name;
  g_metadata.writer_id = "0b7d3a52-8f0e-4c43-9a51-6f1d2f6e9d11";
  if (!metadata_file.empty()) {
    std::ifstream in(metadata_file);
    std::stringstream s;
    s << in.rdbuf();
    auto m = writer_protocol::MetadataFromJson(s.str());
    if (!m.ok()) {
      std::cerr << "test_writer: " << m.status().ToString() << "\n";
      return 2;
    }
    g_metadata = *m;
  }
  if (uid >= 0 && ::setuid(static_cast<uid_t>(uid)) != 0) {
    std::perror("setuid");
    return 2;
  }
  if (g_fault_kind == "malformed") return ServeMalformed(name, run_dir);
  TestWriter w;
  ServeOptions o;
  o.name = name;
  o.run_dir = run_dir;
  o.freeze_grace = std::chrono::milliseconds(200);
  Status s = Serve(w, o);
  if (!s.ok()) {
    std::cerr << "test_writer: " << s.ToString() << "\n";
    return 1;
  }
  return 0;
}
