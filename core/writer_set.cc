// SPDX-License-Identifier: Apache-2.0
#include "core/writer_set.hpp"

#include <pwd.h>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/express_writer.hpp"
#include "core/file_safety.hpp"
#include "core/hook_writers.hpp"
#include "core/socket_writer.hpp"
#include "writer/writer_protocol.hpp"

namespace snapset {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using writer::Event;
using writer::State;

// Connecting to a socket is local and quick; a writer that does not accept
// within this is treated as hung.
constexpr auto kConnectTimeout = std::chrono::seconds(2);
// `writers list` must answer even when a writer hangs.
constexpr auto kListTimeout = std::chrono::seconds(3);
// Thaw runs even when the window is (nearly) used up, as for hooks.
constexpr auto kMinThawTime = std::chrono::seconds(5);

std::string Lane(const std::string& name) { return "writer:" + name; }

using EventArgs = WriterEventArgs;

// The state a writer is in after `e` succeeded, for writers that do not
// say (express writers and hooks).
State StateAfter(Event e, State before) {
  switch (e) {
    case Event::kPrepareBackup:
      return State::kStable;
    case Event::kPrepareSnapshot:
      return State::kWaitingForFreeze;
    case Event::kFreeze:
      return State::kWaitingForThaw;
    case Event::kThaw:
      return State::kWaitingForPostSnapshot;
    case Event::kPostSnapshot:
      return State::kWaitingForBackupComplete;
    case Event::kBackupComplete:
    case Event::kAbort:
      return State::kStable;
    default:
      return before;
  }
}

// A writer's refusal as a Status: WriterTimeout for the timeout kind,
// WriterFailed otherwise; `detail` goes after the kind ("kind, detail").
Status WriterRefused(const std::string& writer, std::string_view event, writer::Failure f,
                     const std::string& detail, const std::string& message) {
  return Status(f == writer::Failure::kTimeout ? Code::kWriterTimeout : Code::kWriterFailed,
                "writer " + writer + " failed " + std::string(event) + " (" +
                    std::string(writer::FailureName(f)) + detail + "): " + message);
}

std::vector<std::pair<std::string, std::string>> WriterSockets(const std::string& run_dir) {
  std::vector<std::pair<std::string, std::string>> found;  // name, path
  std::error_code ec;
  const fs::path dir = fs::path(run_dir) / "writers";
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const fs::path p = entry.path();
    if (p.extension() != ".sock") continue;
    const std::string name = p.stem().string();
    if (!writer_protocol::IsValidWriterName(name)) continue;
    std::error_code type_ec;
    if (!fs::is_socket(entry.symlink_status(type_ec))) continue;
    found.emplace_back(name, p.string());
  }
  std::sort(found.begin(), found.end());
  return found;
}

}  // namespace

class WriterSet::Participant {
 public:
  explicit Participant(std::string name) : name_(std::move(name)) {}
  virtual ~Participant() = default;
  const std::string& name() const { return name_; }
  virtual const char* kind() const = 0;
  virtual const writer::Metadata* metadata() const { return nullptr; }
  // Runs `e`; OK, or an error naming the writer and the event. Updates state_.
  virtual Status Run(Event e, const EventArgs& a, Clock::time_point deadline, Timeline* t) = 0;
  // Releases whatever the writer holds for the set; never fails.
  virtual void Abort(const EventArgs& a, Clock::time_point deadline, Timeline* t) = 0;

  State state() const { return state_; }
  const std::map<std::string, std::string>& blob() const { return blob_; }

 protected:
  std::string name_;
  State state_ = State::kStable;
  std::map<std::string, std::string> blob_;
};

namespace {

// A writer process, over its socket; the connection is its held session.
class ProcessWriter : public WriterSet::Participant {
 public:
  ProcessWriter(std::unique_ptr<SocketWriter> conn, writer::Metadata md)
      : Participant(conn->name()), conn_(std::move(conn)), metadata_(std::move(md)) {}
  const char* kind() const override { return "process"; }
  const writer::Metadata* metadata() const override { return &metadata_; }

  Status Run(Event e, const EventArgs& a, Clock::time_point deadline, Timeline* t) override {
    const std::string event(writer::EventName(e));
    if (t) t->Begin(Lane(name_), event);
    Status s = Call(e, a, deadline);
    if (t) t->End(Lane(name_), event, s);
    return s;
  }

  void Abort(const EventArgs& a, Clock::time_point deadline, Timeline* t) override {
    if (!closed_) {
      if (t) t->Begin(Lane(name_), "abort");
      Status s = Call(Event::kAbort, a, deadline);
      if (t) t->End(Lane(name_), "abort", s);
    }
    Close();
  }

  void Close() {
    closed_ = true;
    conn_->Close();
  }

 private:
  Status Call(Event e, const EventArgs& a, Clock::time_point deadline) {
    const std::string event(writer::EventName(e));
    writer_protocol::Request q;
    q.event = e;
    q.set_id = a.set_id;
    q.volumes = a.volumes;
    q.components = a.components;
    q.timeout_ms = std::max<int64_t>(
        1, std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count());
    auto reply = conn_->Call(q, deadline);
    if (!reply.ok()) {
      closed_ = true;  // the channel closed itself: the writer aborts on its side
      if (e != Event::kAbort) state_ = writer::FailedAt(e);
      return reply.status();
    }
    for (const auto& [k, v] : reply->backup_blob) blob_[k] = v;
    state_ = reply->state;
    if (!reply->ok || writer::IsFailed(reply->state)) {
      const writer::Failure f = reply->ok ? writer::Failure::kInconsistentSnapshot : reply->failure;
      return WriterRefused(name_, event, f,
                           ", state " + std::string(writer::StateName(reply->state)),
                           reply->message.empty() ? "no reason given" : reply->message);
    }
    return Status::Ok();
  }

  std::unique_ptr<SocketWriter> conn_;
  writer::Metadata metadata_;
  bool closed_ = false;
};

// An express writer: a declaration and a command per event.
class ExpressParticipant : public WriterSet::Participant {
 public:
  explicit ExpressParticipant(ExpressWriter w) : Participant(w.name), w_(std::move(w)) {}
  const char* kind() const override { return "express"; }
  const writer::Metadata* metadata() const override { return &w_.metadata; }

  Status Run(Event e, const EventArgs& a, Clock::time_point deadline, Timeline* t) override {
    Status s = RunCommand(e, a, deadline, t);
    state_ = s.ok() ? StateAfter(e, state_) : writer::FailedAt(e);
    return s;
  }

  void Abort(const EventArgs& a, Clock::time_point deadline, Timeline* t) override {
    // Never left frozen: a writer that froze is thawed first.
    if (state_ == State::kWaitingForThaw) (void)RunCommand(Event::kThaw, a, deadline, t);
    (void)RunCommand(Event::kAbort, a, deadline, t);
    if (!writer::IsFailed(state_)) state_ = State::kStable;
  }

 private:
  Status RunCommand(Event e, const EventArgs& a, Clock::time_point deadline, Timeline* t) {
    auto it = w_.commands.find(e);
    if (it == w_.commands.end()) return Status::Ok();
    const std::string event(writer::EventName(e));
    if (t) t->Begin(Lane(name_), event);
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    Status s = RunWriterCommand(it->second, "the " + event + " command of express writer " + name_,
                                event.c_str(), a.set_id, a.volumes, deadline,
                                std::to_string(std::max<int64_t>(0, left.count())) + " ms");
    if (t) t->End(Lane(name_), event, s);
    return s;
  }

  ExpressWriter w_;
};

// The hooks of writers.d together: they run in name order and thaw in
// reverse, as they always did (core/hook_writers.hpp).
class HookParticipant : public WriterSet::Participant {
 public:
  explicit HookParticipant(HookWriters hooks) : Participant("hooks"), hooks_(std::move(hooks)) {}
  const char* kind() const override { return "hook"; }

  Status Run(Event e, const EventArgs& a, Clock::time_point deadline, Timeline* t) override {
    Status s;
    if (e == Event::kFreeze) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
      s = hooks_.Freeze(a.set_id, a.volumes, t, std::max(left, std::chrono::milliseconds(1)));
    } else if (e == Event::kThaw) {
      s = hooks_.Thaw(t);
    }
    state_ = s.ok() ? StateAfter(e, state_) : writer::FailedAt(e);
    return s;
  }

  void Abort(const EventArgs&, Clock::time_point, Timeline* t) override {
    (void)hooks_.Thaw(t);  // thaws only the hooks that froze
    if (!writer::IsFailed(state_)) state_ = State::kStable;
  }

 private:
  HookWriters hooks_;
};

}  // namespace

Result<std::vector<uid_t>> LoadAllowedWriterUsers(const std::string& config_dir) {
  const std::string path = (fs::path(config_dir) / "writers.json").string();
  std::error_code ec;
  if (!fs::exists(path, ec)) return std::vector<uid_t>{};
  SNAPSET_RETURN_IF_ERROR(CheckTrustedFile(path, "writer configuration"));
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  rapidjson::Document d;
  const std::string json = text.str();
  d.Parse(json.data(), json.size());
  auto bad = [&](const std::string& what) { return Status::Config(path + ": " + what); };
  if (d.HasParseError())
    return bad(std::string("not JSON: ") + rapidjson::GetParseError_En(d.GetParseError()));
  if (!d.IsObject()) return bad("must be a JSON object, e.g. {\"allowed_users\": [\"postgres\"]}");
  std::vector<uid_t> uids;
  for (auto m = d.MemberBegin(); m != d.MemberEnd(); ++m) {
    const std::string key = m->name.GetString();
    if (key != "allowed_users") return bad("unknown key \"" + key + "\" (it has allowed_users)");
    if (!m->value.IsArray()) return bad("allowed_users must be a list of user names or uids");
    for (const auto& u : m->value.GetArray()) {
      if (u.IsUint()) {
        uids.push_back(static_cast<uid_t>(u.GetUint()));
        continue;
      }
      if (!u.IsString()) return bad("allowed_users must be a list of user names or uids");
      passwd pw{}, *found = nullptr;
      char buf[4096];
      if (::getpwnam_r(u.GetString(), &pw, buf, sizeof buf, &found) != 0 || !found)
        return bad(std::string("allowed_users: there is no user \"") + u.GetString() + "\"");
      uids.push_back(found->pw_uid);
    }
  }
  return uids;
}

WriterSet::~WriterSet() {
  if (in_set_) Abort();
}

Result<std::unique_ptr<WriterSet>> WriterSet::Discover(const WriterSetOptions& options,
                                                       std::shared_ptr<Timeline> timeline) {
  std::unique_ptr<WriterSet> set(new WriterSet());
  set->options_ = options;
  set->timeline_ = std::move(timeline);
  Timeline* t = set->timeline_.get();

  auto allowed = LoadAllowedWriterUsers(options.config_dir);
  if (!allowed.ok()) return allowed.status();
  if (!options.run_dir.empty()) {
    for (const auto& [name, path] : WriterSockets(options.run_dir)) {
      auto conn = SocketWriter::Connect(name, path, *allowed, Clock::now() + kConnectTimeout);
      if (!conn.ok()) {
        // A writer that died leaves its socket; a socket of a stranger is
        // not a writer. Neither may block every set.
        if (conn.status().code() == Code::kUnavailable || conn.status().code() == Code::kConfig) {
          if (t) t->Instant(Lane(name), "skipped", conn.status().message());
          continue;
        }
        return conn.status();
      }
      const auto deadline = Clock::now() + options.event_timeout;
      writer_protocol::Request q;
      q.event = Event::kIdentify;
      q.timeout_ms = options.event_timeout.count();
      if (t) t->Begin(Lane(name), "identify");
      auto reply = (*conn)->Call(q, deadline);
      Status s = reply.ok() ? Status::Ok() : reply.status();
      if (s.ok() && !reply->ok)
        s = Status::WriterFailed("writer " + name + " failed identify (" +
                                 std::string(writer::FailureName(reply->failure)) +
                                 "): " + reply->message);
      if (s.ok() && !reply->metadata)
        s = Status::WriterFailed("writer " + name + " answered identify without metadata");
      if (t) t->End(Lane(name), "identify", s);
      if (!s.ok()) return s;
      set->writers_.push_back(std::make_unique<ProcessWriter>(std::move(*conn), *reply->metadata));
    }
  }
  auto express = DiscoverExpressWriters(options.config_dir);
  if (!express.ok()) return express.status();
  for (auto& w : *express)
    set->writers_.push_back(std::make_unique<ExpressParticipant>(std::move(w)));
  auto hooks = HookWriters::Discover(options.config_dir);
  if (!hooks.ok()) return hooks.status();
  if (!hooks->empty())
    set->writers_.push_back(std::make_unique<HookParticipant>(std::move(*hooks)));
  return set;
}

bool WriterSet::empty() const { return writers_.empty(); }

std::vector<std::pair<std::string, writer::Metadata>> WriterSet::metadata() const {
  std::vector<std::pair<std::string, writer::Metadata>> out;
  for (const auto& w : writers_)
    if (const auto* m = w->metadata()) out.emplace_back(w->name(), *m);
  return out;
}

Status WriterSet::PrepareBackup(const std::string& set_id, const std::vector<std::string>& volumes,
                                const std::map<std::string, std::vector<std::string>>& components) {
  args_ = {set_id, volumes, {}};
  components_ = components;
  in_set_ = true;
  return Send(Event::kPrepareBackup, Clock::now() + options_.event_timeout);
}

Status WriterSet::PrepareSnapshot() {
  return Send(Event::kPrepareSnapshot, Clock::now() + options_.event_timeout);
}

Status WriterSet::Freeze() {
  if (options_.window.count() <= 0)
    return Status::InvalidArgument("the writer window must be positive, not " +
                                   std::to_string(options_.window.count()) + " ms");
  window_end_ = Clock::now() + options_.window;
  frozen_ = true;
  return Send(Event::kFreeze, window_end_);
}

Status WriterSet::Thaw() {
  // Every writer that froze is thawed, even when one fails; the first
  // failure is the answer. A writer that answers after the window ended
  // overran it.
  // Thaw gets a few seconds even when the window is used up, so that the
  // writer can say what happened (it may have thawed itself); answering
  // late is still an overrun.
  const auto deadline = std::max(window_end_, Clock::now() + kMinThawTime);
  Status first;
  for (auto& w : writers_) {
    if (w->state() != State::kWaitingForThaw) continue;
    Status s = w->Run(Event::kThaw, ArgsFor(*w), deadline, timeline_.get());
    if (!s.ok() && first.ok()) first = s;
  }
  frozen_ = false;
  if (!first.ok()) return first;
  if (Clock::now() > window_end_)
    return Status::WriterTimeout("the writers were not thawed within the writer window of " +
                                 std::to_string(options_.window.count()) + " ms");
  return Status::Ok();
}

Status WriterSet::PostSnapshot() {
  Status s = Send(Event::kPostSnapshot, Clock::now() + options_.event_timeout);
  if (s.ok()) in_set_ = false;  // the set is the writers' to back up now
  return s;
}

WriterEventArgs WriterSet::ArgsFor(const Participant& w) const {
  WriterEventArgs a = args_;
  if (auto it = components_.find(w.name()); it != components_.end()) a.components = it->second;
  return a;
}

Status WriterSet::Send(Event e, Clock::time_point deadline) {
  for (auto& w : writers_) {
    Status s = w->Run(e, ArgsFor(*w), deadline, timeline_.get());
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

void WriterSet::Abort() {
  // Reverse order, as thaw: the last to freeze is released first. Before
  // prepare-backup no writer is in the set: there is nothing to abort.
  for (auto it = writers_.rbegin(); in_set_ && it != writers_.rend(); ++it)
    (*it)->Abort(ArgsFor(**it), Clock::now() + options_.event_timeout, timeline_.get());
  frozen_ = false;
  in_set_ = false;
}

std::vector<WriterRecord> WriterSet::Records() const {
  std::vector<WriterRecord> out;
  for (const auto& w : writers_) {
    WriterRecord r;
    r.name = w->name();
    r.kind = w->kind();
    r.state = std::string(writer::StateName(w->state()));
    if (const auto* m = w->metadata()) r.metadata_json = writer_protocol::MetadataToJson(*m);
    r.backup_blob_json = writer_protocol::BlobToJson(w->blob());
    out.push_back(std::move(r));
  }
  return out;
}

namespace {

// One event outside a set's own connection, to each recorded writer.
Status SendToRecordedWriters(const WriterSetOptions& options, Event event,
                             const std::string& set_id, const std::vector<std::string>& volumes,
                             const std::vector<WriterRecord>& writers,
                             const std::string& restore_status = "") {
  auto allowed = LoadAllowedWriterUsers(options.config_dir);
  if (!allowed.ok()) return allowed.status();
  const std::string name(writer::EventName(event));
  Status first;
  auto keep = [&](Status s) {
    if (!s.ok() && first.ok()) first = std::move(s);
  };
  for (const auto& w : writers) {
    const auto deadline = Clock::now() + options.event_timeout;
    if (w.kind == "process") {
      const std::string path =
          (fs::path(options.run_dir) / "writers" / (w.name + ".sock")).string();
      auto conn = SocketWriter::Connect(w.name, path, *allowed, deadline);
      if (!conn.ok()) {
        keep(Status::Unavailable(conn.status().message() + "; it did not get " + name +
                                 " for set " + set_id));
        continue;
      }
      writer_protocol::Request q;
      q.event = event;
      q.set_id = set_id;
      q.volumes = volumes;
      q.timeout_ms = options.event_timeout.count();
      q.restore_status = restore_status;
      if (auto blob = writer_protocol::BlobFromJson(w.backup_blob_json); blob.ok())
        q.backup_blob = std::move(*blob);
      auto reply = (*conn)->Call(q, deadline);
      if (!reply.ok()) {
        keep(reply.status());
      } else if (!reply->ok) {
        keep(WriterRefused(w.name, name, reply->failure, "", reply->message));
      }
    } else if (w.kind == "express") {
      auto declared = LoadExpressWriter(
          (fs::path(options.config_dir) / "writers.d" / (w.name + ".json")).string());
      if (!declared.ok()) {
        keep(declared.status());
        continue;
      }
      auto it = declared->commands.find(event);
      if (it == declared->commands.end()) continue;
      keep(RunWriterCommand(it->second, "the " + name + " command of express writer " + w.name,
                            name.c_str(), set_id, volumes, deadline,
                            std::to_string(options.event_timeout.count()) + " ms"));
    }
  }
  return first;
}

}  // namespace

Status SendBackupComplete(const WriterSetOptions& options, const std::string& set_id,
                          const std::vector<WriterRecord>& writers) {
  Status s = SendToRecordedWriters(options, Event::kBackupComplete, set_id, {}, writers);
  if (s.code() == Code::kUnavailable)
    return Status::Unavailable(s.message() + " (its backup is not marked complete there)");
  return s;
}

Status SendRestoreEvent(const WriterSetOptions& options, Event event, const std::string& set_id,
                        const std::vector<std::string>& volumes,
                        const std::vector<WriterRecord>& writers,
                        const std::string& restore_status) {
  return SendToRecordedWriters(options, event, set_id, volumes, writers, restore_status);
}

Result<std::vector<WriterStatus>> ListWriters(const WriterSetOptions& options) {
  auto allowed = LoadAllowedWriterUsers(options.config_dir);
  if (!allowed.ok()) return allowed.status();
  std::vector<WriterStatus> out;
  if (!options.run_dir.empty()) {
    for (const auto& [name, path] : WriterSockets(options.run_dir)) {
      WriterStatus w;
      w.name = name;
      w.kind = "process";
      w.location = path;
      const auto deadline = Clock::now() + kListTimeout;
      auto conn = SocketWriter::Connect(name, path, *allowed, deadline);
      if (!conn.ok()) {
        w.state = "unreachable";
        w.last_error = conn.status().message();
        out.push_back(std::move(w));
        continue;
      }
      w.pid = (*conn)->pid();
      writer_protocol::Request q;
      q.event = Event::kStatus;
      q.timeout_ms = kListTimeout.count() * 1000;
      auto status = (*conn)->Call(q, deadline);
      if (!status.ok()) {
        w.state = "unreachable";
        w.last_error = status.status().message();
        out.push_back(std::move(w));
        continue;
      }
      w.state = std::string(writer::StateName(status->state));
      if (status->failure != writer::Failure::kNone)
        w.failure = std::string(writer::FailureName(status->failure));
      w.last_error = status->message;
      w.set_id = status->set_id;
      q.event = Event::kIdentify;
      auto id = (*conn)->Call(q, deadline);
      if (id.ok() && id->ok && id->metadata) w.metadata = id->metadata;
      out.push_back(std::move(w));
    }
  }
  auto express = DiscoverExpressWriters(options.config_dir);
  if (!express.ok()) return express.status();
  for (const auto& e : *express) {
    WriterStatus w;
    w.name = e.name;
    w.kind = "express";
    w.state = "stable";
    w.location = e.path;
    w.metadata = e.metadata;
    out.push_back(std::move(w));
  }
  auto hooks = HookWriters::Discover(options.config_dir);
  if (!hooks.ok()) return hooks.status();
  for (const auto& h : hooks->hooks()) {
    WriterStatus w;
    w.name = fs::path(h).filename().string();
    w.kind = "hook";
    w.state = "stable";
    w.location = h;
    out.push_back(std::move(w));
  }
  return out;
}

}  // namespace snapset
