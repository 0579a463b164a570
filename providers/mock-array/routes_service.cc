#include <httplib.h>

#include <optional>
#include <string>
#include <vector>

#include "providers/mock-array/mock_array.hpp"
#include "providers/mock-array/redfish_json.hpp"

namespace snapset::mock {

void MockArray::RegisterServiceRoutes(httplib::Server& server) {
  auto root = [this](const httplib::Request&, httplib::Response& res) {
    SendJson(res, 200, [&](JsonWriter& w) {
      w.StartObject();
      Key(w, "@odata.id", "/redfish/v1");
      Key(w, "@odata.type", "#ServiceRoot.v1_15_0.ServiceRoot");
      Key(w, "Id", "RootService");
      Key(w, "Name", options_.name);
      Key(w, "RedfishVersion", "1.15.0");
      Link(w, "SessionService", "/redfish/v1/SessionService");
      Link(w, "Storage", "/redfish/v1/Storage");
      Link(w, "Fabrics", "/redfish/v1/Fabrics");
      Link(w, "Tasks", "/redfish/v1/TaskService");
      w.Key("Links");
      w.StartObject();
      Link(w, "Sessions", kSessions);
      w.EndObject();
      w.EndObject();
    });
  };
  Route(server, "GET", "ServiceRoot.Get", "/redfish/v1", root);
  Route(server, "GET", "ServiceRoot.Get", "/redfish/v1/", root);

  Route(server, "POST", "Session.Create", kSessions,
        [this](const httplib::Request& req, httplib::Response& res) {
          rapidjson::Document doc;
          doc.Parse(req.body.c_str());
          if (doc.HasParseError() || !doc.IsObject()) {
            return SendError(res, 400, "MalformedJSON", "the body is not a JSON object");
          }
          for (const char* field : {"UserName", "Password"}) {
            if (!doc.HasMember(field)) {
              return SendError(res, 400, "PropertyMissing", std::string(field) + " is missing",
                               {field});
            }
            if (!doc[field].IsString()) {
              return SendError(res, 400, "PropertyValueTypeError",
                               std::string(field) + " must be a string", {field});
            }
          }
          std::optional<Session> s =
              sessions_->Login(doc["UserName"].GetString(), doc["Password"].GetString());
          if (!s) return SendError(res, 401, "NoValidSession", "wrong user name or password");
          const std::string location = std::string(kSessions) + "/" + s->id;
          res.set_header("X-Auth-Token", s->token);
          res.set_header("Location", location);
          SendJson(res, 201, [&](JsonWriter& w) {
            w.StartObject();
            Key(w, "@odata.id", location);
            Key(w, "@odata.type", "#Session.v1_6_0.Session");
            Key(w, "Id", s->id);
            Key(w, "Name", "Session " + s->id);
            Key(w, "UserName", s->user);
            w.EndObject();
          });
        });
  Route(server, "DELETE", "Session.Delete", std::string(kSessions) + "/([^/]+)",
        [this](const httplib::Request& req, httplib::Response& res) {
          if (!sessions_->Delete(req.matches[1])) {
            return SendError(res, 404, "ResourceNotFound",
                             "no session '" + std::string(req.matches[1]) + "'");
          }
          res.status = 204;
        });

  Route(server, "GET", "Storage.List", "/redfish/v1/Storage",
        [](const httplib::Request&, httplib::Response& res) {
          SendCollection(res, "/redfish/v1/Storage", "#StorageCollection.StorageCollection",
                         "Storage", {StoragePath()});
        });
  Route(server, "GET", "Storage.Get", "/redfish/v1/Storage/([^/]+)",
        [this](const httplib::Request& req, httplib::Response& res) {
          if (!KnownStorage(req, res)) return;
          SendJson(res, 200, [&](JsonWriter& w) {
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

  Route(server, "GET", "StoragePool.List", "/redfish/v1/Storage/([^/]+)/StoragePools",
        [](const httplib::Request& req, httplib::Response& res) {
          if (!KnownStorage(req, res)) return;
          SendCollection(res, StoragePath() + "/StoragePools",
                         "#StoragePoolCollection.StoragePoolCollection", "Storage pools",
                         {PoolPath()});
        });
  Route(server, "GET", "StoragePool.Get", "/redfish/v1/Storage/([^/]+)/StoragePools/([^/]+)",
        [this](const httplib::Request& req, httplib::Response& res) {
          if (!KnownStorage(req, res)) return;
          if (req.matches[2] != kPoolId) {
            return SendError(res, 404, "ResourceNotFound",
                             "no storage pool '" + std::string(req.matches[2]) + "'");
          }
          Result<uint64_t> used = [&] {
            std::lock_guard<std::mutex> lock(mu_);
            return UsedBytes();
          }();
          if (!used.ok()) return SendError(res, 500, "GeneralError", used.status().message());
          const uint64_t total = options_.pool_capacity_bytes;
          SendJson(res, 200, [&](JsonWriter& w) {
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
}

}  // namespace snapset::mock
