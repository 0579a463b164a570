#include <httplib.h>

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "providers/mock-array/mock_array.hpp"
#include "providers/mock-array/redfish_json.hpp"

namespace snapset::mock {
namespace {

void Message(JsonWriter& w, const std::string& id, const std::string& text, const std::string& arg,
             const char* severity) {
  w.StartObject();
  Key(w, "@odata.type", "#Message.v1_1_1.Message");
  Key(w, "MessageId", "Base.1.8." + id);
  Key(w, "Message", text);
  w.Key("MessageArgs");
  w.StartArray();
  w.String(arg.c_str());
  w.EndArray();
  Key(w, "Severity", severity);
  w.EndObject();
}

// The 500 of an injected Partial fault: its message and one ExtendedInfo
// entry each name the members whose snapshot failed and the snapshots that
// were made and left on the array, for a provider to clean up.
void SendPartialFailure(const GroupRecord& g, const std::vector<VolumeRecord>& made,
                        const std::vector<VolumeRecord>& failed, httplib::Response& res) {
  auto path = [](const VolumeRecord& v) { return VolumesPath() + "/" + std::to_string(v.id); };
  std::string failed_text, made_text;
  for (const VolumeRecord& v : failed) {
    failed_text += (failed_text.empty() ? "" : ", ") + v.name + " (" + path(v) + ")";
  }
  for (const VolumeRecord& v : made) {
    made_text += (made_text.empty() ? "" : ", ") + v.name + " (" + path(v) + ")";
  }
  const std::string message =
      "snapshot of consistency group " + g.name + " failed for member(s) " + failed_text +
      "; snapshots created and left on the array: " + (made.empty() ? "none" : made_text);
  SendJson(res, 500, [&](JsonWriter& w) {
    w.StartObject();
    w.Key("error");
    w.StartObject();
    Key(w, "code", "Base.1.8.GeneralError");
    Key(w, "message", message);
    w.Key("@Message.ExtendedInfo");
    w.StartArray();
    for (const VolumeRecord& v : failed) {
      Message(w, "GeneralError", "the snapshot of member " + v.name + " failed", path(v),
              "Critical");
    }
    for (const VolumeRecord& v : made) {
      Message(w, "ResourceCreated", "snapshot " + v.name + " was created and left on the array",
              path(v), "Warning");
    }
    w.EndArray();
    w.Key("Oem");
    w.StartObject();
    w.Key("Snapset");
    w.StartObject();
    w.Key("FailedMembers");
    w.StartArray();
    for (const VolumeRecord& v : failed) w.String(path(v).c_str());
    w.EndArray();
    w.Key("CreatedSnapshots");
    w.StartArray();
    for (const VolumeRecord& v : made) w.String(path(v).c_str());
    w.EndArray();
    w.EndObject();
    w.EndObject();
    w.EndObject();
    w.EndObject();
  });
}

}  // namespace

void MockArray::RegisterGroupRoutes(httplib::Server& server) {
  Route(server, "GET", "ConsistencyGroup.List", "/redfish/v1/Storage/([^/]+)/ConsistencyGroups",
        [this](const httplib::Request& req, httplib::Response& res) {
          if (!KnownStorage(req, res)) return;
          std::lock_guard<std::mutex> lock(mu_);
          Result<std::vector<GroupRecord>> groups = store_->Groups();
          if (!groups.ok()) {
            return SendError(res, 500, "GeneralError", groups.status().message());
          }
          std::vector<std::string> members;
          for (const GroupRecord& g : *groups) {
            members.push_back(GroupsPath() + "/" + std::to_string(g.id));
          }
          SendCollection(res, GroupsPath(),
                         "#ConsistencyGroupCollection.ConsistencyGroupCollection",
                         "Consistency groups", members);
        });
  Route(server, "GET", "ConsistencyGroup.Get",
        "/redfish/v1/Storage/([^/]+)/ConsistencyGroups/([^/]+)",
        [this](const httplib::Request& req, httplib::Response& res) {
          if (!KnownStorage(req, res)) return;
          std::lock_guard<std::mutex> lock(mu_);
          std::optional<GroupRecord> g = FindGroup(req, res);
          if (g) SendJson(res, 200, [&](JsonWriter& w) { WriteGroup(w, *g); });
        });
  Route(server, "DELETE", "ConsistencyGroup.Delete",
        "/redfish/v1/Storage/([^/]+)/ConsistencyGroups/([^/]+)",
        [this](const httplib::Request& req, httplib::Response& res) {
          if (!KnownStorage(req, res)) return;
          std::lock_guard<std::mutex> lock(mu_);
          std::optional<GroupRecord> g = FindGroup(req, res);
          if (!g) return;
          Status s = store_->DeleteGroup(g->id);
          if (!s.ok()) return SendError(res, 500, "GeneralError", s.message());
          res.status = 204;
        });

  Route(server, "POST", "ConsistencyGroup.Create", "/redfish/v1/Storage/([^/]+)/ConsistencyGroups",
        [this](const httplib::Request& req, httplib::Response& res) {
          if (!KnownStorage(req, res)) return;
          rapidjson::Document doc;
          if (!ParseObject(req, res, doc, {"Name", "Volumes"}, "a consistency group")) {
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
            return SendError(res, 400, "PropertyMissing", "Volumes is missing", {"Volumes"});
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
            if (!link.IsObject() || !link.HasMember("@odata.id") || !link["@odata.id"].IsString()) {
              return SendError(res, 400, "PropertyValueTypeError",
                               "each of Volumes must be {\"@odata.id\": ...}", {"Volumes"});
            }
            const std::string path = link["@odata.id"].GetString();
            const VolumeRecord* found = nullptr;
            for (const VolumeRecord& v : *volumes) {
              if (v.state == "ready" && VolumesPath() + "/" + std::to_string(v.id) == path) {
                found = &v;
              }
            }
            if (found == nullptr) {
              return SendError(res, 400, "ResourceNotFound", "no volume at " + path, {"Volumes"});
            }
            if (found->is_snapshot()) {
              return SendError(res, 400, "PropertyValueConflict",
                               path + " is a snapshot; a group holds volumes", {"Volumes"});
            }
            if (std::find(members.begin(), members.end(), found->id) != members.end()) {
              return SendError(res, 400, "PropertyValueConflict", path + " is listed twice",
                               {"Volumes"});
            }
            members.push_back(found->id);
          }
          if (const std::string holder = GroupHolding(members); !holder.empty()) {
            return SendError(res, 409, "ResourceInUse",
                             "a member is already in consistency group " + holder +
                                 ", and a volume of this array may be in one group only",
                             {"Volumes"});
          }
          Result<GroupRecord> g = store_->InsertGroup(doc["Name"].GetString(), members);
          if (!g.ok()) {
            if (g.status().code() == Code::kAlreadyExists) {
              return SendError(res, 409, "ResourceAlreadyExists", g.status().message(), {"Name"});
            }
            return SendError(res, 500, "GeneralError", g.status().message());
          }
          res.set_header("Location", GroupsPath() + "/" + std::to_string(g->id));
          SendJson(res, 201, [&](JsonWriter& w) { WriteGroup(w, *g); });
        });

  Route(
      server, "POST", "ConsistencyGroup.CreateReplicaTarget",
      "/redfish/v1/Storage/([^/]+)/ConsistencyGroups/([^/]+)/Actions/"
      "ConsistencyGroup.CreateReplicaTarget",
      [this](const httplib::Request& req, httplib::Response& res) {
        if (!KnownStorage(req, res)) return;
        rapidjson::Document doc;
        if (!ParseObject(req, res, doc, {"ReplicaType", "TargetVolumeNames"},
                         "ConsistencyGroup.CreateReplicaTarget")) {
          return;
        }
        if (!SnapshotTypeGiven(doc, res)) return;
        // Optional: a name per member, in member order, so that a caller can
        // find its snapshots again after a lost reply or a crash.
        std::vector<std::string> names;
        if (doc.HasMember("TargetVolumeNames")) {
          const rapidjson::Value& given = doc["TargetVolumeNames"];
          bool valid = given.IsArray();
          for (rapidjson::SizeType i = 0; valid && i < given.Size(); ++i) {
            valid = given[i].IsString() && ValidName(given[i].GetString());
            if (valid) names.push_back(given[i].GetString());
          }
          if (!valid) {
            return SendError(res, 400, "PropertyValueFormatError",
                             "TargetVolumeNames must be an array of names of 1 to 64 of "
                             "[A-Za-z0-9._-]",
                             {"TargetVolumeNames"});
          }
        }
        std::lock_guard<std::mutex> lock(mu_);
        std::optional<GroupRecord> g = FindGroup(req, res);
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
        if (!names.empty() && names.size() != sources.size()) {
          return SendError(res, 400, "PropertyValueError",
                           "TargetVolumeNames has " + std::to_string(names.size()) +
                               " names for a group of " + std::to_string(sources.size()) +
                               " volumes",
                           {"TargetVolumeNames"});
        }
        // An injected Partial fault: a misbehaving array that snapshots the
        // first members, leaves those snapshots in place and fails the last
        // FailMembers (docs/mock-array.md, "Fault injection").
        std::vector<VolumeRecord> failing;
        if (std::optional<Faults::Fired> partial = faults_.Fire(
                kGroupSnapshotOperation, [](FaultMode m) { return m == FaultMode::kPartial; })) {
          const size_t k =
              std::min(sources.size(), static_cast<size_t>(partial->fault.fail_members));
          failing.assign(sources.end() - static_cast<std::ptrdiff_t>(k), sources.end());
          sources.resize(sources.size() - k);
          if (!names.empty()) names.resize(sources.size());
        }
        // An injected fault may stall or fail the copy of a member.
        std::optional<Fault> injected;
        std::vector<VolumeRecord> snaps;
        Status s = SnapshotMembers(sources, names, &injected, &snaps);
        if (!s.ok()) {
          if (injected) return AnswerFault(*injected, "the snapshot of group " + g->name, res);
          if (s.code() == Code::kAlreadyExists) {
            return SendError(res, 409, "ResourceAlreadyExists", s.message(),
                             {"TargetVolumeNames"});
          }
          return SendError(res, 500, "GeneralError", s.message());
        }
        if (!failing.empty()) return SendPartialFailure(*g, snaps, failing, res);
        SendJson(res, 201, [&](JsonWriter& w) {
          w.StartObject();
          Key(w, "@odata.type", "#Collection.SnapshotSet");
          Link(w, "ConsistencyGroup", GroupsPath() + "/" + std::to_string(g->id));
          w.Key("Members");
          w.StartArray();
          for (const VolumeRecord& snap : snaps) WriteVolume(w, snap);
          w.EndArray();
          w.Key("Members@odata.count");
          w.Uint64(snaps.size());
          w.EndObject();
        });
      });
}

}  // namespace snapset::mock
