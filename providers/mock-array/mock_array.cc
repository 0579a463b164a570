#include "providers/mock-array/mock_array.hpp"

#include <fcntl.h>
#include <httplib.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iostream>
#include <optional>
#include <vector>

#include "providers/mock-array/redfish_json.hpp"

namespace snapset::mock {
namespace {

// Closes a file descriptor at scope exit.
struct Fd {
  explicit Fd(int value) : fd(value) {}
  ~Fd() {
    if (fd >= 0) close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int fd;
};

Status Errno(const std::string& what) { return Status::Internal(what + ": " + strerror(errno)); }

// Copies the data extents of `in` to `out` (already sized): holes stay holes.
Status SparseCopy(int in, int out, off_t size) {
  std::vector<char> buffer(1 << 20);
  off_t offset = 0;
  while (offset < size) {
    const off_t data = lseek(in, offset, SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO) break;  // only a hole is left
      return Errno("SEEK_DATA");
    }
    off_t hole = lseek(in, data, SEEK_HOLE);
    if (hole < 0) return Errno("SEEK_HOLE");
    hole = std::min(hole, size);
    for (off_t at = data; at < hole;) {
      const size_t want = static_cast<size_t>(std::min<off_t>(hole - at, buffer.size()));
      const ssize_t got = pread(in, buffer.data(), want, at);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) return got < 0 ? Errno("pread") : Status::Internal("source shrank");
      for (ssize_t done = 0; done < got;) {
        const ssize_t put =
            pwrite(out, buffer.data() + done, static_cast<size_t>(got - done), at + done);
        if (put < 0 && errno == EINTR) continue;
        if (put < 0) return Errno("pwrite");
        done += put;
      }
      at += got;
    }
    offset = hole;
  }
  return Status::Ok();
}

}  // namespace

std::string MockArray::VolumeFile(int64_t id) const {
  return options_.state_dir + "/volumes/" + std::to_string(id) + ".img";
}

std::string MockArray::TargetIqn(int64_t exposure_id) const {
  return options_.target_prefix + ":conn-" + std::to_string(exposure_id);
}

Status MockArray::PrepareFile(const VolumeRecord& v) {
  const std::string file = VolumeFile(v.id);
  // Sparse: a volume costs nothing until written. Never shrinks data.
  const int fd = open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Status::Internal("creating " + file + ": " + strerror(errno));
  struct stat st {};
  const bool sized =
      fstat(fd, &st) == 0 && (static_cast<uint64_t>(st.st_size) == v.capacity_bytes ||
                              ftruncate(fd, static_cast<off_t>(v.capacity_bytes)) == 0);
  const int error = errno;
  close(fd);
  if (!sized) return Status::Internal("sizing " + file + ": " + strerror(error));
  return Status::Ok();
}

Status MockArray::RemoveVolume(const VolumeRecord& v) {
  // Recorded first: a crash from here on finishes the delete. No target
  // holds the file: a volume in an exposure is refused before this.
  SNAPSET_RETURN_IF_ERROR(store_->SetState(v.id, "deleting"));
  std::error_code ec;
  std::filesystem::remove(VolumeFile(v.id), ec);
  return store_->DeleteVolume(v.id);
}

void MockArray::Discard(const VolumeRecord& v) {
  std::error_code ec;
  std::filesystem::remove(VolumeFile(v.id), ec);
  static_cast<void>(store_->DeleteVolume(v.id));
}

Result<VolumeRecord> MockArray::InsertSnapshot(const VolumeRecord& source,
                                               const std::string& name) {
  if (!name.empty())
    return store_->InsertVolume(name, source.capacity_bytes, source.block_size, source.id);
  for (int n = 1;; ++n) {
    Result<VolumeRecord> v =
        store_->InsertVolume(source.name + "-snap-" + std::to_string(n), source.capacity_bytes,
                             source.block_size, source.id);
    if (v.ok() || v.status().code() != Code::kAlreadyExists || n >= 10000) return v;
  }
}

Status MockArray::CopyContents(const VolumeRecord& source, VolumeRecord* snapshot) {
  const std::string from = VolumeFile(source.id);
  const std::string to = VolumeFile(snapshot->id);
  Fd in(open(from.c_str(), O_RDONLY | O_CLOEXEC));
  if (in.fd < 0) return Errno("opening " + from);
  struct stat st {};
  if (fstat(in.fd, &st) != 0) return Errno("fstat " + from);
  Fd out(open(to.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (out.fd < 0) return Errno("creating " + to);
  // The source as tgtd left it: its rdwr backing store pwrite()s before it
  // acknowledges, so every acknowledged write is in the page cache, which
  // both FICLONE (it flushes the source's range first) and read() see.
  std::string method = "reflink";
  if (ioctl(out.fd, FICLONE, in.fd) != 0) {
    if (errno != EOPNOTSUPP && errno != ENOTTY && errno != EXDEV && errno != EINVAL &&
        errno != ENOSYS) {
      return Errno("FICLONE " + from);
    }
    method = "sparse-copy";
    if (ftruncate(out.fd, st.st_size) != 0) return Errno("sizing " + to);
    SNAPSET_RETURN_IF_ERROR(SparseCopy(in.fd, out.fd, st.st_size).WithContext("copying " + from));
  }
  snapshot->copy_method = method;
  return Status::Ok();
}

Status MockArray::RevertContents(const VolumeRecord& volume, const VolumeRecord& snapshot) {
  const std::string from = VolumeFile(snapshot.id);
  const std::string to = VolumeFile(volume.id);
  Fd in(open(from.c_str(), O_RDONLY | O_CLOEXEC));
  if (in.fd < 0) return Errno("opening " + from);
  struct stat st {};
  if (fstat(in.fd, &st) != 0) return Errno("fstat " + from);
  // The same file, not a new one: tgtd keeps its descriptor on it, so the
  // LUN serves the reverted blocks without being mapped again.
  Fd out(open(to.c_str(), O_WRONLY | O_CLOEXEC));
  if (out.fd < 0) return Errno("opening " + to);
  uint64_t gate_hold = 0;
  Status s;
  if (gate_) {
    gate_hold = gate_->HoldAndDrain({std::to_string(volume.id) + ".img"},
                                    WriteGate::Clock::now() + std::chrono::seconds(30));
  } else {
    s = tgt_->Freeze();
  }
  if (s.ok() && ioctl(out.fd, FICLONE, in.fd) != 0) {
    if (errno != EOPNOTSUPP && errno != ENOTTY && errno != EXDEV && errno != EINVAL &&
        errno != ENOSYS) {
      s = Errno("FICLONE " + from + " onto " + to);
    } else if (ftruncate(out.fd, 0) != 0 || ftruncate(out.fd, st.st_size) != 0) {
      // Emptied first, so that the snapshot's holes read as zeros again.
      s = Errno("emptying " + to);
    } else {
      s = SparseCopy(in.fd, out.fd, st.st_size).WithContext("copying " + from + " onto " + to);
    }
  }
  if (s.ok() && fdatasync(out.fd) != 0) s = Errno("fdatasync " + to);
  if (gate_) {
    gate_->Lift(gate_hold);
  } else {
    tgt_->Thaw();
  }
  if (s.ok())
    std::cerr << "mock-array: volume " << volume.name << " reverted to " << snapshot.name << "\n";
  return s;
}

std::optional<MockArray::Refusal> MockArray::RevertRefusal(const VolumeRecord& volume,
                                                           int64_t snapshot_id,
                                                           VolumeRecord* snapshot) {
  if (volume.is_snapshot())
    return Refusal{400, "volume " + volume.name + " is a snapshot; revert its source instead"};
  Result<std::vector<VolumeRecord>> all = store_->Volumes();
  if (!all.ok()) return Refusal{500, all.status().message()};
  auto snap = std::find_if(all->begin(), all->end(), [&](const VolumeRecord& r) {
    return r.id == snapshot_id && r.is_snapshot() && r.state == "ready";
  });
  if (snap == all->end())
    return Refusal{404, "no snapshot " + std::to_string(snapshot_id) + " on this array"};
  if (snap->source_id != volume.id)
    return Refusal{404, "snapshot " + snap->name + " is not of volume " + volume.name +
                            " (it is of volume " + std::to_string(snap->source_id) + ")"};
  ExpireFences();
  for (const auto& [id, f] : fences_)
    if (std::find(f.luns.begin(), f.luns.end(), volume.id) != f.luns.end())
      return Refusal{409, "volume " + volume.name + " is fenced by " + id +
                              "; delete the fence (or let it expire), then revert"};
  *snapshot = *snap;
  return std::nullopt;
}

Status MockArray::SnapshotAtOneInstant(
    const std::vector<VolumeRecord>& sources, const std::vector<std::string>& names,
    const std::function<Status(const VolumeRecord&)>& before_copy,
    std::vector<VolumeRecord>* snapshots) {
  snapshots->clear();
  if (sources.empty()) return Status::Ok();
  // Every record first, in state "creating" and in one transaction: a
  // crash before the final transaction rolls every one of them back.
  SNAPSET_RETURN_IF_ERROR(store_->Begin());
  for (size_t i = 0; i < sources.size(); ++i) {
    Result<VolumeRecord> snap = InsertSnapshot(sources[i], i < names.size() ? names[i] : "");
    if (!snap.ok()) {
      store_->Rollback();
      snapshots->clear();
      return snap.status();
    }
    snapshots->push_back(*snap);
  }
  Status s = store_->Commit();
  if (!s.ok()) {
    store_->Rollback();  // nothing of it was written
    snapshots->clear();
    return s;
  }
  // One instant: no member takes a write from the first copy to the last,
  // and the hold ends whatever happened. Nothing but the copies runs inside.
  // With a write gate (the twophase dialect) the members' writes are held
  // in it; else the array's tgtd is stopped, which a tgtd thread waiting in
  // a gate's fence would keep from happening.
  uint64_t gate_hold = 0;
  if (gate_) {
    std::vector<std::string> files;
    for (const VolumeRecord& v : sources) files.push_back(std::to_string(v.id) + ".img");
    gate_hold = gate_->HoldAndDrain(files, WriteGate::Clock::now() + std::chrono::seconds(30));
  } else {
    s = tgt_->Freeze();
  }
  for (size_t i = 0; s.ok() && i < sources.size(); ++i) {
    if (before_copy) s = before_copy(sources[i]);
    if (s.ok()) {
      s = CopyContents(sources[i], &(*snapshots)[i]).WithContext("member " + sources[i].name);
    }
  }
  if (gate_) {
    gate_->Lift(gate_hold);
  } else {
    tgt_->Thaw();
  }
  // Durable before acknowledged: one syncfs for every copy, then every row
  // "ready" with its copy method in one transaction.
  if (s.ok()) {
    Fd dir(open((options_.state_dir + "/volumes").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dir.fd < 0 || syncfs(dir.fd) != 0) s = Errno("syncfs " + options_.state_dir);
  }
  if (s.ok()) s = store_->MarkSnapshotsReady(*snapshots);
  if (!s.ok()) {
    for (const VolumeRecord& snap : *snapshots) Discard(snap);
    snapshots->clear();
    return s;
  }
  for (VolumeRecord& snap : *snapshots) {
    snap.state = "ready";
    std::cerr << "mock-array: snapshot " << snap.name << " by " << snap.copy_method << "\n";
  }
  return Status::Ok();
}

std::string MockArray::GroupHolding(const std::vector<int64_t>& members) {
  if (!options_.exclusive_groups) return "";
  Result<std::vector<GroupRecord>> groups = store_->Groups();
  if (!groups.ok()) return "";  // the insert that follows reports the store's error
  for (const GroupRecord& g : *groups) {
    for (int64_t id : members) {
      if (std::find(g.members.begin(), g.members.end(), id) != g.members.end()) return g.name;
    }
  }
  return "";
}

Status MockArray::SnapshotMembers(const std::vector<VolumeRecord>& sources,
                                  const std::vector<std::string>& names,
                                  std::optional<Fault>* injected,
                                  std::vector<VolumeRecord>* snapshots) {
  return SnapshotAtOneInstant(
      sources, names,
      [&](const VolumeRecord& member) {
        *injected = CopyMemberFault(member);
        return *injected
                   ? Status::Unavailable("injected fault before copying member " + member.name)
                   : Status::Ok();
      },
      snapshots);
}

Status MockArray::AddExposureTarget(const ExposureRecord& e) {
  Result<std::vector<VolumeRecord>> volumes = store_->Volumes();
  if (!volumes.ok()) return volumes.status();
  TgtDaemon::Target target;
  target.tid = static_cast<int>(e.id);
  target.iqn = TargetIqn(e.id);
  target.initiator_iqn = e.initiator_iqn;
  target.chap_user = e.chap_user;
  target.chap_password = e.chap_password;
  for (const ExposureLun& lun : e.luns) {
    const VolumeRecord* v = nullptr;
    for (const VolumeRecord& candidate : *volumes) {
      if (candidate.id == lun.volume_id) v = &candidate;
    }
    if (v == nullptr) {
      return Status::Internal("connection " + e.name + " maps volume " +
                              std::to_string(lun.volume_id) + ", which is gone");
    }
    // A snapshot is read-only on the wire whatever was asked.
    target.luns.push_back({lun.lun, LunFile(v->id), v->block_size, v->naa, v->serial,
                           lun.read_only || v->is_snapshot()});
  }
  return tgt_->AddTarget(target);
}

Status MockArray::RemoveExposure(const ExposureRecord& e) {
  // Recorded first: a crash from here on finishes the unmapping.
  SNAPSET_RETURN_IF_ERROR(store_->SetExposureState(e.id, "deleting"));
  SNAPSET_RETURN_IF_ERROR(tgt_->DeleteTarget(static_cast<int>(e.id)));
  return store_->DeleteExposure(e.id);
}

Status MockArray::Recover() {
  std::lock_guard<std::mutex> lock(mu_);
  std::error_code ec;
  std::filesystem::create_directories(options_.state_dir + "/volumes", ec);
  if (ec) return Status::Internal("creating volumes directory: " + ec.message());
  Result<std::vector<VolumeRecord>> volumes = store_->Volumes();
  if (!volumes.ok()) return volumes.status();
  for (const VolumeRecord& v : *volumes) {
    if (v.state == "ready") {
      SNAPSET_RETURN_IF_ERROR(PrepareFile(v).WithContext("restoring volume " + v.name));
      continue;
    }
    // "creating" was never acknowledged: roll back. "deleting" was asked
    // for: finish. Either way the volume goes, file and all.
    std::cerr << "mock-array: "
              << (v.state == "creating" ? "rolling back creation of" : "finishing deletion of")
              << " volume " << v.name << "\n";
    std::filesystem::remove(VolumeFile(v.id), ec);
    SNAPSET_RETURN_IF_ERROR(store_->DeleteVolume(v.id));
  }
  // Then the exposures over them: tgtd gets a target for every ready one;
  // one cut in half is removed (its creation was never acknowledged, or
  // its deletion was asked for).
  Result<std::vector<ExposureRecord>> exposures = store_->Exposures();
  if (!exposures.ok()) return exposures.status();
  for (const ExposureRecord& e : *exposures) {
    if (e.state == "ready") {
      SNAPSET_RETURN_IF_ERROR(AddExposureTarget(e).WithContext("restoring connection " + e.name));
      continue;
    }
    std::cerr << "mock-array: "
              << (e.state == "creating" ? "rolling back creation of" : "finishing deletion of")
              << " connection " << e.name << "\n";
    SNAPSET_RETURN_IF_ERROR(store_->DeleteExposure(e.id));
  }
  return Status::Ok();
}

void MockArray::Register(httplib::Server& server) {
  // Every /redfish route but the service root and log-in needs a live
  // token; the /mock routes need an Administrator's, and a ReadOnly user may
  // only read (and log out).
  server.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    const std::string& p = req.path;
    const bool mock = p.rfind("/mock/", 0) == 0;
    // The twophase dialect's API carries its token in X-TP-Session.
    const bool twophase = p.rfind("/api/v2/", 0) == 0;
    if (twophase) {
      if (req.method == "POST" && p == "/api/v2/auth/login")
        return httplib::Server::HandlerResponse::Unhandled;
      const std::string token = req.get_header_value("X-TP-Session");
      if (token.empty() || !sessions_->Authenticate(token)) {
        SendJson(res, 401, [&](JsonWriter& w) {
          w.StartObject();
          w.Key("error");
          w.StartObject();
          w.Key("code");
          w.Int(401);
          Key(w, "reason", "NO_SESSION");
          Key(w, "detail",
              token.empty() ? "this request needs an X-TP-Session header"
                            : "the X-TP-Session token is unknown or has expired");
          w.EndObject();
          w.EndObject();
        });
        return httplib::Server::HandlerResponse::Handled;
      }
      return httplib::Server::HandlerResponse::Unhandled;
    }
    if (!mock && (p.rfind("/redfish/v1/", 0) != 0 || p == "/redfish/v1/" ||
                  (req.method == "POST" && p == kSessions))) {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    // /mock takes either dialect's token header.
    std::string token = req.get_header_value("X-Auth-Token");
    if (token.empty() && mock) token = req.get_header_value("X-TP-Session");
    std::optional<Session> session;
    if (!token.empty()) session = sessions_->Authenticate(token);
    if (!session) {
      SendError(res, 401, "NoValidSession",
                token.empty() ? "this request needs an X-Auth-Token header"
                              : "the X-Auth-Token is unknown or has expired");
      return httplib::Server::HandlerResponse::Handled;
    }
    if (mock && session->role != kAdministrator) {
      SendError(res, 403, "InsufficientPrivilege",
                "the /mock routes need a session of a user whose RoleId is Administrator; " +
                    session->user + " is " + session->role);
      return httplib::Server::HandlerResponse::Handled;
    }
    const bool logout = req.method == "DELETE" && p.rfind(std::string(kSessions) + "/", 0) == 0;
    if (session->role == kReadOnly && req.method != "GET" && !logout) {
      SendError(res, 403, "InsufficientPrivilege",
                "user " + session->user + " is ReadOnly and may not " + req.method + " " + p);
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  server.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    if (res.status == 404) {
      SendError(res, 404, "ResourceNotFound", "no resource at " + req.path);
    } else {
      SendError(res, res.status, "GeneralError", "HTTP status " + std::to_string(res.status));
    }
  });

  // The Redfish service (its SessionService too) is the mock's own door to
  // /mock in every dialect; the twophase dialect's storage API replaces
  // Swordfish's volumes, groups, connections and tasks.
  RegisterServiceRoutes(server);
  if (options_.dialect == "twophase") {
    RegisterTwoPhaseRoutes(server);
  } else {
    RegisterVolumeRoutes(server);
    RegisterGroupRoutes(server);
    RegisterFabricRoutes(server);
    RegisterTaskRoutes(server);
  }
  RegisterMockRoutes(server);
}

void MockArray::Route(httplib::Server& server, const std::string& method,
                      const std::string& operation, const std::string& pattern, Handler handler) {
  // The door: first the refusals of a busy or broken array, then an armed
  // fault; then the operation runs now or, when asked for, as a task the
  // client polls.
  //
  // 429 when kMaxWaiting state-changing requests are already in the door
  // (waiting for the array's lock or in an injected delay); 503 when the
  // array's tgtd has died. Both with Retry-After. Reads and sessions are
  // never refused: they do not wait for the array.
  constexpr int kMaxWaiting = 16;
  constexpr int kRetryAfterS = 1;
  operations_.insert(operation);
  const bool changes_state = method != "GET" && operation.rfind("Session.", 0) != 0;
  Handler door = [this, operation, pattern, changes_state, handler = std::move(handler)](
                     const httplib::Request& req, httplib::Response& res) {
    // Logged on the way out, whichever way that is, with what was answered.
    struct Logged {
      RequestLog* log;
      LoggedRequest entry;
      const httplib::Response* res;
      ~Logged() {
        entry.answered_ns = RequestLog::NowNs();
        entry.status = res->status > 0 ? res->status : 0;
        log->Add(std::move(entry));
      }
    } logged{&requests_, {operation, req.method, req.path, RequestLog::NowNs()}, &res};
    struct Waiting {
      std::atomic<int>* count;
      ~Waiting() {
        if (count != nullptr) --*count;
      }
    } waiting{changes_state ? &waiting_ : nullptr};
    if (changes_state && waiting_.fetch_add(1) >= kMaxWaiting) {
      return SendRetryLater(res, 429, kRetryAfterS, "ServiceTemporarilyUnavailable",
                            std::to_string(kMaxWaiting) +
                                " state-changing requests are already waiting for the array");
    }
    bool tgtd_running = true;
    if (changes_state) {
      std::lock_guard<std::mutex> lock(mu_);
      tgtd_running = tgt_->Running();
    }
    if (!tgtd_running) {
      return SendRetryLater(res, 503, kRetryAfterS, "ServiceTemporarilyUnavailable",
                            "the array's iSCSI target daemon is down");
    }

    bool drop_reply = false;
    if (InjectFault(operation, req, res, &drop_reply)) return;
    if (RunsAsTask(operation, req)) {
      StartTask(operation, pattern, handler, req, res);
    } else {
      handler(req, res);
    }
    if (drop_reply) DropReply(res);
  };
  if (method == "GET") {
    server.Get(pattern, std::move(door));
  } else if (method == "POST") {
    server.Post(pattern, std::move(door));
  } else if (method == "DELETE") {
    server.Delete(pattern, std::move(door));
  } else if (method == "PATCH") {
    server.Patch(pattern, std::move(door));
  }
}

Result<uint64_t> MockArray::UsedBytes() {
  Result<std::vector<VolumeRecord>> volumes = store_->Volumes();
  if (!volumes.ok()) return volumes.status();
  uint64_t used = 0;
  for (const VolumeRecord& v : *volumes) {
    if (!v.is_snapshot()) used += v.capacity_bytes;
  }
  return used;
}

Result<std::vector<std::string>> MockArray::Holders(const VolumeRecord& v) {
  std::vector<std::string> out;
  Result<std::vector<VolumeRecord>> volumes = store_->Volumes();
  if (!volumes.ok()) return volumes.status();
  for (const VolumeRecord& s : *volumes) {
    if (s.source_id == v.id) out.push_back("snapshot " + s.name);
  }
  Result<std::vector<GroupRecord>> groups = store_->Groups();
  if (!groups.ok()) return groups.status();
  for (const GroupRecord& g : *groups) {
    if (std::find(g.members.begin(), g.members.end(), v.id) != g.members.end()) {
      out.push_back("consistency group " + g.name);
    }
  }
  Result<std::vector<ExposureRecord>> exposures = store_->Exposures();
  if (!exposures.ok()) return exposures.status();
  for (const ExposureRecord& e : *exposures) {
    for (const ExposureLun& lun : e.luns) {
      if (lun.volume_id == v.id) out.push_back("connection " + e.name);
    }
  }
  return out;
}

bool MockArray::RefusedWhileHeld(const VolumeRecord& v, httplib::Response& res) {
  Result<std::vector<std::string>> held = Holders(v);
  if (!held.ok()) {
    SendError(res, 500, "GeneralError", held.status().message());
    return true;
  }
  if (held->empty()) return false;
  std::string what;
  for (const std::string& h : *held) what += (what.empty() ? "" : ", ") + h;
  SendError(res, 409, "ResourceInUse",
            "volume " + v.name + " is in use by " + what + "; remove those first");
  return true;
}

void MockArray::WriteGroup(JsonWriter& w, const GroupRecord& g) const {
  w.StartObject();
  Key(w, "@odata.id", GroupsPath() + "/" + std::to_string(g.id));
  Key(w, "@odata.type", "#ConsistencyGroup.v1_1_1.ConsistencyGroup");
  Key(w, "Id", std::to_string(g.id));
  Key(w, "Name", g.name);
  Key(w, "ConsistencyType", "CrashConsistent");
  w.Key("Volumes");
  w.StartArray();
  for (int64_t id : g.members) {
    w.StartObject();
    Key(w, "@odata.id", VolumesPath() + "/" + std::to_string(id));
    w.EndObject();
  }
  w.EndArray();
  w.Key("Volumes@odata.count");
  w.Uint64(g.members.size());
  w.Key("Actions");
  w.StartObject();
  w.Key("#ConsistencyGroup.CreateReplicaTarget");
  w.StartObject();
  Key(w, "target",
      GroupsPath() + "/" + std::to_string(g.id) + "/Actions/ConsistencyGroup.CreateReplicaTarget");
  w.EndObject();
  w.EndObject();
  w.EndObject();
}

std::optional<GroupRecord> MockArray::FindGroup(const httplib::Request& req,
                                                httplib::Response& res) {
  Result<std::vector<GroupRecord>> groups = store_->Groups();
  if (!groups.ok()) {
    SendError(res, 500, "GeneralError", groups.status().message());
    return std::nullopt;
  }
  for (const GroupRecord& g : *groups) {
    if (std::to_string(g.id) == req.matches[2]) return g;
  }
  SendError(res, 404, "ResourceNotFound",
            "no consistency group '" + std::string(req.matches[2]) + "'");
  return std::nullopt;
}

void MockArray::WriteVolume(JsonWriter& w, const VolumeRecord& v) const {
  const std::string path = VolumesPath() + "/" + std::to_string(v.id);
  w.StartObject();
  Key(w, "@odata.id", path);
  Key(w, "@odata.type", "#Volume.v1_9_0.Volume");
  Key(w, "Id", std::to_string(v.id));
  Key(w, "Name", v.name);
  w.Key("CapacityBytes");
  w.Uint64(v.capacity_bytes);
  w.Key("BlockSizeBytes");
  w.Uint(v.block_size);
  w.Key("Identifiers");
  w.StartArray();
  w.StartObject();
  Key(w, "DurableName", v.naa);
  Key(w, "DurableNameFormat", "NAA");
  w.EndObject();
  w.EndArray();
  w.Key("AccessCapabilities");
  w.StartArray();
  w.String("Read");
  if (!v.is_snapshot()) w.String("Write");
  w.EndArray();
  if (v.is_snapshot()) {
    w.Key("ReplicaInfo");
    w.StartObject();
    Key(w, "ReplicaType", "Snapshot");
    Key(w, "ReplicaRole", "Target");
    Key(w, "ReplicaReadOnlyAccess", "ReplicaElement");
    Link(w, "SourceReplica", VolumesPath() + "/" + std::to_string(v.source_id));
    w.EndObject();
  }
  if (!v.is_snapshot()) {
    w.Key("Actions");
    w.StartObject();
    w.Key("Oem");
    w.StartObject();
    w.Key("#Snapset.RevertToSnapshot");
    w.StartObject();
    Key(w, "target", path + "/Actions/Oem/Snapset.RevertToSnapshot");
    w.EndObject();
    w.EndObject();
    w.EndObject();
  }
  w.Key("Status");
  w.StartObject();
  Key(w, "State", "Enabled");
  Key(w, "Health", "OK");
  w.EndObject();
  w.Key("Oem");
  w.StartObject();
  w.Key("Snapset");
  w.StartObject();
  Key(w, "SerialNumber", v.serial);
  w.Key("ReadOnly");
  w.Bool(v.is_snapshot());
  if (v.is_snapshot()) Key(w, "CopyMethod", v.copy_method);
  w.EndObject();
  w.EndObject();
  w.EndObject();
}

std::optional<VolumeRecord> MockArray::FindVolume(const httplib::Request& req,
                                                  httplib::Response& res) {
  Result<std::vector<VolumeRecord>> volumes = store_->Volumes();
  if (!volumes.ok()) {
    SendError(res, 500, "GeneralError", volumes.status().message());
    return std::nullopt;
  }
  for (const VolumeRecord& v : *volumes) {
    if (std::to_string(v.id) == req.matches[2] && v.state == "ready") return v;
  }
  SendError(res, 404, "ResourceNotFound", "no volume '" + std::string(req.matches[2]) + "'");
  return std::nullopt;
}

}  // namespace snapset::mock
