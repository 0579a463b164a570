#include <httplib.h>

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "providers/mock-array/mock_array.hpp"
#include "providers/mock-array/redfish_json.hpp"

namespace snapset::mock {
void MockArray::RegisterVolumeRoutes(httplib::Server& server) {
  Route(server, "GET", "Volume.List", "/redfish/v1/Storage/([^/]+)/Volumes",
        [this](const httplib::Request& req, httplib::Response& res) {
          if (!KnownStorage(req, res)) return;
          std::lock_guard<std::mutex> lock(mu_);
          Result<std::vector<VolumeRecord>> volumes = store_->Volumes();
          if (!volumes.ok()) {
            return SendError(res, 500, "GeneralError", volumes.status().message());
          }
          std::vector<std::string> members;
          for (const VolumeRecord& v : *volumes) {
            if (v.state == "ready") members.push_back(VolumesPath() + "/" + std::to_string(v.id));
          }
          SendCollection(res, VolumesPath(), "#VolumeCollection.VolumeCollection", "Volumes",
                         members);
        });
  Route(server, "GET", "Volume.Get", "/redfish/v1/Storage/([^/]+)/Volumes/([^/]+)",
        [this](const httplib::Request& req, httplib::Response& res) {
          if (!KnownStorage(req, res)) return;
          std::lock_guard<std::mutex> lock(mu_);
          std::optional<VolumeRecord> v = FindVolume(req, res);
          if (v) SendJson(res, 200, [&](JsonWriter& w) { WriteVolume(w, *v); });
        });

  Route(server, "POST", "Volume.Create", "/redfish/v1/Storage/([^/]+)/Volumes",
        [this](const httplib::Request& req, httplib::Response& res) {
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
          if (!doc.HasMember("Name"))
            return SendError(res, 400, "PropertyMissing", "Name is missing", {"Name"});
          if (!doc["Name"].IsString()) {
            return SendError(res, 400, "PropertyValueTypeError", "Name must be a string", {"Name"});
          }
          const std::string name = doc["Name"].GetString();
          if (!ValidName(name)) {
            return SendError(res, 400, "PropertyValueFormatError",
                             "Name must be 1 to 64 of [A-Za-z0-9._-]", {"Name"});
          }
          if (!doc.HasMember("CapacityBytes")) {
            return SendError(res, 400, "PropertyMissing", "CapacityBytes is missing",
                             {"CapacityBytes"});
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
              return SendError(res, 400, "PropertyValueNotInList",
                               "BlockSizeBytes must be 512 or 4096", {"BlockSizeBytes"});
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
          Result<uint64_t> used = UsedBytes();
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
          Status exposed = PrepareFile(*v);
          Status done = exposed.ok() ? store_->SetState(v->id, "ready") : exposed;
          if (!done.ok()) {
            Discard(*v);
            return SendError(res, 500, "GeneralError", done.message());
          }
          v->state = "ready";
          res.set_header("Location", VolumesPath() + "/" + std::to_string(v->id));
          SendJson(res, 201, [&](JsonWriter& w) { WriteVolume(w, *v); });
        });

  Route(server, "DELETE", "Volume.Delete", "/redfish/v1/Storage/([^/]+)/Volumes/([^/]+)",
        [this](const httplib::Request& req, httplib::Response& res) {
          if (!KnownStorage(req, res)) return;
          std::lock_guard<std::mutex> lock(mu_);
          std::optional<VolumeRecord> v = FindVolume(req, res);
          if (!v) return;
          if (RefusedWhileHeld(*v, res)) return;
          Status s = RemoveVolume(*v);
          if (!s.ok()) return SendError(res, 500, "GeneralError", s.message());
          res.status = 204;
        });

  Route(server, "POST", "Volume.CreateReplicaTarget",
        "/redfish/v1/Storage/([^/]+)/Volumes/([^/]+)/Actions/"
        "Volume.CreateReplicaTarget",
        [this](const httplib::Request& req, httplib::Response& res) {
          if (!KnownStorage(req, res)) return;
          rapidjson::Document doc;
          if (!ParseObject(req, res, doc, {"ReplicaType", "TargetVolumeName"},
                           "Volume.CreateReplicaTarget")) {
            return;
          }
          if (!SnapshotTypeGiven(doc, res)) return;
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
          std::optional<VolumeRecord> source = FindVolume(req, res);
          if (!source) return;
          if (source->is_snapshot()) {
            return SendError(res, 400, "ActionNotSupported",
                             "volume " + source->name +
                                 " is a snapshot; the mock does not "
                                 "snapshot snapshots");
          }
          std::vector<VolumeRecord> snaps;
          Status s = SnapshotAtOneInstant({*source}, {name}, {}, &snaps);
          if (!s.ok()) {
            if (s.code() == Code::kAlreadyExists) {
              return SendError(res, 409, "ResourceAlreadyExists", s.message(),
                               {"TargetVolumeName"});
            }
            return SendError(res, 500, "GeneralError", s.message());
          }
          const VolumeRecord* snap = &snaps[0];
          res.set_header("Location", VolumesPath() + "/" + std::to_string(snap->id));
          SendJson(res, 201, [&](JsonWriter& w) { WriteVolume(w, *snap); });
        });

  // Not in Swordfish (1.2 has no revert): snapset's own action, advertised
  // in each volume's Actions.Oem like a standard one.
  Route(server, "POST", "Volume.RevertToSnapshot",
        "/redfish/v1/Storage/([^/]+)/Volumes/([^/]+)/Actions/Oem/"
        "Snapset.RevertToSnapshot",
        [this](const httplib::Request& req, httplib::Response& res) {
          if (!KnownStorage(req, res)) return;
          rapidjson::Document doc;
          if (!ParseObject(req, res, doc, {"Snapshot"}, "Snapset.RevertToSnapshot")) return;
          const std::string prefix = VolumesPath() + "/";
          const auto* snap = doc.HasMember("Snapshot") && doc["Snapshot"].IsObject() &&
                                     doc["Snapshot"].HasMember("@odata.id") &&
                                     doc["Snapshot"]["@odata.id"].IsString()
                                 ? &doc["Snapshot"]["@odata.id"]
                                 : nullptr;
          const std::string path = snap ? snap->GetString() : "";
          const std::string tail = path.rfind(prefix, 0) == 0 ? path.substr(prefix.size()) : "";
          if (tail.empty() || tail.size() > 15 ||
              tail.find_first_not_of("0123456789") != std::string::npos) {
            return SendError(res, 400, "PropertyValueFormatError",
                             "Snapshot must be {\"@odata.id\": \"" + prefix + "ID\"}",
                             {"Snapshot"});
          }
          std::lock_guard<std::mutex> lock(mu_);
          std::optional<VolumeRecord> volume = FindVolume(req, res);
          if (!volume) return;
          VolumeRecord snapshot;
          if (auto refused = RevertRefusal(*volume, std::stoll(tail), &snapshot)) {
            const char* id = refused->status == 404   ? "ResourceNotFound"
                             : refused->status == 409 ? "ResourceInUse"
                             : refused->status == 400 ? "ActionNotSupported"
                                                      : "GeneralError";
            return SendError(res, refused->status, id, refused->message);
          }
          Status s = RevertContents(*volume, snapshot);
          if (!s.ok()) return SendError(res, 500, "GeneralError", s.message());
          SendJson(res, 200, [&](JsonWriter& w) { WriteVolume(w, *volume); });
        });

  Route(server, "POST", "Volume.RemoveReplicaRelationship",
        "/redfish/v1/Storage/([^/]+)/Volumes/([^/]+)/Actions/"
        "Volume.RemoveReplicaRelationship",
        [this](const httplib::Request& req, httplib::Response& res) {
          if (!KnownStorage(req, res)) return;
          rapidjson::Document doc;
          if (!ParseObject(req, res, doc, {"DeleteTargetVolume"},
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
          std::optional<VolumeRecord> v = FindVolume(req, res);
          if (!v) return;
          if (!v->is_snapshot()) {
            return SendError(res, 400, "ActionNotSupported",
                             "volume " + v->name + " is not a replica");
          }
          if (RefusedWhileHeld(*v, res)) return;
          Status s = RemoveVolume(*v);
          if (!s.ok()) return SendError(res, 500, "GeneralError", s.message());
          res.status = 204;
        });
}

}  // namespace snapset::mock
