// SPDX-License-Identifier: Apache-2.0
// snapset::writer::Serve: the writer side of the protocol. The library owns
// the state machine (which event may come when), the held session's
// guarantees (a broken connection or an overrun freeze aborts the writer),
// and the answers to "status"; the application's Writer only does its
// application's part.
#include <snapset/writer.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <list>
#include <memory>
#include <mutex>
#include <thread>

#include "writer/line_channel.hpp"
#include "writer/writer_protocol.hpp"

namespace snapset::writer {

namespace {

using Clock = std::chrono::steady_clock;
using writer_protocol::LineChannel;
using writer_protocol::Reply;
using writer_protocol::Request;

// A connection that says nothing for this long is closed (outside a freeze,
// whose own deadline is shorter), so that a forgotten client cannot keep a
// thread forever.
constexpr auto kIdleLimit = std::chrono::minutes(15);
constexpr auto kReplyTimeout = std::chrono::seconds(10);

std::string Errno() { return std::strerror(errno); }

// SIGINT/SIGTERM while serving: one byte into this pipe wakes the accept loop.
int g_signal_pipe = -1;
void OnSignal(int) {
  const int saved = errno;
  if (g_signal_pipe >= 0) (void)!::write(g_signal_pipe, "s", 1);
  errno = saved;
}

class Server {
 public:
  Server(Writer& w, const ServeOptions& o) : writer_(w), options_(o) {}

  // One connection, until it closes. Runs on its own thread.
  void ServeConnection(LineChannel* channel, uint64_t id);

 private:
  Reply Handle(const Request& q, uint64_t conn);
  Reply Status_() const;
  Reply Fail(Failure f, std::string message) const;
  // Calls the handler for `q`, turning an escaped exception into a failure.
  Outcome Call(const Request& q);
  EventContext ContextFor(const Request& q) const;
  // Ends the session of `conn` (if it has one) by aborting the writer.
  void AbortSession(uint64_t conn, bool connection_lost);
  // The freeze overran: abort the writer itself.
  void SelfAbort(uint64_t conn);

  Writer& writer_;
  const ServeOptions& options_;
  std::mutex handler_mu_;  // handlers run one at a time
  mutable std::mutex mu_;  // the fields below
  State state_ = State::kStable;
  Failure last_failure_ = Failure::kNone;
  std::string last_error_;
  std::string set_id_;         // the current or last set
  uint64_t session_conn_ = 0;  // connection that owns the set; 0: none
  Clock::time_point freeze_deadline_{};
  std::vector<std::string> volumes_, components_;
  std::map<std::string, std::string> blob_;
  bool backed_up_ = false;  // backup-complete done for set_id_
};

EventContext Server::ContextFor(const Request& q) const {
  EventContext e;
  e.event = q.event;
  e.set_id = q.set_id;
  e.volumes = q.volumes;
  e.components = q.components;
  e.backup_type = q.backup_type;
  e.deadline = Clock::now() + std::chrono::milliseconds(q.timeout_ms > 0 ? q.timeout_ms : 60000);
  e.backup_blob = q.backup_blob;
  if (e.backup_blob.empty()) e.backup_blob = blob_;
  e.restore_status = q.restore_status;
  return e;
}

Outcome Server::Call(const Request& q) {
  EventContext e;
  {
    std::lock_guard lock(mu_);
    e = ContextFor(q);
  }
  try {
    switch (q.event) {
      case Event::kPrepareBackup:
        return writer_.OnPrepareBackup(e);
      case Event::kPrepareSnapshot:
        return writer_.OnPrepareSnapshot(e);
      case Event::kFreeze:
        return writer_.OnFreeze(e);
      case Event::kThaw:
        return writer_.OnThaw(e);
      case Event::kPostSnapshot:
        return writer_.OnPostSnapshot(e);
      case Event::kBackupComplete:
        return writer_.OnBackupComplete(e);
      case Event::kPreRestore:
        return writer_.OnPreRestore(e);
      case Event::kPostRestore:
        return writer_.OnPostRestore(e);
      case Event::kAbort:
        writer_.OnAbort(e);
        return {};
      case Event::kIdentify:
      case Event::kStatus:
        return {};
    }
  } catch (const std::exception& ex) {
    return Outcome::Fail(Failure::kNonRetryable,
                         std::string("the writer threw an exception: ") + ex.what());
  } catch (...) {
    return Outcome::Fail(Failure::kNonRetryable, "the writer threw an exception");
  }
  return {};
}

Reply Server::Status_() const {
  Reply r;
  r.state = state_;
  r.failure = last_failure_;
  r.message = last_error_;
  r.set_id = set_id_;
  return r;
}

Reply Server::Fail(Failure f, std::string message) const {
  Reply r;
  r.ok = false;
  r.state = state_;
  r.failure = f;
  r.message = std::move(message);
  return r;
}

void Server::AbortSession(uint64_t conn, bool connection_lost) {
  std::lock_guard handlers(handler_mu_);
  Request q;
  {
    std::lock_guard lock(mu_);
    if (session_conn_ != conn) return;
    q.event = Event::kAbort;
    q.set_id = set_id_;
    q.volumes = volumes_;
    q.components = components_;
    session_conn_ = 0;
    if (!IsFailed(state_)) state_ = State::kStable;
    if (connection_lost)
      last_error_ = "the coordinator's connection closed in the middle of set " + set_id_ +
                    "; the writer aborted the set";
  }
  (void)Call(q);
}

void Server::SelfAbort(uint64_t conn) {
  std::lock_guard handlers(handler_mu_);
  Request q;
  {
    std::lock_guard lock(mu_);
    if (session_conn_ != conn || state_ != State::kWaitingForThaw) return;
    q.event = Event::kAbort;
    q.set_id = set_id_;
    q.volumes = volumes_;
    q.components = components_;
    state_ = State::kFailedAtFreeze;
    last_failure_ = Failure::kTimeout;
    last_error_ = "not thawed by the end of the writer window; the writer thawed itself";
  }
  (void)Call(q);
}

// What may come when (VSS's writer state machine). Returns "" when `e` may
// come now, else what was expected. `owner`: this connection owns the set
// in progress; `busy`: another one does.
std::string OutOfOrder(Event e, State state, bool owner, bool busy) {
  switch (e) {
    case Event::kPrepareBackup:
      if (busy) return "the writer is in another set";
      if (owner) return "the writer is already in this connection's set";
      return "";
    case Event::kPrepareSnapshot:
      return owner && state == State::kStable ? "" : "expected after prepare-backup";
    case Event::kFreeze:
      return owner && state == State::kWaitingForFreeze ? "" : "expected after prepare-snapshot";
    case Event::kThaw:
      return owner && state == State::kWaitingForThaw ? "" : "expected after freeze";
    case Event::kPostSnapshot:
      return owner && state == State::kWaitingForPostSnapshot ? "" : "expected after thaw";
    case Event::kBackupComplete:
      return !busy && state == State::kWaitingForBackupComplete ? ""
                                                                : "expected after post-snapshot";
    case Event::kPreRestore:
    case Event::kPostRestore:
      return busy || owner ? "the writer is in a set" : "";
    default:
      return "";
  }
}

Reply Server::Handle(const Request& q, uint64_t conn) {
  if (q.event == Event::kStatus) {
    std::lock_guard lock(mu_);
    return Status_();
  }
  if (q.event == Event::kIdentify) {
    std::lock_guard handlers(handler_mu_);
    Reply r;
    try {
      r.metadata = writer_.Identify();
    } catch (const std::exception& ex) {
      std::lock_guard lock(mu_);
      return Fail(Failure::kNonRetryable, std::string("identify threw an exception: ") + ex.what());
    }
    std::lock_guard lock(mu_);
    r.state = state_;
    return r;
  }
  if (q.event == Event::kAbort) {
    {
      std::lock_guard lock(mu_);
      // Aborting a set the writer is not in (or no longer in) is a no-op.
      if (q.set_id.empty() || q.set_id != set_id_) return Status_();
      if (session_conn_ != 0) {
        conn = session_conn_;
      } else if (state_ == State::kWaitingForBackupComplete) {
        // A set cut and then failed (its record could not be written).
        session_conn_ = conn;
      } else {
        return Status_();
      }
    }
    AbortSession(conn, false);
    std::lock_guard lock(mu_);
    return Status_();
  }

  std::lock_guard handlers(handler_mu_);
  {
    std::lock_guard lock(mu_);
    const bool owner = session_conn_ != 0 && session_conn_ == conn;
    const bool busy = session_conn_ != 0 && session_conn_ != conn;
    if (q.event != Event::kPrepareBackup && q.event != Event::kPreRestore &&
        q.event != Event::kPostRestore && q.set_id.empty())
      return Fail(Failure::kNonRetryable, std::string(EventName(q.event)) + " needs a set_id");
    if (owner && q.set_id != set_id_)
      return Fail(Failure::kNonRetryable, std::string(EventName(q.event)) + " for set " + q.set_id +
                                              " on the connection of set " + set_id_);
    // Told twice (a requestor that retried): the backup is complete.
    if (q.event == Event::kBackupComplete && q.set_id == set_id_ && backed_up_) return Status_();
    if (q.event == Event::kBackupComplete && q.set_id != set_id_)
      return Fail(Failure::kNonRetryable, "backup-complete for set " + q.set_id +
                                              ", but the writer's last set is " +
                                              (set_id_.empty() ? "none" : set_id_));
    // A set whose writer already failed (or thawed itself) goes on failing
    // with the reason, not with "out of order".
    if (owner && IsFailed(state_))
      return Fail(last_failure_, std::string(EventName(q.event)) + ": the writer already " +
                                     std::string(StateName(state_)) + ": " + last_error_);
    const std::string expected = OutOfOrder(q.event, state_, owner, busy);
    if (!expected.empty())
      // Busy with another set: a later set may well succeed.
      return Fail(busy ? Failure::kRetryable : Failure::kNonRetryable,
                  std::string(EventName(q.event)) + " came in state " +
                      std::string(StateName(state_)) + ": " + expected);
    if (q.event == Event::kPrepareBackup) {
      if (q.set_id.empty()) return Fail(Failure::kNonRetryable, "prepare-backup needs a set_id");
      // A new set: the last one's failure and documents are forgotten.
      session_conn_ = conn;
      set_id_ = q.set_id;
      state_ = State::kStable;
      last_failure_ = Failure::kNone;
      last_error_.clear();
      blob_.clear();
      backed_up_ = false;
      volumes_ = q.volumes;
      components_ = q.components;
    }
  }
  const Outcome out = Call(q);
  std::lock_guard lock(mu_);
  for (const auto& [k, v] : out.backup_blob) blob_[k] = v;
  Reply r;
  r.backup_blob = out.backup_blob;
  if (!out.ok()) {
    state_ = FailedAt(q.event);
    last_failure_ = out.failure;
    last_error_ = out.message.empty() ? std::string(EventName(q.event)) + " failed" : out.message;
    r = Fail(out.failure, last_error_);
    r.backup_blob = out.backup_blob;
    return r;
  }
  switch (q.event) {
    case Event::kPrepareSnapshot:
      state_ = State::kWaitingForFreeze;
      break;
    case Event::kFreeze:
      state_ = State::kWaitingForThaw;
      freeze_deadline_ = Clock::now() +
                         std::chrono::milliseconds(q.timeout_ms > 0 ? q.timeout_ms : 60000) +
                         options_.freeze_grace;
      break;
    case Event::kThaw:
      state_ = State::kWaitingForPostSnapshot;
      break;
    case Event::kPostSnapshot:
      state_ = State::kWaitingForBackupComplete;
      session_conn_ = 0;  // the set is cut; its connection may close now
      break;
    case Event::kBackupComplete:
      state_ = State::kStable;
      backed_up_ = true;
      break;
    default:
      break;
  }
  r.state = state_;
  return r;
}

void Server::ServeConnection(LineChannel* channel, uint64_t id) {
  for (;;) {
    Clock::time_point deadline = Clock::now() + kIdleLimit;
    bool frozen = false;
    {
      std::lock_guard lock(mu_);
      if (session_conn_ == id && state_ == State::kWaitingForThaw) {
        deadline = freeze_deadline_;
        frozen = true;
      }
    }
    auto line = channel->ReadLine(deadline);
    if (!line.ok()) {
      if (frozen && channel->error() == LineChannel::Error::kTimeout) {
        SelfAbort(id);
        continue;  // the coordinator's thaw, if it comes, learns of it
      }
      break;
    }
    auto q = writer_protocol::DecodeRequest(*line);
    Reply r;
    if (!q.ok()) {
      std::lock_guard lock(mu_);
      r = Fail(Failure::kNonRetryable, "bad request: " + q.status().message());
    } else {
      r = Handle(*q, id);
    }
    if (!channel->Write(writer_protocol::EncodeReply(r), Clock::now() + kReplyTimeout).ok()) break;
  }
  AbortSession(id, true);
}

Status CheckPeer(int fd, const ServeOptions& o) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
    return Status::Internal("cannot read the peer's credentials: " + Errno());
  if (cred.uid == 0 || cred.uid == ::geteuid()) return Status::Ok();
  for (uid_t u : o.allowed_uids)
    if (cred.uid == u) return Status::Ok();
  return Status::InvalidArgument("uid " + std::to_string(cred.uid) +
                                 " may not drive this writer (allowed: root, uid " +
                                 std::to_string(::geteuid()) + " and ServeOptions::allowed_uids)");
}

std::string RunDir(const ServeOptions& o) {
  const char* env = std::getenv("SNAPSET_RUN_DIR");
  if (o.run_dir == ServeOptions{}.run_dir && env && *env) return env;
  return o.run_dir;
}

}  // namespace

Status Serve(Writer& writer, const ServeOptions& options) {
  if (!writer_protocol::IsValidWriterName(options.name))
    return Status::InvalidArgument("writer name \"" + options.name +
                                   "\" must be 1-64 letters, digits, '-', '_' or '.', not "
                                   "starting with '.'");
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(RunDir(options)) / "writers";
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::Internal("cannot create " + dir.string() + ": " + ec.message());
  const std::string path = (dir / (options.name + ".sock")).string();
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path)
    return Status::InvalidArgument("socket path " + path + " is too long for a Unix socket");
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);

  const int lfd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (lfd < 0) return Status::Internal("cannot create a socket: " + Errno());
  LineChannel listener(lfd);  // owns the fd
  // A socket file of a dead writer is replaced; one that answers is not.
  {
    const int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const bool live =
        probe >= 0 && ::connect(probe, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    if (probe >= 0) ::close(probe);
    if (live)
      return Status::Unavailable("another writer already serves " + path +
                                 "; stop it first, or choose another name");
    ::unlink(path.c_str());
  }
  const mode_t old_mask = ::umask(options.allowed_uids.empty() ? 0177 : 0111);
  const int bound = ::bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::umask(old_mask);
  if (bound != 0) return Status::Internal("cannot bind " + path + ": " + Errno());
  if (::listen(lfd, 16) != 0) return Status::Internal("cannot listen on " + path + ": " + Errno());

  int sig_pipe[2] = {-1, -1};
  struct sigaction old_int {
  }, old_term{};
  if (options.handle_signals) {
    if (::pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
      return Status::Internal("cannot create a pipe: " + Errno());
    g_signal_pipe = sig_pipe[1];
    struct sigaction sa {};
    sa.sa_handler = OnSignal;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGINT, &sa, &old_int);
    ::sigaction(SIGTERM, &sa, &old_term);
  }

  Server server(writer, options);
  struct Connection {
    std::unique_ptr<LineChannel> channel;
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done = std::make_shared<std::atomic<bool>>(false);
  };
  std::list<Connection> connections;
  uint64_t next_id = 1;
  Status result;
  for (;;) {
    if (options.stop && options.stop->load()) break;
    for (auto it = connections.begin(); it != connections.end();) {
      if (!it->done->load()) {
        ++it;
        continue;
      }
      it->thread.join();
      it = connections.erase(it);
    }
    pollfd fds[2] = {{lfd, POLLIN, 0}, {sig_pipe[0], POLLIN, 0}};
    const int ready = ::poll(fds, sig_pipe[0] >= 0 ? 2 : 1, 100);
    if (ready < 0 && errno != EINTR) {
      result = Status::Internal("poll failed: " + Errno());
      break;
    }
    if (ready > 0 && sig_pipe[0] >= 0 && (fds[1].revents & POLLIN)) break;
    if (ready <= 0 || !(fds[0].revents & POLLIN)) continue;
    const int cfd = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
    if (cfd < 0) continue;
    auto channel = std::make_unique<LineChannel>(cfd);
    if (Status peer = CheckPeer(cfd, options); !peer.ok()) {
      Reply r;
      r.ok = false;
      r.failure = Failure::kNonRetryable;
      r.message = peer.message();
      (void)channel->Write(writer_protocol::EncodeReply(r), Clock::now() + kReplyTimeout);
      continue;
    }
    LineChannel* raw = channel.get();
    const uint64_t id = next_id++;
    connections.push_back({std::move(channel), std::thread()});
    connections.back().thread = std::thread([&server, raw, id, done = connections.back().done] {
      server.ServeConnection(raw, id);
      done->store(true);
    });
  }
  // Closing the connections aborts a set in progress (ServeConnection's end).
  for (auto& c : connections) c.channel->Shutdown();
  for (auto& c : connections) c.thread.join();
  ::unlink(path.c_str());
  if (options.handle_signals) {
    ::sigaction(SIGINT, &old_int, nullptr);
    ::sigaction(SIGTERM, &old_term, nullptr);
    g_signal_pipe = -1;
    ::close(sig_pipe[0]);
    ::close(sig_pipe[1]);
  }
  return result;
}

}  // namespace snapset::writer
