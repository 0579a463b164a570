#include "providers/mock-array/mock_array.hpp"

#include <fcntl.h>
#include <httplib.h>
#include <linux/fs.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iostream>
#include <optional>
#include <set>
#include <vector>

namespace snapset::mock {
namespace {

constexpr char kStorageId[] = "array";
constexpr char kPoolId[] = "pool";
constexpr char kRegistry[] = "Base.1.8.";
constexpr char kSessions[] = "/redfish/v1/SessionService/Sessions";
constexpr size_t kMaxNameLength = 64;

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

// Writes a JSON document with `body` and sets it as the response.
void SendJson(httplib::Response& res, int status, const std::function<void(Writer&)>& body) {
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  body(w);
  res.status = status;
  res.set_content(buffer.GetString(), buffer.GetSize(), "application/json");
}

void Key(Writer& w, const char* key, const std::string& value) {
  w.Key(key);
  w.String(value.c_str(), static_cast<rapidjson::SizeType>(value.size()));
}

void Link(Writer& w, const char* key, const std::string& path) {
  w.Key(key);
  w.StartObject();
  Key(w, "@odata.id", path);
  w.EndObject();
}

// A Redfish error body: error.code, error.message and one ExtendedInfo
// message naming the properties at fault.
void SendError(httplib::Response& res, int status, const std::string& message_id,
               const std::string& message, const std::vector<std::string>& properties = {}) {
  SendJson(res, status, [&](Writer& w) {
    w.StartObject();
    w.Key("error");
    w.StartObject();
    Key(w, "code", kRegistry + message_id);
    Key(w, "message", message);
    w.Key("@Message.ExtendedInfo");
    w.StartArray();
    w.StartObject();
    Key(w, "@odata.type", "#Message.v1_1_1.Message");
    Key(w, "MessageId", kRegistry + message_id);
    Key(w, "Message", message);
    w.Key("RelatedProperties");
    w.StartArray();
    for (const std::string& p : properties) {
      const std::string pointer = "#/" + p;
      w.String(pointer.c_str());
    }
    w.EndArray();
    Key(w, "Severity", status >= 500 ? "Critical" : "Warning");
    w.EndObject();
    w.EndArray();
    w.EndObject();
    w.EndObject();
  });
}

std::string StoragePath() { return std::string("/redfish/v1/Storage/") + kStorageId; }
std::string PoolPath() { return StoragePath() + "/StoragePools/" + kPoolId; }
std::string VolumesPath() { return StoragePath() + "/Volumes"; }
std::string GroupsPath() { return StoragePath() + "/ConsistencyGroups"; }

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
        const ssize_t put = pwrite(out, buffer.data() + done, static_cast<size_t>(got - done),
                                   at + done);
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

bool ValidName(const std::string& name) {
  if (name.empty() || name.size() > kMaxNameLength) return false;
  for (unsigned char c : name) {
    if (!std::isalnum(c) && c != '-' && c != '_' && c != '.') return false;
  }
  return true;
}

// The request's storage id, or a 404 already sent.
bool KnownStorage(const httplib::Request& req, httplib::Response& res) {
  if (req.matches[1] == kStorageId) return true;
  SendError(res, 404, "ResourceNotFound",
            "no storage '" + std::string(req.matches[1]) + "'; this array has '" + kStorageId +
                "'");
  return false;
}

}  // namespace

std::string MockArray::VolumeFile(int64_t id) const {
  return options_.state_dir + "/volumes/" + std::to_string(id) + ".img";
}

std::string MockArray::TargetIqn(int64_t id) const {
  return options_.target_prefix + ":vol-" + std::to_string(id);
}

Status MockArray::Expose(const VolumeRecord& v) {
  const std::string file = VolumeFile(v.id);
  // Sparse: a volume costs nothing until written. Never shrinks data.
  const int fd = open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Status::Internal("creating " + file + ": " + strerror(errno));
  struct stat st {};
  const bool sized = fstat(fd, &st) == 0 &&
                     (static_cast<uint64_t>(st.st_size) == v.capacity_bytes ||
                      ftruncate(fd, static_cast<off_t>(v.capacity_bytes)) == 0);
  const int error = errno;
  close(fd);
  if (!sized) return Status::Internal("sizing " + file + ": " + strerror(error));
  return tgt_->AddTargetWithLun(static_cast<int>(v.id), TargetIqn(v.id), file, v.block_size,
                                v.naa, v.serial, v.is_snapshot());
}

Status MockArray::RemoveVolume(const VolumeRecord& v) {
  // Recorded first: a crash from here on finishes the delete.
  SNAPSET_RETURN_IF_ERROR(store_->SetState(v.id, "deleting"));
  SNAPSET_RETURN_IF_ERROR(tgt_->DeleteTarget(static_cast<int>(v.id)));
  std::error_code ec;
  std::filesystem::remove(VolumeFile(v.id), ec);
  return store_->DeleteVolume(v.id);
}

void MockArray::Discard(const VolumeRecord& v) {
  static_cast<void>(tgt_->DeleteTarget(static_cast<int>(v.id)));
  std::error_code ec;
  std::filesystem::remove(VolumeFile(v.id), ec);
  static_cast<void>(store_->DeleteVolume(v.id));
}

Result<VolumeRecord> MockArray::InsertSnapshot(const VolumeRecord& source,
                                               const std::string& name) {
  if (!name.empty()) return store_->InsertVolume(name, source.capacity_bytes, source.block_size,
                                                 source.id);
  for (int n = 1;; ++n) {
    Result<VolumeRecord> v = store_->InsertVolume(source.name + "-snap-" + std::to_string(n),
                                                  source.capacity_bytes, source.block_size,
                                                  source.id);
    if (v.ok() || v.status().code() != Code::kAlreadyExists || n >= 10000) return v;
  }
}

Status MockArray::CopyContents(const VolumeRecord& source, VolumeRecord* snapshot) {
  const std::string from = VolumeFile(source.id);
  const std::string to = VolumeFile(snapshot->id);
  Fd in(open(from.c_str(), O_RDONLY | O_CLOEXEC));
  if (in.fd < 0) return Errno("opening " + from);
  // tgtd's rdwr backing store pwrites to the file and acknowledges; this
  // puts what it acknowledged on stable storage before the copy is taken.
  if (fdatasync(in.fd) != 0) return Errno("fdatasync " + from);
  struct stat st {};
  if (fstat(in.fd, &st) != 0) return Errno("fstat " + from);
  Fd out(open(to.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (out.fd < 0) return Errno("creating " + to);
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
  if (fdatasync(out.fd) != 0) return Errno("fdatasync " + to);
  std::cerr << "mock-array: snapshot " << snapshot->name << " of " << source.name << " by "
            << method << "\n";
  snapshot->copy_method = method;
  return store_->SetCopyMethod(snapshot->id, method);
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
      SNAPSET_RETURN_IF_ERROR(Expose(v).WithContext("restoring volume " + v.name));
      continue;
    }
    // "creating" was never acknowledged: roll back. "deleting" was asked
    // for: finish. Either way the volume goes, file and all.
    std::cerr << "mock-array: " << (v.state == "creating" ? "rolling back creation of"
                                                          : "finishing deletion of")
              << " volume " << v.name << "\n";
    std::filesystem::remove(VolumeFile(v.id), ec);
    SNAPSET_RETURN_IF_ERROR(store_->DeleteVolume(v.id));
  }
  return Status::Ok();
}

void MockArray::Register(httplib::Server& server) {
  // Every /redfish route but the service root and log-in needs a live token.
  server.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    const std::string& p = req.path;
    if (p.rfind("/redfish/v1/", 0) != 0 || p == "/redfish/v1/" ||
        (req.method == "POST" && p == kSessions)) {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    const std::string token = req.get_header_value("X-Auth-Token");
    if (!token.empty() && sessions_->Authenticate(token)) {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    SendError(res, 401, "NoValidSession",
              token.empty() ? "this request needs an X-Auth-Token header"
                            : "the X-Auth-Token is unknown or has expired");
    return httplib::Server::HandlerResponse::Handled;
  });
  server.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    if (res.status == 404) {
      SendError(res, 404, "ResourceNotFound", "no resource at " + req.path);
    } else {
      SendError(res, res.status, "GeneralError", "HTTP status " + std::to_string(res.status));
    }
  });

  auto root = [this](const httplib::Request&, httplib::Response& res) {
    SendJson(res, 200, [&](Writer& w) {
      w.StartObject();
      Key(w, "@odata.id", "/redfish/v1");
      Key(w, "@odata.type", "#ServiceRoot.v1_15_0.ServiceRoot");
      Key(w, "Id", "RootService");
      Key(w, "Name", options_.name);
      Key(w, "RedfishVersion", "1.15.0");
      Link(w, "SessionService", "/redfish/v1/SessionService");
      Link(w, "Storage", "/redfish/v1/Storage");
      w.Key("Links");
      w.StartObject();
      Link(w, "Sessions", kSessions);
      w.EndObject();
      w.EndObject();
    });
  };
  server.Get("/redfish/v1", root);
  server.Get("/redfish/v1/", root);

  server.Post(kSessions, [this](const httplib::Request& req, httplib::Response& res) {
    rapidjson::Document doc;
    doc.Parse(req.body.c_str());
    if (doc.HasParseError() || !doc.IsObject()) {
      return SendError(res, 400, "MalformedJSON", "the body is not a JSON object");
    }
    for (const char* field : {"UserName", "Password"}) {
      if (!doc.HasMember(field)) {
        return SendError(res, 400, "PropertyMissing", std::string(field) + " is missing", {field});
      }
      if (!doc[field].IsString()) {
        return SendError(res, 400, "PropertyValueTypeError",
                         std::string(field) + " must be a string", {field});
      }
    }
    std::optional<Session> s = sessions_->Login(doc["UserName"].GetString(),
                                                doc["Password"].GetString());
    if (!s) return SendError(res, 401, "NoValidSession", "wrong user name or password");
    const std::string location = std::string(kSessions) + "/" + s->id;
    res.set_header("X-Auth-Token", s->token);
    res.set_header("Location", location);
    SendJson(res, 201, [&](Writer& w) {
      w.StartObject();
      Key(w, "@odata.id", location);
      Key(w, "@odata.type", "#Session.v1_6_0.Session");
      Key(w, "Id", s->id);
      Key(w, "Name", "Session " + s->id);
      Key(w, "UserName", s->user);
      w.EndObject();
    });
  });
  server.Delete(std::string(kSessions) + "/([^/]+)",
                [this](const httplib::Request& req, httplib::Response& res) {
                  if (!sessions_->Delete(req.matches[1])) {
                    return SendError(res, 404, "ResourceNotFound",
                                     "no session '" + std::string(req.matches[1]) + "'");
                  }
                  res.status = 204;
                });

  server.Get("/redfish/v1/Storage", [](const httplib::Request&, httplib::Response& res) {
    SendJson(res, 200, [&](Writer& w) {
      w.StartObject();
      Key(w, "@odata.id", "/redfish/v1/Storage");
      Key(w, "@odata.type", "#StorageCollection.StorageCollection");
      Key(w, "Name", "Storage");
      w.Key("Members");
      w.StartArray();
      w.StartObject();
      Key(w, "@odata.id", StoragePath());
      w.EndObject();
      w.EndArray();
      w.Key("Members@odata.count");
      w.Int(1);
      w.EndObject();
    });
  });
  server.Get("/redfish/v1/Storage/([^/]+)",
             [this](const httplib::Request& req, httplib::Response& res) {
               if (!KnownStorage(req, res)) return;
               SendJson(res, 200, [&](Writer& w) {
                 w.StartObject();
                 Key(w, "@odata.id", StoragePath());
                 Key(w, "@odata.type", "#Storage.v1_13_0.Storage");
                 Key(w, "Id", kStorageId);
                 Key(w, "Name", options_.name);
                 Link(w, "StoragePools", StoragePath() + "/StoragePools");
                 Link(w, "Volumes", VolumesPath());
                 w.Key("Status");
                 w.StartObject();
                 Key(w, "State", "Enabled");
                 Key(w, "Health", "OK");
                 w.EndObject();
                 w.EndObject();
               });
             });

  // Thick accounting: a volume consumes its full capacity from the pool; a
  // snapshot (copy-on-write on a real array) consumes nothing.
  auto used_bytes = [this]() -> Result<uint64_t> {
    Result<std::vector<VolumeRecord>> volumes = store_->Volumes();
    if (!volumes.ok()) return volumes.status();
    uint64_t used = 0;
    for (const VolumeRecord& v : *volumes) {
      if (!v.is_snapshot()) used += v.capacity_bytes;
    }
    return used;
  };
  server.Get("/redfish/v1/Storage/([^/]+)/StoragePools",
             [](const httplib::Request& req, httplib::Response& res) {
               if (!KnownStorage(req, res)) return;
               SendJson(res, 200, [&](Writer& w) {
                 w.StartObject();
                 Key(w, "@odata.id", StoragePath() + "/StoragePools");
                 Key(w, "@odata.type", "#StoragePoolCollection.StoragePoolCollection");
                 Key(w, "Name", "Storage pools");
                 w.Key("Members");
                 w.StartArray();
                 w.StartObject();
                 Key(w, "@odata.id", PoolPath());
                 w.EndObject();
                 w.EndArray();
                 w.Key("Members@odata.count");
                 w.Int(1);
                 w.EndObject();
               });
             });
  server.Get("/redfish/v1/Storage/([^/]+)/StoragePools/([^/]+)",
             [this, used_bytes](const httplib::Request& req, httplib::Response& res) {
               if (!KnownStorage(req, res)) return;
               if (req.matches[2] != kPoolId) {
                 return SendError(res, 404, "ResourceNotFound",
                                  "no storage pool '" + std::string(req.matches[2]) + "'");
               }
               Result<uint64_t> used = [&] {
                 std::lock_guard<std::mutex> lock(mu_);
                 return used_bytes();
               }();
               if (!used.ok()) return SendError(res, 500, "GeneralError", used.status().message());
               const uint64_t total = options_.pool_capacity_bytes;
               SendJson(res, 200, [&](Writer& w) {
                 w.StartObject();
                 Key(w, "@odata.id", PoolPath());
                 Key(w, "@odata.type", "#StoragePool.v1_9_0.StoragePool");
                 Key(w, "Id", kPoolId);
                 Key(w, "Name", "Default pool");
                 w.Key("Capacity");
                 w.StartObject();
                 w.Key("Data");
                 w.StartObject();
                 w.Key("AllocatedBytes");
                 w.Uint64(total);
                 w.Key("ConsumedBytes");
                 w.Uint64(*used);
                 w.EndObject();
                 w.EndObject();
                 w.Key("RemainingCapacityPercent");
                 w.Uint64(total == 0 ? 0 : (total - *used) * 100 / total);
                 w.Key("Oem");
                 w.StartObject();
                 w.Key("Snapset");
                 w.StartObject();
                 w.Key("FreeBytes");
                 w.Uint64(total - *used);
                 w.EndObject();
                 w.EndObject();
                 Link(w, "AllocatedVolumes", VolumesPath());
                 w.EndObject();
               });
             });

  auto write_volume = [this](Writer& w, const VolumeRecord& v) {
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
    // Interim, until exposure (Fabrics/.../Connections) exists: every volume
    // is a LUN of its own target, open to every initiator.
    Key(w, "IscsiTarget", TargetIqn(v.id));
    w.Key("IscsiLun");
    w.Int(1);
    w.Key("ReadOnly");
    w.Bool(v.is_snapshot());
    if (v.is_snapshot()) Key(w, "CopyMethod", v.copy_method);
    w.EndObject();
    w.EndObject();
    w.EndObject();
  };
  // The ready volume with the request's id (matches[2]), or a 404 sent.
  auto find_volume = [this](const httplib::Request& req,
                            httplib::Response& res) -> std::optional<VolumeRecord> {
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
  };

  server.Get("/redfish/v1/Storage/([^/]+)/Volumes",
             [this](const httplib::Request& req, httplib::Response& res) {
               if (!KnownStorage(req, res)) return;
               std::lock_guard<std::mutex> lock(mu_);
               Result<std::vector<VolumeRecord>> volumes = store_->Volumes();
               if (!volumes.ok()) {
                 return SendError(res, 500, "GeneralError", volumes.status().message());
               }
               SendJson(res, 200, [&](Writer& w) {
                 w.StartObject();
                 Key(w, "@odata.id", VolumesPath());
                 Key(w, "@odata.type", "#VolumeCollection.VolumeCollection");
                 Key(w, "Name", "Volumes");
                 w.Key("Members");
                 w.StartArray();
                 int count = 0;
                 for (const VolumeRecord& v : *volumes) {
                   if (v.state != "ready") continue;
                   w.StartObject();
                   Key(w, "@odata.id", VolumesPath() + "/" + std::to_string(v.id));
                   w.EndObject();
                   ++count;
                 }
                 w.EndArray();
                 w.Key("Members@odata.count");
                 w.Int(count);
                 w.EndObject();
               });
             });
  server.Get("/redfish/v1/Storage/([^/]+)/Volumes/([^/]+)",
             [this, find_volume, write_volume](const httplib::Request& req,
                                               httplib::Response& res) {
               if (!KnownStorage(req, res)) return;
               std::lock_guard<std::mutex> lock(mu_);
               std::optional<VolumeRecord> v = find_volume(req, res);
               if (v) SendJson(res, 200, [&](Writer& w) { write_volume(w, *v); });
             });

  server.Post("/redfish/v1/Storage/([^/]+)/Volumes", [this, used_bytes, write_volume](
                                                          const httplib::Request& req,
                                                          httplib::Response& res) {
    if (!KnownStorage(req, res)) return;
    rapidjson::Document doc;
    doc.Parse(req.body.c_str());
    if (doc.HasParseError() || !doc.IsObject()) {
      return SendError(res, 400, "MalformedJSON", "the body is not a JSON object");
    }
    for (const auto& member : doc.GetObject()) {
      const std::string key = member.name.GetString();
      if (key != "Name" && key != "CapacityBytes" && key != "BlockSizeBytes") {
        return SendError(res, 400, "PropertyUnknown",
                         key + " is not a property a volume can be created with", {key});
      }
    }
    if (!doc.HasMember("Name")) return SendError(res, 400, "PropertyMissing", "Name is missing", {"Name"});
    if (!doc["Name"].IsString()) {
      return SendError(res, 400, "PropertyValueTypeError", "Name must be a string", {"Name"});
    }
    const std::string name = doc["Name"].GetString();
    if (!ValidName(name)) {
      return SendError(res, 400, "PropertyValueFormatError",
                       "Name must be 1 to 64 of [A-Za-z0-9._-]", {"Name"});
    }
    if (!doc.HasMember("CapacityBytes")) {
      return SendError(res, 400, "PropertyMissing", "CapacityBytes is missing", {"CapacityBytes"});
    }
    if (!doc["CapacityBytes"].IsUint64() || doc["CapacityBytes"].GetUint64() == 0) {
      return SendError(res, 400, "PropertyValueTypeError",
                       "CapacityBytes must be a positive integer", {"CapacityBytes"});
    }
    const uint64_t capacity = doc["CapacityBytes"].GetUint64();
    uint32_t block_size = 512;
    if (doc.HasMember("BlockSizeBytes")) {
      const auto& b = doc["BlockSizeBytes"];
      if (!b.IsUint() || (b.GetUint() != 512 && b.GetUint() != 4096)) {
        return SendError(res, 400, "PropertyValueNotInList", "BlockSizeBytes must be 512 or 4096",
                         {"BlockSizeBytes"});
      }
      block_size = b.GetUint();
    }
    if (capacity % block_size != 0) {
      return SendError(res, 400, "PropertyValueFormatError",
                       "CapacityBytes must be a multiple of BlockSizeBytes (" +
                           std::to_string(block_size) + ")",
                       {"CapacityBytes"});
    }
    std::lock_guard<std::mutex> lock(mu_);
    Result<uint64_t> used = used_bytes();
    if (!used.ok()) return SendError(res, 500, "GeneralError", used.status().message());
    if (capacity > options_.pool_capacity_bytes - *used) {
      return SendError(res, 400, "PropertyValueOutOfRange",
                       "CapacityBytes exceeds the pool's free " +
                           std::to_string(options_.pool_capacity_bytes - *used) + " bytes",
                       {"CapacityBytes"});
    }
    // The database first, in state "creating": a crash from here on is
    // rolled back at start.
    Result<VolumeRecord> v = store_->InsertVolume(name, capacity, block_size);
    if (!v.ok()) {
      if (v.status().code() == Code::kAlreadyExists) {
        return SendError(res, 409, "ResourceAlreadyExists", v.status().message(), {"Name"});
      }
      return SendError(res, 500, "GeneralError", v.status().message());
    }
    Status exposed = Expose(*v);
    Status done = exposed.ok() ? store_->SetState(v->id, "ready") : exposed;
    if (!done.ok()) {
      static_cast<void>(tgt_->DeleteTarget(static_cast<int>(v->id)));
      std::error_code ec;
      std::filesystem::remove(VolumeFile(v->id), ec);
      static_cast<void>(store_->DeleteVolume(v->id));
      return SendError(res, 500, "GeneralError", done.message());
    }
    v->state = "ready";
    res.set_header("Location", VolumesPath() + "/" + std::to_string(v->id));
    SendJson(res, 201, [&](Writer& w) { write_volume(w, *v); });
  });

  // What holds a volume: its snapshots (any state) and the groups it is in.
  auto holders = [this](const VolumeRecord& v) -> Result<std::vector<std::string>> {
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
    return out;
  };

  server.Delete("/redfish/v1/Storage/([^/]+)/Volumes/([^/]+)",
                [this, find_volume, holders](const httplib::Request& req,
                                             httplib::Response& res) {
                  if (!KnownStorage(req, res)) return;
                  std::lock_guard<std::mutex> lock(mu_);
                  std::optional<VolumeRecord> v = find_volume(req, res);
                  if (!v) return;
                  // Exposures will hold a volume too (a later step).
                  Result<std::vector<std::string>> held = holders(*v);
                  if (!held.ok()) return SendError(res, 500, "GeneralError", held.status().message());
                  if (!held->empty()) {
                    std::string what;
                    for (const std::string& h : *held) what += (what.empty() ? "" : ", ") + h;
                    return SendError(res, 409, "ResourceInUse",
                                     "volume " + v->name + " is in use by " + what);
                  }
                  Status s = RemoveVolume(*v);
                  if (!s.ok()) return SendError(res, 500, "GeneralError", s.message());
                  res.status = 204;
                });

  // Parses the body as a JSON object whose members are all in `allowed`,
  // or sends a 400 and returns false.
  auto parse_object = [](const httplib::Request& req, httplib::Response& res,
                         rapidjson::Document& doc, const std::set<std::string>& allowed,
                         const std::string& what) {
    doc.Parse(req.body.c_str());
    if (doc.HasParseError() || !doc.IsObject()) {
      SendError(res, 400, "MalformedJSON", "the body is not a JSON object");
      return false;
    }
    for (const auto& member : doc.GetObject()) {
      const std::string key = member.name.GetString();
      if (allowed.count(key) == 0) {
        SendError(res, 400, "PropertyUnknown", key + " is not a property of " + what, {key});
        return false;
      }
    }
    return true;
  };
  // ReplicaType must be there and be "Snapshot".
  auto snapshot_type = [](const rapidjson::Document& doc, httplib::Response& res) {
    if (!doc.HasMember("ReplicaType")) {
      SendError(res, 400, "PropertyMissing", "ReplicaType is missing", {"ReplicaType"});
      return false;
    }
    if (!doc["ReplicaType"].IsString() || doc["ReplicaType"].GetString() != std::string("Snapshot")) {
      SendError(res, 400, "PropertyValueNotInList", "ReplicaType must be \"Snapshot\"",
                {"ReplicaType"});
      return false;
    }
    return true;
  };

  server.Post(
      "/redfish/v1/Storage/([^/]+)/Volumes/([^/]+)/Actions/Volume.CreateReplicaTarget",
      [this, find_volume, write_volume, parse_object, snapshot_type](const httplib::Request& req,
                                                                     httplib::Response& res) {
        if (!KnownStorage(req, res)) return;
        rapidjson::Document doc;
        if (!parse_object(req, res, doc, {"ReplicaType", "TargetVolumeName"},
                          "Volume.CreateReplicaTarget")) {
          return;
        }
        if (!snapshot_type(doc, res)) return;
        std::string name;
        if (doc.HasMember("TargetVolumeName")) {
          if (!doc["TargetVolumeName"].IsString() ||
              !ValidName(doc["TargetVolumeName"].GetString())) {
            return SendError(res, 400, "PropertyValueFormatError",
                             "TargetVolumeName must be 1 to 64 of [A-Za-z0-9._-]",
                             {"TargetVolumeName"});
          }
          name = doc["TargetVolumeName"].GetString();
        }
        std::lock_guard<std::mutex> lock(mu_);
        std::optional<VolumeRecord> source = find_volume(req, res);
        if (!source) return;
        if (source->is_snapshot()) {
          return SendError(res, 400, "ActionNotSupported",
                           "volume " + source->name + " is a snapshot; the mock does not "
                           "snapshot snapshots");
        }
        Result<VolumeRecord> snap = InsertSnapshot(*source, name);
        if (!snap.ok()) {
          if (snap.status().code() == Code::kAlreadyExists) {
            return SendError(res, 409, "ResourceAlreadyExists", snap.status().message(),
                             {"TargetVolumeName"});
          }
          return SendError(res, 500, "GeneralError", snap.status().message());
        }
        Status s = CopyContents(*source, &*snap);
        if (s.ok()) s = Expose(*snap);
        if (s.ok()) s = store_->SetState(snap->id, "ready");
        if (!s.ok()) {
          Discard(*snap);
          return SendError(res, 500, "GeneralError", s.message());
        }
        snap->state = "ready";
        res.set_header("Location", VolumesPath() + "/" + std::to_string(snap->id));
        SendJson(res, 201, [&](Writer& w) { write_volume(w, *snap); });
      });

  server.Post(
      "/redfish/v1/Storage/([^/]+)/Volumes/([^/]+)/Actions/Volume.RemoveReplicaRelationship",
      [this, find_volume, parse_object](const httplib::Request& req, httplib::Response& res) {
        if (!KnownStorage(req, res)) return;
        rapidjson::Document doc;
        if (!parse_object(req, res, doc, {"DeleteTargetVolume"},
                          "Volume.RemoveReplicaRelationship")) {
          return;
        }
        if (!doc.HasMember("DeleteTargetVolume") || !doc["DeleteTargetVolume"].IsBool() ||
            !doc["DeleteTargetVolume"].GetBool()) {
          return SendError(res, 400, "PropertyValueNotInList",
                           "DeleteTargetVolume must be true: the mock cannot turn a snapshot "
                           "into an independent volume",
                           {"DeleteTargetVolume"});
        }
        std::lock_guard<std::mutex> lock(mu_);
        std::optional<VolumeRecord> v = find_volume(req, res);
        if (!v) return;
        if (!v->is_snapshot()) {
          return SendError(res, 400, "ActionNotSupported",
                           "volume " + v->name + " is not a replica");
        }
        Status s = RemoveVolume(*v);
        if (!s.ok()) return SendError(res, 500, "GeneralError", s.message());
        res.status = 204;
      });

  // Consistency groups.
  auto write_group = [](Writer& w, const GroupRecord& g) {
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
  };
  // The group with the request's id (matches[2]), or a 404 / 500 sent.
  auto find_group = [this](const httplib::Request& req,
                           httplib::Response& res) -> std::optional<GroupRecord> {
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
  };

  server.Get("/redfish/v1/Storage/([^/]+)/ConsistencyGroups",
             [this](const httplib::Request& req, httplib::Response& res) {
               if (!KnownStorage(req, res)) return;
               std::lock_guard<std::mutex> lock(mu_);
               Result<std::vector<GroupRecord>> groups = store_->Groups();
               if (!groups.ok()) {
                 return SendError(res, 500, "GeneralError", groups.status().message());
               }
               SendJson(res, 200, [&](Writer& w) {
                 w.StartObject();
                 Key(w, "@odata.id", GroupsPath());
                 Key(w, "@odata.type", "#ConsistencyGroupCollection.ConsistencyGroupCollection");
                 Key(w, "Name", "Consistency groups");
                 w.Key("Members");
                 w.StartArray();
                 for (const GroupRecord& g : *groups) {
                   w.StartObject();
                   Key(w, "@odata.id", GroupsPath() + "/" + std::to_string(g.id));
                   w.EndObject();
                 }
                 w.EndArray();
                 w.Key("Members@odata.count");
                 w.Uint64(groups->size());
                 w.EndObject();
               });
             });
  server.Get("/redfish/v1/Storage/([^/]+)/ConsistencyGroups/([^/]+)",
             [this, find_group, write_group](const httplib::Request& req,
                                             httplib::Response& res) {
               if (!KnownStorage(req, res)) return;
               std::lock_guard<std::mutex> lock(mu_);
               std::optional<GroupRecord> g = find_group(req, res);
               if (g) SendJson(res, 200, [&](Writer& w) { write_group(w, *g); });
             });
  server.Delete("/redfish/v1/Storage/([^/]+)/ConsistencyGroups/([^/]+)",
                [this, find_group](const httplib::Request& req, httplib::Response& res) {
                  if (!KnownStorage(req, res)) return;
                  std::lock_guard<std::mutex> lock(mu_);
                  std::optional<GroupRecord> g = find_group(req, res);
                  if (!g) return;
                  Status s = store_->DeleteGroup(g->id);
                  if (!s.ok()) return SendError(res, 500, "GeneralError", s.message());
                  res.status = 204;
                });

  server.Post("/redfish/v1/Storage/([^/]+)/ConsistencyGroups",
              [this, parse_object, write_group](const httplib::Request& req,
                                                httplib::Response& res) {
                if (!KnownStorage(req, res)) return;
                rapidjson::Document doc;
                if (!parse_object(req, res, doc, {"Name", "Volumes"}, "a consistency group")) {
                  return;
                }
                if (!doc.HasMember("Name")) {
                  return SendError(res, 400, "PropertyMissing", "Name is missing", {"Name"});
                }
                if (!doc["Name"].IsString() || !ValidName(doc["Name"].GetString())) {
                  return SendError(res, 400, "PropertyValueFormatError",
                                   "Name must be 1 to 64 of [A-Za-z0-9._-]", {"Name"});
                }
                if (!doc.HasMember("Volumes")) {
                  return SendError(res, 400, "PropertyMissing", "Volumes is missing",
                                   {"Volumes"});
                }
                if (!doc["Volumes"].IsArray() || doc["Volumes"].Empty()) {
                  return SendError(res, 400, "PropertyValueTypeError",
                                   "Volumes must be a non-empty array of {\"@odata.id\": ...}",
                                   {"Volumes"});
                }
                std::lock_guard<std::mutex> lock(mu_);
                Result<std::vector<VolumeRecord>> volumes = store_->Volumes();
                if (!volumes.ok()) {
                  return SendError(res, 500, "GeneralError", volumes.status().message());
                }
                std::vector<int64_t> members;
                for (const auto& link : doc["Volumes"].GetArray()) {
                  if (!link.IsObject() || !link.HasMember("@odata.id") ||
                      !link["@odata.id"].IsString()) {
                    return SendError(res, 400, "PropertyValueTypeError",
                                     "each of Volumes must be {\"@odata.id\": ...}",
                                     {"Volumes"});
                  }
                  const std::string path = link["@odata.id"].GetString();
                  const VolumeRecord* found = nullptr;
                  for (const VolumeRecord& v : *volumes) {
                    if (v.state == "ready" && VolumesPath() + "/" + std::to_string(v.id) == path) {
                      found = &v;
                    }
                  }
                  if (found == nullptr) {
                    return SendError(res, 400, "ResourceNotFound", "no volume at " + path,
                                     {"Volumes"});
                  }
                  if (found->is_snapshot()) {
                    return SendError(res, 400, "PropertyValueConflict",
                                     path + " is a snapshot; a group holds volumes",
                                     {"Volumes"});
                  }
                  if (std::find(members.begin(), members.end(), found->id) != members.end()) {
                    return SendError(res, 400, "PropertyValueConflict",
                                     path + " is listed twice", {"Volumes"});
                  }
                  members.push_back(found->id);
                }
                Result<GroupRecord> g = store_->InsertGroup(doc["Name"].GetString(), members);
                if (!g.ok()) {
                  if (g.status().code() == Code::kAlreadyExists) {
                    return SendError(res, 409, "ResourceAlreadyExists", g.status().message(),
                                     {"Name"});
                  }
                  return SendError(res, 500, "GeneralError", g.status().message());
                }
                res.set_header("Location", GroupsPath() + "/" + std::to_string(g->id));
                SendJson(res, 201, [&](Writer& w) { write_group(w, *g); });
              });

  server.Post(
      "/redfish/v1/Storage/([^/]+)/ConsistencyGroups/([^/]+)/Actions/"
      "ConsistencyGroup.CreateReplicaTarget",
      [this, find_group, parse_object, snapshot_type, write_volume](const httplib::Request& req,
                                                                    httplib::Response& res) {
        if (!KnownStorage(req, res)) return;
        rapidjson::Document doc;
        if (!parse_object(req, res, doc, {"ReplicaType"}, "ConsistencyGroup.CreateReplicaTarget")) {
          return;
        }
        if (!snapshot_type(doc, res)) return;
        std::lock_guard<std::mutex> lock(mu_);
        std::optional<GroupRecord> g = find_group(req, res);
        if (!g) return;
        Result<std::vector<VolumeRecord>> volumes = store_->Volumes();
        if (!volumes.ok()) return SendError(res, 500, "GeneralError", volumes.status().message());
        std::vector<VolumeRecord> sources;
        for (int64_t id : g->members) {
          for (const VolumeRecord& v : *volumes) {
            if (v.id == id && v.state == "ready") sources.push_back(v);
          }
        }
        if (sources.size() != g->members.size()) {
          return SendError(res, 500, "GeneralError", "a member of group " + g->name + " is gone");
        }
        // All records first, in state "creating": a crash before the final
        // transaction rolls every one of them back at start.
        std::vector<VolumeRecord> snaps;
        Status s;
        for (const VolumeRecord& source : sources) {
          Result<VolumeRecord> snap = InsertSnapshot(source, "");
          if (!snap.ok()) {
            s = snap.status();
            break;
          }
          snaps.push_back(*snap);
        }
        // One instant: the array's tgtd is frozen from the first copy to the
        // last, so no member (no LUN at all) takes a write in between; it is
        // thawed whatever happened. Writes tgtd acknowledged are in the files.
        if (s.ok()) {
          s = tgt_->Freeze();
          for (size_t i = 0; s.ok() && i < sources.size(); ++i) {
            s = CopyContents(sources[i], &snaps[i]).WithContext("member " + sources[i].name);
          }
          tgt_->Thaw();
        }
        for (size_t i = 0; s.ok() && i < snaps.size(); ++i) s = Expose(snaps[i]);
        std::vector<int64_t> ids;
        for (const VolumeRecord& snap : snaps) ids.push_back(snap.id);
        if (s.ok()) s = store_->SetStates(ids, "ready");
        if (!s.ok()) {
          for (const VolumeRecord& snap : snaps) Discard(snap);
          return SendError(res, 500, "GeneralError", s.message());
        }
        SendJson(res, 201, [&](Writer& w) {
          w.StartObject();
          Key(w, "@odata.type", "#Collection.SnapshotSet");
          Link(w, "ConsistencyGroup", GroupsPath() + "/" + std::to_string(g->id));
          w.Key("Members");
          w.StartArray();
          for (VolumeRecord& snap : snaps) {
            snap.state = "ready";
            write_volume(w, snap);
          }
          w.EndArray();
          w.Key("Members@odata.count");
          w.Uint64(snaps.size());
          w.EndObject();
        });
      });
}

}  // namespace snapset::mock
