// Exposure: Redfish Connections on the array's one iSCSI fabric. A
// connection maps volumes and snapshots as LUNs 1..N of an iSCSI target of
// its own that only one initiator IQN may log in to, with optional one-way
// CHAP; deleting it unmaps them (sessions or not).
#include <httplib.h>

#include <algorithm>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "providers/mock-array/mock_array.hpp"
#include "providers/mock-array/redfish_json.hpp"

namespace snapset::mock {
namespace {

constexpr char kFabricId[] = "iSCSI";
constexpr size_t kMaxLuns = 255;

std::string FabricPath() { return std::string("/redfish/v1/Fabrics/") + kFabricId; }
std::string ConnectionsPath() { return FabricPath() + "/Connections"; }

// iqn.YYYY-MM.reversed.domain[:anything], eui.<16 hex> or naa.<16|32 hex>
// (RFC 3720 3.2.6.3), as tgtd accepts them in an ACL.
bool ValidInitiatorName(const std::string& name) {
  static const std::regex pattern(
      R"(iqn\.[0-9]{4}-[0-9]{2}\.[a-z0-9][a-z0-9.-]*(:[A-Za-z0-9.:_-]+)?|eui\.[0-9A-Fa-f]{16}|naa\.([0-9A-Fa-f]{16}|[0-9A-Fa-f]{32}))");
  return name.size() <= 223 && std::regex_match(name, pattern);
}

bool ValidChapUser(const std::string& user) {
  static const std::regex pattern(R"([A-Za-z0-9._:@-]{1,64})");
  return std::regex_match(user, pattern);
}

// 12 to 64 printable characters without blanks or commas: iSCSI initiators
// want at least 12 (RFC 3720 8.2.1 asks for 96 bits), and tgtadm takes the
// secret as one argument.
bool ValidChapSecret(const std::string& secret) {
  if (secret.size() < 12 || secret.size() > 64) return false;
  return std::all_of(secret.begin(), secret.end(),
                     [](unsigned char c) { return c > ' ' && c < 0x7f && c != ','; });
}

// The request's fabric id (matches[1]) is this array's, or a 404 is sent.
bool KnownFabric(const httplib::Request& req, httplib::Response& res) {
  if (req.matches[1] == kFabricId) return true;
  SendError(res, 404, "ResourceNotFound",
            "no fabric '" + std::string(req.matches[1]) + "'; this array has '" + kFabricId + "'");
  return false;
}

}  // namespace

void MockArray::WriteConnection(JsonWriter& w, const ExposureRecord& e) const {
  const std::string path = ConnectionsPath() + "/" + std::to_string(e.id);
  w.StartObject();
  Key(w, "@odata.id", path);
  Key(w, "@odata.type", "#Connection.v1_2_0.Connection");
  Key(w, "Id", std::to_string(e.id));
  Key(w, "Name", e.name);
  Key(w, "ConnectionType", "Storage");
  w.Key("VolumeInfo");
  w.StartArray();
  for (const ExposureLun& lun : e.luns) {
    w.StartObject();
    Link(w, "Volume", VolumesPath() + "/" + std::to_string(lun.volume_id));
    w.Key("AccessCapabilities");
    w.StartArray();
    w.String("Read");
    if (!lun.read_only) w.String("Write");
    w.EndArray();
    w.Key("LUN");
    w.Int(lun.lun);
    w.EndObject();
  }
  w.EndArray();
  if (!e.chap_user.empty()) {
    w.Key("ConnectionKeys");
    w.StartObject();
    w.Key("CHAP");
    w.StartObject();
    Key(w, "CHAPType", "OneWay");
    Key(w, "CHAPUsername", e.chap_user);
    w.Key("CHAPPassword");
    w.Null();  // never shown, as Redfish asks
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
  Key(w, "InitiatorIqn", e.initiator_iqn);
  Key(w, "IscsiTarget", TargetIqn(e.id));
  Key(w, "Portal", options_.iscsi_portal);
  w.EndObject();
  w.EndObject();
  w.EndObject();
}

std::optional<ExposureRecord> MockArray::FindConnection(const httplib::Request& req,
                                                        httplib::Response& res) {
  Result<std::vector<ExposureRecord>> exposures = store_->Exposures();
  if (!exposures.ok()) {
    SendError(res, 500, "GeneralError", exposures.status().message());
    return std::nullopt;
  }
  for (const ExposureRecord& e : *exposures) {
    if (std::to_string(e.id) == req.matches[2] && e.state == "ready") return e;
  }
  SendError(res, 404, "ResourceNotFound", "no connection '" + std::string(req.matches[2]) + "'");
  return std::nullopt;
}

void MockArray::RegisterFabricRoutes(httplib::Server& server) {
  Route(server, "GET", "Fabric.List", "/redfish/v1/Fabrics",
        [](const httplib::Request&, httplib::Response& res) {
          SendCollection(res, "/redfish/v1/Fabrics", "#FabricCollection.FabricCollection",
                         "Fabrics", {FabricPath()});
        });
  Route(server, "GET", "Fabric.Get", "/redfish/v1/Fabrics/([^/]+)",
        [this](const httplib::Request& req, httplib::Response& res) {
          if (!KnownFabric(req, res)) return;
          SendJson(res, 200, [&](JsonWriter& w) {
            w.StartObject();
            Key(w, "@odata.id", FabricPath());
            Key(w, "@odata.type", "#Fabric.v1_3_0.Fabric");
            Key(w, "Id", kFabricId);
            Key(w, "Name", options_.name + " iSCSI");
            Key(w, "FabricType", "iSCSI");
            Link(w, "Connections", ConnectionsPath());
            w.EndObject();
          });
        });

  Route(server, "GET", "Connection.List", "/redfish/v1/Fabrics/([^/]+)/Connections",
        [this](const httplib::Request& req, httplib::Response& res) {
          if (!KnownFabric(req, res)) return;
          std::lock_guard<std::mutex> lock(mu_);
          Result<std::vector<ExposureRecord>> exposures = store_->Exposures();
          if (!exposures.ok()) {
            return SendError(res, 500, "GeneralError", exposures.status().message());
          }
          std::vector<std::string> members;
          for (const ExposureRecord& e : *exposures) {
            if (e.state == "ready")
              members.push_back(ConnectionsPath() + "/" + std::to_string(e.id));
          }
          SendCollection(res, ConnectionsPath(), "#ConnectionCollection.ConnectionCollection",
                         "Connections", members);
        });
  Route(server, "GET", "Connection.Get", "/redfish/v1/Fabrics/([^/]+)/Connections/([^/]+)",
        [this](const httplib::Request& req, httplib::Response& res) {
          if (!KnownFabric(req, res)) return;
          std::lock_guard<std::mutex> lock(mu_);
          std::optional<ExposureRecord> e = FindConnection(req, res);
          if (e) SendJson(res, 200, [&](JsonWriter& w) { WriteConnection(w, *e); });
        });
  Route(server, "DELETE", "Connection.Delete", "/redfish/v1/Fabrics/([^/]+)/Connections/([^/]+)",
        [this](const httplib::Request& req, httplib::Response& res) {
          if (!KnownFabric(req, res)) return;
          std::lock_guard<std::mutex> lock(mu_);
          std::optional<ExposureRecord> e = FindConnection(req, res);
          if (!e) return;
          Status s = RemoveExposure(*e);
          if (!s.ok()) return SendError(res, 500, "GeneralError", s.message());
          res.status = 204;
        });

  Route(
      server, "POST", "Connection.Create", "/redfish/v1/Fabrics/([^/]+)/Connections",
      [this](const httplib::Request& req, httplib::Response& res) {
        if (!KnownFabric(req, res)) return;
        rapidjson::Document doc;
        if (!ParseObject(req, res, doc,
                         {"Name", "ConnectionType", "VolumeInfo", "ConnectionKeys", "Oem"},
                         "a connection")) {
          return;
        }
        ExposureRecord e;
        if (doc.HasMember("Name")) {
          if (!doc["Name"].IsString() || !ValidName(doc["Name"].GetString())) {
            return SendError(res, 400, "PropertyValueFormatError",
                             "Name must be 1 to 64 of [A-Za-z0-9._-]", {"Name"});
          }
          e.name = doc["Name"].GetString();
        }
        if (doc.HasMember("ConnectionType") &&
            (!doc["ConnectionType"].IsString() ||
             doc["ConnectionType"].GetString() != std::string("Storage"))) {
          return SendError(res, 400, "PropertyValueNotInList",
                           "ConnectionType must be \"Storage\": the mock exposes volumes",
                           {"ConnectionType"});
        }
        // The initiator: Oem.Snapset.InitiatorIqn.
        const rapidjson::Value* iqn = nullptr;
        if (doc.HasMember("Oem") && doc["Oem"].IsObject() && doc["Oem"].HasMember("Snapset") &&
            doc["Oem"]["Snapset"].IsObject() && doc["Oem"]["Snapset"].HasMember("InitiatorIqn")) {
          iqn = &doc["Oem"]["Snapset"]["InitiatorIqn"];
        }
        if (iqn == nullptr) {
          return SendError(res, 400, "PropertyMissing",
                           "Oem.Snapset.InitiatorIqn is missing: the initiator that may log in",
                           {"Oem/Snapset/InitiatorIqn"});
        }
        if (!iqn->IsString() || !ValidInitiatorName(iqn->GetString())) {
          return SendError(
              res, 400, "PropertyValueFormatError",
              "Oem.Snapset.InitiatorIqn must be an iSCSI name (iqn.YYYY-MM.domain[:id], "
              "eui.<16 hex> or naa.<hex>)",
              {"Oem/Snapset/InitiatorIqn"});
        }
        e.initiator_iqn = iqn->GetString();
        // One-way CHAP: ConnectionKeys.CHAP.
        if (doc.HasMember("ConnectionKeys")) {
          const rapidjson::Value& keys = doc["ConnectionKeys"];
          if (!keys.IsObject() || !keys.HasMember("CHAP") || !keys["CHAP"].IsObject() ||
              keys.MemberCount() != 1) {
            return SendError(res, 400, "PropertyValueTypeError",
                             "ConnectionKeys must be {\"CHAP\": {\"CHAPUsername\": ..., "
                             "\"CHAPPassword\": ...}}",
                             {"ConnectionKeys"});
          }
          const rapidjson::Value& chap = keys["CHAP"];
          for (const auto& member : chap.GetObject()) {
            const std::string key = member.name.GetString();
            if (key != "CHAPUsername" && key != "CHAPPassword" && key != "CHAPType") {
              return SendError(res, 400, "PropertyNotSupported",
                               "ConnectionKeys.CHAP." + key +
                                   ": the mock does one-way CHAP only (CHAPUsername, "
                                   "CHAPPassword)",
                               {"ConnectionKeys/CHAP/" + key});
            }
          }
          if (chap.HasMember("CHAPType") &&
              (!chap["CHAPType"].IsString() ||
               chap["CHAPType"].GetString() != std::string("OneWay"))) {
            return SendError(res, 400, "PropertyValueNotInList",
                             "ConnectionKeys.CHAP.CHAPType must be \"OneWay\"",
                             {"ConnectionKeys/CHAP/CHAPType"});
          }
          if (!chap.HasMember("CHAPUsername") || !chap["CHAPUsername"].IsString() ||
              !ValidChapUser(chap["CHAPUsername"].GetString())) {
            return SendError(res, 400, "PropertyValueFormatError",
                             "ConnectionKeys.CHAP.CHAPUsername must be 1 to 64 of "
                             "[A-Za-z0-9._:@-]",
                             {"ConnectionKeys/CHAP/CHAPUsername"});
          }
          if (!chap.HasMember("CHAPPassword") || !chap["CHAPPassword"].IsString() ||
              !ValidChapSecret(chap["CHAPPassword"].GetString())) {
            return SendError(res, 400, "PropertyValueFormatError",
                             "ConnectionKeys.CHAP.CHAPPassword must be 12 to 64 printable "
                             "characters without blanks or commas",
                             {"ConnectionKeys/CHAP/CHAPPassword"});
          }
          e.chap_user = chap["CHAPUsername"].GetString();
          e.chap_password = chap["CHAPPassword"].GetString();
        }
        if (!doc.HasMember("VolumeInfo")) {
          return SendError(res, 400, "PropertyMissing", "VolumeInfo is missing", {"VolumeInfo"});
        }
        if (!doc["VolumeInfo"].IsArray() || doc["VolumeInfo"].Empty() ||
            doc["VolumeInfo"].Size() > kMaxLuns) {
          return SendError(res, 400, "PropertyValueTypeError",
                           "VolumeInfo must be an array of 1 to 255 {\"Volume\": {\"@odata.id\": "
                           "...}, \"AccessCapabilities\": [\"Read\", \"Write\"]}",
                           {"VolumeInfo"});
        }

        std::lock_guard<std::mutex> lock(mu_);
        Result<std::vector<VolumeRecord>> volumes = store_->Volumes();
        if (!volumes.ok()) return SendError(res, 500, "GeneralError", volumes.status().message());
        for (const auto& info : doc["VolumeInfo"].GetArray()) {
          if (!info.IsObject() || !info.HasMember("Volume") || !info["Volume"].IsObject() ||
              !info["Volume"].HasMember("@odata.id") || !info["Volume"]["@odata.id"].IsString()) {
            return SendError(res, 400, "PropertyValueTypeError",
                             "each of VolumeInfo needs \"Volume\": {\"@odata.id\": ...}",
                             {"VolumeInfo"});
          }
          const std::string path = info["Volume"]["@odata.id"].GetString();
          const VolumeRecord* found = nullptr;
          for (const VolumeRecord& v : *volumes) {
            if (v.state == "ready" && VolumesPath() + "/" + std::to_string(v.id) == path)
              found = &v;
          }
          if (found == nullptr) {
            return SendError(res, 400, "ResourceNotFound", "no volume at " + path, {"VolumeInfo"});
          }
          bool write = !found->is_snapshot();  // by default what the volume allows
          if (info.HasMember("AccessCapabilities")) {
            const rapidjson::Value& access = info["AccessCapabilities"];
            bool read = false, ok = access.IsArray();
            write = false;
            for (rapidjson::SizeType i = 0; ok && i < access.Size(); ++i) {
              const std::string a = access[i].IsString() ? access[i].GetString() : "";
              read = read || a == "Read";
              write = write || a == "Write";
              ok = a == "Read" || a == "Write";
            }
            if (!ok || !read) {
              return SendError(res, 400, "PropertyValueNotInList",
                               "AccessCapabilities must be [\"Read\"] or [\"Read\", \"Write\"]",
                               {"VolumeInfo/AccessCapabilities"});
            }
            if (write && found->is_snapshot()) {
              return SendError(res, 400, "PropertyValueConflict",
                               path +
                                   " is a snapshot: it is read-only and cannot be exposed "
                                   "with Write",
                               {"VolumeInfo/AccessCapabilities"});
            }
          }
          for (const ExposureLun& lun : e.luns) {
            if (lun.volume_id == found->id) {
              return SendError(res, 400, "PropertyValueConflict", path + " is listed twice",
                               {"VolumeInfo"});
            }
          }
          e.luns.push_back({found->id, static_cast<int>(e.luns.size()) + 1, !write});
        }
        Result<std::vector<ExposureRecord>> exposures = store_->Exposures();
        if (!exposures.ok()) {
          return SendError(res, 500, "GeneralError", exposures.status().message());
        }
        // tgtd keeps one account per CHAP user name.
        for (const ExposureRecord& other : *exposures) {
          if (!e.chap_user.empty() && other.chap_user == e.chap_user &&
              other.chap_password != e.chap_password) {
            return SendError(res, 409, "ResourceInUse",
                             "CHAP user " + e.chap_user + " is in use by connection " + other.name +
                                 " with another password; use the same password "
                                 "or another user name",
                             {"ConnectionKeys/CHAP/CHAPUsername"});
          }
        }
        // The database first, in state "creating": a crash from here on is
        // rolled back at start.
        Result<ExposureRecord> inserted = [&]() -> Result<ExposureRecord> {
          if (!e.name.empty()) return store_->InsertExposure(e);
          for (int n = 1;; ++n) {
            e.name = "connection-" + std::to_string(n);
            Result<ExposureRecord> r = store_->InsertExposure(e);
            if (r.ok() || r.status().code() != Code::kAlreadyExists || n >= 10000) return r;
          }
        }();
        if (!inserted.ok()) {
          if (inserted.status().code() == Code::kAlreadyExists) {
            return SendError(res, 409, "ResourceAlreadyExists", inserted.status().message(),
                             {"Name"});
          }
          return SendError(res, 500, "GeneralError", inserted.status().message());
        }
        Status s = AddExposureTarget(*inserted);
        if (s.ok()) s = store_->SetExposureState(inserted->id, "ready");
        if (!s.ok()) {
          static_cast<void>(tgt_->DeleteTarget(static_cast<int>(inserted->id)));
          static_cast<void>(store_->DeleteExposure(inserted->id));
          return SendError(res, 500, "GeneralError", s.message());
        }
        inserted->state = "ready";
        res.set_header("Location", ConnectionsPath() + "/" + std::to_string(inserted->id));
        SendJson(res, 201, [&](JsonWriter& w) { WriteConnection(w, *inserted); });
      });
}

}  // namespace snapset::mock
