#include "providers/mock-array/mock_array.hpp"

#include <fcntl.h>
#include <httplib.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iostream>
#include <optional>
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
                                v.naa, v.serial);
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

  // Thick accounting: a volume consumes its full capacity from the pool.
  auto used_bytes = [this]() -> Result<uint64_t> {
    Result<std::vector<VolumeRecord>> volumes = store_->Volumes();
    if (!volumes.ok()) return volumes.status();
    uint64_t used = 0;
    for (const VolumeRecord& v : *volumes) used += v.capacity_bytes;
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

  server.Delete("/redfish/v1/Storage/([^/]+)/Volumes/([^/]+)",
                [this, find_volume](const httplib::Request& req, httplib::Response& res) {
                  if (!KnownStorage(req, res)) return;
                  std::lock_guard<std::mutex> lock(mu_);
                  std::optional<VolumeRecord> v = find_volume(req, res);
                  if (!v) return;
                  // 409 while snapshots or exposures hold it: neither exists
                  // yet (issue 5, later steps), so nothing holds a volume.
                  const std::vector<std::string> holders;
                  if (!holders.empty()) {
                    return SendError(res, 409, "ResourceInUse", "volume is in use");
                  }
                  // Recorded first: a crash from here on finishes the delete.
                  Status s = store_->SetState(v->id, "deleting");
                  if (s.ok()) s = tgt_->DeleteTarget(static_cast<int>(v->id));
                  if (!s.ok()) return SendError(res, 500, "GeneralError", s.message());
                  std::error_code ec;
                  std::filesystem::remove(VolumeFile(v->id), ec);
                  s = store_->DeleteVolume(v->id);
                  if (!s.ok()) return SendError(res, 500, "GeneralError", s.message());
                  res.status = 204;
                });
}

}  // namespace snapset::mock
