#include "providers/software-cow/client/cowd_client.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "providers/software-cow/client/protocol.hpp"

namespace snapset::cow {

namespace {

using protocol::Writer;
using Clock = std::chrono::steady_clock;

std::string Errno(int e) { return std::strerror(e); }

// Parses a reply line: an OK reply becomes the document, an error reply
// the Status it carries.
Result<rapidjson::Document> ParseReply(Result<std::string> line) {
  if (!line.ok()) return line.status();
  rapidjson::Document doc;
  doc.Parse(line->data(), line->size());
  if (doc.HasParseError() || !doc.IsObject()) {
    return Status::Internal("snapset-cowd sent a reply that is not a JSON object: " +
                            line->substr(0, 200));
  }
  auto ok = doc.FindMember("ok");
  if (ok == doc.MemberEnd() || !ok->value.IsBool()) {
    return Status::Internal("snapset-cowd sent a reply without \"ok\": " + line->substr(0, 200));
  }
  if (ok->value.GetBool()) return doc;
  auto code = protocol::OptionalString(doc, "code");
  auto message = protocol::OptionalString(doc, "message");
  Code c = code.ok() ? protocol::CodeFromName(*code) : Code::kInternal;
  if (c == Code::kOk) c = Code::kInternal;
  return Status(c, message.ok() && !message->empty() ? *message
                                                    : std::string("snapset-cowd reported an error without a message"));
}

// A request: {"op": op, <members written by fill>}.
template <typename Fill>
std::string Request(const char* op, Fill fill) {
  rapidjson::StringBuffer sb;
  Writer w(sb);
  w.StartObject();
  w.Key("op");
  w.String(op);
  fill(w);
  w.EndObject();
  return sb.GetString();
}

void Member(Writer& w, const char* k, const std::string& v) {
  w.Key(k);
  w.String(v.data(), rapidjson::SizeType(v.size()));
}

Status Malformed(const char* what, const Status& why) {
  return Status::Internal(std::string("snapset-cowd sent a malformed ") + what + ": " +
                          why.message());
}

}  // namespace

Result<std::unique_ptr<CowdClient>> CowdClient::Connect(const std::string& socket_path,
                                                        std::chrono::milliseconds timeout) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.empty() || socket_path.size() >= sizeof addr.sun_path) {
    return Status::InvalidArgument("control socket path \"" + socket_path +
                                   "\" is empty or longer than " +
                                   std::to_string(sizeof addr.sun_path - 1) + " bytes");
  }
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::Internal("socket(AF_UNIX): " + Errno(errno));
  int rc;
  do {
    rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    int e = errno;
    ::close(fd);
    if (e == EACCES || e == EPERM) {
      return Status::ProviderVeto("cannot connect to snapset-cowd at " + socket_path + ": " +
                                  Errno(e) + "; the control socket is for root and the "
                                  "daemon's own user only");
    }
    return Status::Unavailable("snapset-cowd is not running (nobody listens on " + socket_path +
                               ": " + Errno(e) + "); start it with `snapset-cowd --socket " +
                               socket_path + "` (or: systemctl start snapset-cowd)");
  }
  return std::unique_ptr<CowdClient>(new CowdClient(fd, timeout, socket_path));
}

CowdClient::CowdClient(int fd, std::chrono::milliseconds timeout, std::string socket_path)
    : fd_(fd), timeout_(timeout), socket_path_(std::move(socket_path)) {}

CowdClient::~CowdClient() {
  if (fd_ >= 0) ::close(fd_);
}

Result<std::string> CowdClient::Call(const std::string& request_json) {
  std::lock_guard<std::mutex> lock(mu_);
  if (fd_ < 0) {
    return Status::Unavailable("the connection to snapset-cowd at " + socket_path_ +
                               " was closed after an earlier error; connect again");
  }
  auto drop = [&] {
    ::close(fd_);
    fd_ = -1;
    buffer_.clear();
  };
  auto fail = [&](Status s) -> Result<std::string> {
    drop();
    return s;
  };
  const auto deadline = Clock::now() + timeout_;
  auto wait = [&](short events) -> int {  // 1 ready, 0 timed out, -1 error
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) return 0;
      pollfd p{fd_, events, 0};
      int n = ::poll(&p, 1, int(std::min<int64_t>(left.count(), 1 << 30)));
      if (n > 0) return 1;
      if (n < 0 && errno != EINTR) return -1;
    }
  };
  const std::string timeout_message = "snapset-cowd at " + socket_path_ + " did not answer within " +
                                      std::to_string(timeout_.count()) + " ms";

  std::string out = request_json;
  out.push_back('\n');
  size_t sent = 0;
  bool send_failed = false;
  while (sent < out.size()) {
    int w = wait(POLLOUT);
    if (w == 0) return fail(Status::Unavailable(timeout_message));
    if (w < 0) return fail(Status::Unavailable("poll on the snapset-cowd socket: " + Errno(errno)));
    ssize_t n = ::send(fd_, out.data() + sent, out.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      // The daemon may have refused us with a reply and closed: read it.
      send_failed = true;
      break;
    }
    sent += size_t(n);
  }

  for (;;) {
    size_t nl = buffer_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      if (send_failed) drop();  // the connection is unusable after this
      return line;
    }
    if (buffer_.size() > protocol::kMaxLineBytes) {
      return fail(Status::Internal("snapset-cowd sent a reply line longer than " +
                                   std::to_string(protocol::kMaxLineBytes) + " bytes"));
    }
    int w = wait(POLLIN);
    if (w == 0) return fail(Status::Unavailable(timeout_message));
    if (w < 0) return fail(Status::Unavailable("poll on the snapset-cowd socket: " + Errno(errno)));
    char buf[65536];
    ssize_t n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) {
      return fail(Status::Unavailable("snapset-cowd at " + socket_path_ +
                                      " closed the connection without a reply (did it exit? "
                                      "see its log)"));
    }
    buffer_.append(buf, size_t(n));
  }
}

Result<DaemonInfo> CowdClient::Info() {
  auto doc = ParseReply(Call(Request(protocol::kOpInfo, [](Writer&) {})));
  if (!doc.ok()) return doc.status();
  DaemonInfo info;
  auto version = protocol::OptionalString(*doc, "version");
  auto mount = protocol::OptionalString(*doc, "mount");
  auto state = protocol::OptionalString(*doc, "state_dir");
  auto pid = protocol::OptionalUint(*doc, "pid", 0);
  for (const Status* s : {&version.status(), &mount.status(), &state.status(), &pid.status()}) {
    if (!s->ok()) return Malformed("info reply", *s);
  }
  info.version = *version;
  info.mount = *mount;
  info.state_dir = *state;
  info.pid = int64_t(*pid);
  return info;
}

Result<CowVolumeStatus> CowdClient::CreateVolume(const CreateVolumeRequest& r) {
  auto doc = ParseReply(Call(Request(protocol::kOpVolumeCreate, [&](Writer& w) {
    Member(w, "name", r.name);
    if (r.size_bytes != 0) {
      w.Key("size_bytes");
      w.Uint64(r.size_bytes);
    }
    if (!r.origin.empty()) Member(w, "origin", r.origin);
    if (r.chunk_size != 0) {
      w.Key("chunk_size");
      w.Uint(r.chunk_size);
    }
    if (r.diff_max_bytes != 0) {
      w.Key("diff_max_bytes");
      w.Uint64(r.diff_max_bytes);
    }
  })));
  if (!doc.ok()) return doc.status();
  auto v = doc->FindMember("volume");
  if (v == doc->MemberEnd()) return Status::Internal("snapset-cowd's volume.create reply lacks \"volume\"");
  auto parsed = protocol::ParseVolume(v->value);
  if (!parsed.ok()) return Malformed("volume", parsed.status());
  return parsed;
}

Status CowdClient::DeleteVolume(const std::string& name) {
  auto doc = ParseReply(Call(Request(protocol::kOpVolumeDelete, [&](Writer& w) {
    Member(w, "name", name);
  })));
  return doc.ok() ? Status::Ok() : doc.status();
}

Result<std::vector<CowVolumeStatus>> CowdClient::ListVolumes() {
  auto doc = ParseReply(Call(Request(protocol::kOpVolumeList, [](Writer&) {})));
  if (!doc.ok()) return doc.status();
  auto arr = doc->FindMember("volumes");
  if (arr == doc->MemberEnd() || !arr->value.IsArray()) {
    return Status::Internal("snapset-cowd's volume.list reply lacks the \"volumes\" array");
  }
  std::vector<CowVolumeStatus> out;
  for (const auto& v : arr->value.GetArray()) {
    // A volume whose diff area could not be opened carries "error" and no
    // geometry; CowVolumeStatus cannot say so, so it is left out here
    // (GetVolume on its name returns the error).
    if (v.IsObject() && v.HasMember("error")) continue;
    auto parsed = protocol::ParseVolume(v);
    if (!parsed.ok()) return Malformed("volume", parsed.status());
    out.push_back(std::move(parsed).value());
  }
  return out;
}

Result<CowVolumeStatus> CowdClient::GetVolume(const std::string& name) {
  auto doc = ParseReply(Call(Request(protocol::kOpVolumeGet, [&](Writer& w) {
    Member(w, "name", name);
  })));
  if (!doc.ok()) return doc.status();
  auto v = doc->FindMember("volume");
  if (v == doc->MemberEnd()) return Status::Internal("snapset-cowd's volume.get reply lacks \"volume\"");
  auto parsed = protocol::ParseVolume(v->value);
  if (!parsed.ok()) return Malformed("volume", parsed.status());
  return parsed;
}

Result<CowSnapshot> CowdClient::CreateSnapshot(const std::string& volume, const std::string& id) {
  auto doc = ParseReply(Call(Request(protocol::kOpSnapshotCreate, [&](Writer& w) {
    Member(w, "volume", volume);
    if (!id.empty()) Member(w, "id", id);
  })));
  if (!doc.ok()) return doc.status();
  auto s = doc->FindMember("snapshot");
  if (s == doc->MemberEnd()) return Status::Internal("snapset-cowd's snapshot.create reply lacks \"snapshot\"");
  auto parsed = protocol::ParseSnapshot(s->value);
  if (!parsed.ok()) return Malformed("snapshot", parsed.status());
  return parsed;
}

Status CowdClient::DeleteSnapshot(const std::string& volume, const std::string& id) {
  auto doc = ParseReply(Call(Request(protocol::kOpSnapshotDelete, [&](Writer& w) {
    Member(w, "volume", volume);
    Member(w, "id", id);
  })));
  return doc.ok() ? Status::Ok() : doc.status();
}

Result<std::vector<CowSnapshot>> CowdClient::ListSnapshots(const std::string& volume) {
  auto doc = ParseReply(Call(Request(protocol::kOpSnapshotList, [&](Writer& w) {
    Member(w, "volume", volume);
  })));
  if (!doc.ok()) return doc.status();
  auto arr = doc->FindMember("snapshots");
  if (arr == doc->MemberEnd() || !arr->value.IsArray()) {
    return Status::Internal("snapset-cowd's snapshot.list reply lacks the \"snapshots\" array");
  }
  std::vector<CowSnapshot> out;
  for (const auto& s : arr->value.GetArray()) {
    auto parsed = protocol::ParseSnapshot(s);
    if (!parsed.ok()) return Malformed("snapshot", parsed.status());
    out.push_back(std::move(parsed).value());
  }
  return out;
}

Status CowdClient::HoldWrites(const std::string& volume, std::chrono::milliseconds max_hold) {
  if (max_hold.count() <= 0) {
    return Status::InvalidArgument("max_hold must be positive, got " +
                                   std::to_string(max_hold.count()) + " ms");
  }
  auto doc = ParseReply(Call(Request(protocol::kOpWritesHold, [&](Writer& w) {
    Member(w, "volume", volume);
    w.Key("max_hold_ms");
    w.Uint64(uint64_t(max_hold.count()));
  })));
  return doc.ok() ? Status::Ok() : doc.status();
}

Status CowdClient::ReleaseWrites(const std::string& volume) {
  auto doc = ParseReply(Call(Request(protocol::kOpWritesRelease, [&](Writer& w) {
    Member(w, "volume", volume);
  })));
  return doc.ok() ? Status::Ok() : doc.status();
}

Status CowdClient::Revert(const std::string& volume, const std::string& snapshot_id) {
  auto doc = ParseReply(Call(Request(protocol::kOpRevert, [&](Writer& w) {
    Member(w, "volume", volume);
    Member(w, "id", snapshot_id);
  })));
  return doc.ok() ? Status::Ok() : doc.status();
}

Result<std::vector<ChangedRun>> CowdClient::ChangedChunks(const std::string& volume,
                                                          const std::string& from_id,
                                                          const std::string& to_id) {
  auto doc = ParseReply(Call(Request(protocol::kOpChanged, [&](Writer& w) {
    Member(w, "volume", volume);
    Member(w, "from", from_id);
    if (!to_id.empty()) Member(w, "to", to_id);
  })));
  if (!doc.ok()) return doc.status();
  auto arr = doc->FindMember("runs");
  if (arr == doc->MemberEnd() || !arr->value.IsArray()) {
    return Status::Internal("snapset-cowd's changed reply lacks the \"runs\" array");
  }
  std::vector<ChangedRun> out;
  for (const auto& r : arr->value.GetArray()) {
    if (!r.IsObject()) return Status::Internal("snapset-cowd sent a changed run that is not an object");
    auto first = protocol::OptionalUint(r, "first", 0);
    auto count = protocol::OptionalUint(r, "count", 0);
    if (!first.ok()) return Malformed("changed run", first.status());
    if (!count.ok()) return Malformed("changed run", count.status());
    out.push_back(ChangedRun{*first, *count});
  }
  return out;
}

}  // namespace snapset::cow
