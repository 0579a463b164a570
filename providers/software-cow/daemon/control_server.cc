#include "providers/software-cow/daemon/control_server.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <rapidjson/error/en.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <set>

#include "providers/software-cow/client/protocol.hpp"
#include "providers/software-cow/daemon/log.hpp"

#ifndef SNAPSET_VERSION
#define SNAPSET_VERSION "unknown"
#endif

namespace snapset::cow::daemon {

namespace fs = std::filesystem;
using protocol::Writer;

namespace {

std::string Errno(int e) { return std::strerror(e); }

bool SendAll(int fd, const std::string& s) {
  size_t sent = 0;
  while (sent < s.size()) {
    ssize_t n = ::send(fd, s.data() + sent, s.size() - sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    sent += size_t(n);
  }
  return true;
}

std::string OkReply(const std::function<void(Writer&)>& fill) {
  rapidjson::StringBuffer sb;
  Writer w(sb);
  w.StartObject();
  w.Key("ok");
  w.Bool(true);
  fill(w);
  w.EndObject();
  return sb.GetString();
}

void Str(Writer& w, const char* key, const std::string& v) {
  w.Key(key);
  w.String(v.data(), rapidjson::SizeType(v.size()));
}

// Every op with the request members it accepts ("op" aside). Unknown
// members are refused so that a misspelt one is not silently ignored.
const std::map<std::string, std::set<std::string>>& Ops() {
  static const std::map<std::string, std::set<std::string>> ops = {
      {protocol::kOpInfo, {}},
      {protocol::kOpVolumeCreate, {"name", "size_bytes", "origin", "chunk_size", "diff_max_bytes"}},
      {protocol::kOpVolumeDelete, {"name"}},
      {protocol::kOpVolumeList, {}},
      {protocol::kOpVolumeGet, {"name"}},
      {protocol::kOpSnapshotCreate, {"volume", "id"}},
      {protocol::kOpSnapshotDelete, {"volume", "id"}},
      {protocol::kOpSnapshotList, {"volume"}},
      {protocol::kOpWritesHold, {"volume", "max_hold_ms"}},
      {protocol::kOpWritesRelease, {"volume"}},
      {protocol::kOpRevert, {"volume", "id"}},
      {protocol::kOpChanged, {"volume", "from", "to"}},
  };
  return ops;
}

std::string OpList() {
  std::string out;
  for (const auto& [name, fields] : Ops()) out += (out.empty() ? "" : ", ") + name;
  return out;
}

}  // namespace

ControlServer::ControlServer(VolumeRegistry* registry, std::string socket_path)
    : registry_(registry), socket_path_(std::move(socket_path)) {}

ControlServer::~ControlServer() { Stop(); }

Status ControlServer::Listen() {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path_.size() >= sizeof addr.sun_path) {
    return Status::InvalidArgument("--socket " + socket_path_ + " is longer than " +
                                   std::to_string(sizeof addr.sun_path - 1) + " bytes");
  }
  std::memcpy(addr.sun_path, socket_path_.c_str(), socket_path_.size() + 1);

  fs::path parent = fs::path(socket_path_).parent_path();
  if (!parent.empty() && !fs::exists(parent)) {
    std::error_code ec;
    fs::create_directories(parent, ec);
    if (ec) return Status::Internal("cannot create " + parent.string() + ": " + ec.message());
    ::chmod(parent.c_str(), 0700);
  }

  struct stat st{};
  if (::lstat(socket_path_.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return Status::AlreadyExists(socket_path_ + " exists and is not a socket; remove it or "
                                   "choose another --socket");
    }
    int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int rc = ::connect(probe, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
    int e = errno;
    ::close(probe);
    if (rc == 0) {
      return Status::AlreadyExists("another snapset-cowd is serving " + socket_path_ +
                                   "; stop it first or choose another --socket");
    }
    if (e != ECONNREFUSED) {
      return Status::Internal("cannot probe the existing socket " + socket_path_ + ": " + Errno(e));
    }
    if (::unlink(socket_path_.c_str()) != 0) {
      return Status::Internal("cannot remove the stale socket " + socket_path_ + ": " + Errno(errno));
    }
    Log("replaced the stale socket " + socket_path_ + " left by a daemon that is gone");
  }

  listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return Status::Internal("socket(AF_UNIX): " + Errno(errno));
  // Created 0600 from the start: no window in which others may connect.
  mode_t old = ::umask(0177);
  int rc = ::bind(listen_fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  int e = errno;
  ::umask(old);
  if (rc != 0) return Status::Internal("cannot bind " + socket_path_ + ": " + Errno(e));
  ::chmod(socket_path_.c_str(), 0600);
  if (::listen(listen_fd_, 64) != 0) return Status::Internal("listen: " + Errno(errno));
  if (::pipe2(wake_, O_CLOEXEC) != 0) return Status::Internal("pipe: " + Errno(errno));
  return Status::Ok();
}

void ControlServer::Start() {
  acceptor_ = std::thread([this] { AcceptLoop(); });
}

void ControlServer::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  if (wake_[1] >= 0) {
    char c = 1;
    (void)!::write(wake_[1], &c, 1);
  }
  if (acceptor_.joinable()) acceptor_.join();
  if (listen_fd_ >= 0) {
    ::close(listen_fd_);
    listen_fd_ = -1;
    ::unlink(socket_path_.c_str());
  }
  std::list<std::unique_ptr<Conn>> conns;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& c : conns_) ::shutdown(c->fd, SHUT_RDWR);
    conns.swap(conns_);
  }
  for (auto& c : conns) {
    if (c->thread.joinable()) c->thread.join();
    ::close(c->fd);
  }
  for (int& fd : wake_) {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
}

void ControlServer::ReapLocked() {
  for (auto it = conns_.begin(); it != conns_.end();) {
    if ((*it)->done) {
      (*it)->thread.join();
      ::close((*it)->fd);
      it = conns_.erase(it);
    } else {
      ++it;
    }
  }
}

void ControlServer::AcceptLoop() {
  for (;;) {
    pollfd p[2] = {{listen_fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    if (::poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      Log("control socket: poll: " + Errno(errno));
      return;
    }
    if (p[1].revents) return;
    if (!(p[0].revents & POLLIN)) continue;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED) {
        Log("control socket: accept: " + Errno(errno));
        ::usleep(10000);  // EMFILE and friends: do not spin
      }
      continue;
    }
    std::lock_guard<std::mutex> lock(mu_);
    ReapLocked();
    if (stopping_) {
      ::close(fd);
      return;
    }
    auto c = std::make_unique<Conn>();
    c->id = next_id_++;
    c->fd = fd;
    Conn* raw = c.get();
    c->thread = std::thread([this, raw] { Serve(raw); });
    conns_.push_back(std::move(c));
  }
}

void ControlServer::Serve(Conn* c) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    Log("control connection: SO_PEERCRED: " + Errno(errno) + "; closed");
    SendAll(c->fd, protocol::ErrorReply(Status::Internal("cannot check your credentials")) + "\n");
    ::shutdown(c->fd, SHUT_RDWR);
    c->done = true;
    return;
  }
  const uid_t me = ::geteuid();
  if (cred.uid != 0 && cred.uid != me) {
    Log("control connection from pid " + std::to_string(cred.pid) + " uid " +
        std::to_string(cred.uid) + " refused: only root and uid " + std::to_string(me) +
        " may use this socket");
    SendAll(c->fd, protocol::ErrorReply(Status::ProviderVeto(
                       "permission denied: snapset-cowd accepts control connections only from "
                       "root or uid " + std::to_string(me) + ", and you are uid " +
                       std::to_string(cred.uid) + "; run the command as root")) +
                       "\n");
    ::shutdown(c->fd, SHUT_RDWR);
    c->done = true;
    return;
  }

  std::string buffer;
  char chunk[65536];
  bool open = true;
  while (open) {
    ssize_t n = ::recv(c->fd, chunk, sizeof chunk, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    buffer.append(chunk, size_t(n));
    size_t nl;
    while ((nl = buffer.find('\n')) != std::string::npos) {
      std::string line = buffer.substr(0, nl);
      buffer.erase(0, nl + 1);
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      if (!SendAll(c->fd, Handle(c->id, line) + "\n")) {
        open = false;
        break;
      }
    }
    if (buffer.size() > protocol::kMaxLineBytes) {
      SendAll(c->fd, protocol::ErrorReply(Status::InvalidArgument(
                         "request longer than " + std::to_string(protocol::kMaxLineBytes) +
                         " bytes without a newline; one JSON object per line")) +
                         "\n");
      break;
    }
  }
  registry_->ReleaseHoldsOf(c->id);
  ::shutdown(c->fd, SHUT_RDWR);
  c->done = true;
}

std::string ControlServer::Handle(uint64_t conn, const std::string& line) {
  rapidjson::Document doc;
  doc.Parse(line.data(), line.size());
  if (doc.HasParseError()) {
    return protocol::ErrorReply(Status::InvalidArgument(
        std::string("the request is not valid JSON (") +
        rapidjson::GetParseError_En(doc.GetParseError()) + " at offset " +
        std::to_string(doc.GetErrorOffset()) + "); send one JSON object per line"));
  }
  if (!doc.IsObject()) {
    return protocol::ErrorReply(Status::InvalidArgument(
        "the request must be a JSON object such as {\"op\":\"info\"}"));
  }
  auto op = protocol::RequiredString(doc, "op");
  if (!op.ok()) return protocol::ErrorReply(op.status());
  auto spec = Ops().find(*op);
  if (spec == Ops().end()) {
    return protocol::ErrorReply(Status::InvalidArgument("unknown op \"" + *op +
                                                        "\"; the ops are: " + OpList()));
  }
  for (const auto& m : doc.GetObject()) {
    std::string key(m.name.GetString(), m.name.GetStringLength());
    if (key != "op" && !spec->second.count(key)) {
      std::string allowed;
      for (const auto& f : spec->second) allowed += (allowed.empty() ? "" : ", ") + f;
      return protocol::ErrorReply(Status::InvalidArgument(
          "op \"" + *op + "\" takes no field \"" + key + "\"" +
          (allowed.empty() ? std::string(" (it takes none)") : " (it takes: " + allowed + ")")));
    }
  }

  // Field helpers: a wrong type is an error naming the field.
  Status bad;
  auto str = [&](const char* f, bool required) -> std::string {
    auto r = required ? protocol::RequiredString(doc, f) : protocol::OptionalString(doc, f);
    if (!r.ok()) {
      if (bad.ok()) bad = r.status();
      return {};
    }
    return *r;
  };
  auto uint = [&](const char* f) -> uint64_t {
    auto r = protocol::OptionalUint(doc, f, 0);
    if (!r.ok()) {
      if (bad.ok()) bad = r.status();
      return 0;
    }
    return *r;
  };
  auto fail = [&](const Status& s) { return protocol::ErrorReply(s.WithContext(*op)); };

  auto volume_json = [&](Writer& w, Volume& v) {
    w.StartObject();
    if (!v.open_error.ok()) {
      Str(w, "name", v.name);
      Str(w, "diff_path", v.diff_path);
      Str(w, "state", "broken");
      w.Key("error");
      w.StartObject();
      std::string_view code = CodeName(v.open_error.code());
      w.Key("code");
      w.String(code.data(), rapidjson::SizeType(code.size()));
      Str(w, "message", v.open_error.message());
      w.EndObject();
      w.EndObject();
      return;
    }
    CowVolumeStatus s = registry_->StatusOf(v);
    protocol::WriteVolumeMembers(w, s);
    Str(w, "state", "ok");
    {
      std::shared_lock<std::shared_mutex> life(v.life);
      if (v.cow) {
        Stats st = v.cow->stats();
        w.Key("slots_total");
        w.Uint64(st.slots_total);
        w.Key("slots_used");
        w.Uint64(st.slots_used);
        w.Key("group_commits");
        w.Uint64(st.group_commits);
        w.Key("index_memory_bytes");
        w.Uint64(st.index_memory_bytes);
      }
    }
    std::lock_guard<std::mutex> lock(v.mu);
    w.Key("origin_opens");
    w.Int(v.origin_opens);
    w.Key("snapshot_opens");
    w.Int(v.snapshot_opens);
    w.EndObject();
  };

  const std::string& o = *op;
  if (o == protocol::kOpInfo) {
    return OkReply([&](Writer& w) {
      Str(w, "version", SNAPSET_VERSION);
      w.Key("pid");
      w.Int64(::getpid());
      Str(w, "mount", registry_->mount_dir());
      Str(w, "state_dir", registry_->state_dir());
      Str(w, "socket", socket_path_);
      w.Key("volumes");
      w.Uint64(registry_->Count());
      w.Key("broken_volumes");
      w.Uint64(registry_->BrokenCount());
    });
  }
  if (o == protocol::kOpVolumeCreate) {
    std::string name = str("name", true);
    uint64_t size = uint("size_bytes");
    std::string origin = str("origin", false);
    uint64_t chunk = uint("chunk_size");
    uint64_t diff_max = uint("diff_max_bytes");
    if (!bad.ok()) return fail(bad);
    auto v = registry_->Create(name, size, origin, chunk, diff_max);
    if (!v.ok()) return fail(v.status());
    return OkReply([&](Writer& w) {
      w.Key("volume");
      volume_json(w, **v);
    });
  }
  if (o == protocol::kOpVolumeDelete) {
    std::string name = str("name", true);
    if (!bad.ok()) return fail(bad);
    Status s = registry_->Delete(name);
    if (!s.ok()) return fail(s);
    return OkReply([](Writer&) {});
  }
  if (o == protocol::kOpVolumeList) {
    return OkReply([&](Writer& w) {
      w.Key("volumes");
      w.StartArray();
      for (const auto& v : registry_->All()) volume_json(w, *v);
      w.EndArray();
    });
  }
  if (o == protocol::kOpVolumeGet) {
    std::string name = str("name", true);
    if (!bad.ok()) return fail(bad);
    auto v = registry_->Get(name);
    if (!v.ok()) return fail(v.status());
    return OkReply([&](Writer& w) {
      w.Key("volume");
      volume_json(w, **v);
    });
  }
  if (o == protocol::kOpSnapshotCreate) {
    std::string volume = str("volume", true);
    std::string id = str("id", false);
    if (!bad.ok()) return fail(bad);
    auto s = registry_->CreateSnapshot(volume, id);
    if (!s.ok()) return fail(s.status());
    auto v = registry_->Get(volume);
    if (!v.ok()) return fail(v.status());
    return OkReply([&](Writer& w) {
      w.Key("snapshot");
      w.StartObject();
      protocol::WriteSnapshotMembers(w, registry_->SnapshotOf(**v, *s));
      w.EndObject();
    });
  }
  if (o == protocol::kOpSnapshotDelete) {
    std::string volume = str("volume", true);
    std::string id = str("id", true);
    if (!bad.ok()) return fail(bad);
    Status s = registry_->DeleteSnapshot(volume, id);
    if (!s.ok()) return fail(s);
    return OkReply([](Writer&) {});
  }
  if (o == protocol::kOpSnapshotList) {
    std::string volume = str("volume", true);
    if (!bad.ok()) return fail(bad);
    auto list = registry_->ListSnapshots(volume);
    if (!list.ok()) return fail(list.status());
    auto v = registry_->Get(volume);
    if (!v.ok()) return fail(v.status());
    return OkReply([&](Writer& w) {
      w.Key("snapshots");
      w.StartArray();
      for (const auto& s : *list) {
        w.StartObject();
        protocol::WriteSnapshotMembers(w, registry_->SnapshotOf(**v, s));
        w.EndObject();
      }
      w.EndArray();
    });
  }
  if (o == protocol::kOpWritesHold) {
    std::string volume = str("volume", true);
    uint64_t max_hold = uint("max_hold_ms");
    if (!bad.ok()) return fail(bad);
    if (max_hold == 0 || max_hold > protocol::kMaxHoldMs) {
      return fail(Status::InvalidArgument(
          "max_hold_ms must be given, between 1 and " + std::to_string(protocol::kMaxHoldMs) +
          " (got " + std::to_string(max_hold) + ")"));
    }
    Status s = registry_->Hold(volume, conn, std::chrono::milliseconds(max_hold));
    if (!s.ok()) return fail(s);
    return OkReply([&](Writer& w) {
      w.Key("max_hold_ms");
      w.Uint64(max_hold);
    });
  }
  if (o == protocol::kOpWritesRelease) {
    std::string volume = str("volume", true);
    if (!bad.ok()) return fail(bad);
    bool released = false, expired = false;
    Status s = registry_->Release(volume, conn, &released, &expired);
    if (!s.ok()) return fail(s);
    return OkReply([&](Writer& w) {
      w.Key("released");
      w.Bool(released);
      w.Key("expired");
      w.Bool(expired);
    });
  }
  if (o == protocol::kOpRevert) {
    std::string volume = str("volume", true);
    std::string id = str("id", true);
    if (!bad.ok()) return fail(bad);
    Status s = registry_->Revert(volume, id);
    if (!s.ok()) return fail(s);
    return OkReply([](Writer&) {});
  }
  if (o == protocol::kOpChanged) {
    std::string volume = str("volume", true);
    std::string from = str("from", true);
    std::string to = str("to", false);
    if (!bad.ok()) return fail(bad);
    uint32_t chunk = 0;
    auto runs = registry_->Changed(volume, from, to, &chunk);
    if (!runs.ok()) return fail(runs.status());
    return OkReply([&](Writer& w) {
      w.Key("chunk_size");
      w.Uint(chunk);
      w.Key("runs");
      w.StartArray();
      for (const auto& r : *runs) {
        w.StartObject();
        w.Key("first");
        w.Uint64(r.first);
        w.Key("count");
        w.Uint64(r.count);
        w.EndObject();
      }
      w.EndArray();
    });
  }
  return protocol::ErrorReply(Status::Internal("op \"" + o + "\" has no handler"));
}

}  // namespace snapset::cow::daemon
