#include "providers/mock-array/redfish_json.hpp"

#include <httplib.h>

#include <cctype>

namespace snapset::mock {
namespace {

constexpr char kRegistry[] = "Base.1.8.";
constexpr size_t kMaxNameLength = 64;

}  // namespace

void SendJson(httplib::Response& res, int status, const std::function<void(JsonWriter&)>& body) {
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  body(w);
  res.status = status;
  res.set_content(buffer.GetString(), buffer.GetSize(), "application/json");
}

void Key(JsonWriter& w, const char* key, const std::string& value) {
  w.Key(key);
  w.String(value.c_str(), static_cast<rapidjson::SizeType>(value.size()));
}

void Link(JsonWriter& w, const char* key, const std::string& path) {
  w.Key(key);
  w.StartObject();
  Key(w, "@odata.id", path);
  w.EndObject();
}

void SendCollection(httplib::Response& res, const std::string& path, const std::string& type,
                    const std::string& name, const std::vector<std::string>& members) {
  SendJson(res, 200, [&](JsonWriter& w) {
    w.StartObject();
    Key(w, "@odata.id", path);
    Key(w, "@odata.type", type);
    Key(w, "Name", name);
    w.Key("Members");
    w.StartArray();
    for (const std::string& member : members) {
      w.StartObject();
      Key(w, "@odata.id", member);
      w.EndObject();
    }
    w.EndArray();
    w.Key("Members@odata.count");
    w.Uint64(members.size());
    w.EndObject();
  });
}

void SendError(httplib::Response& res, int status, const std::string& message_id,
               const std::string& message, const std::vector<std::string>& properties) {
  SendJson(res, status, [&](JsonWriter& w) {
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

bool ParseObject(const httplib::Request& req, httplib::Response& res, rapidjson::Document& doc,
                 const std::set<std::string>& allowed, const std::string& what) {
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
}

bool SnapshotTypeGiven(const rapidjson::Document& doc, httplib::Response& res) {
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
}

bool ValidName(const std::string& name) {
  if (name.empty() || name.size() > kMaxNameLength) return false;
  for (unsigned char c : name) {
    if (!std::isalnum(c) && c != '-' && c != '_' && c != '.') return false;
  }
  return true;
}

bool KnownStorage(const httplib::Request& req, httplib::Response& res) {
  if (req.matches[1] == kStorageId) return true;
  SendError(
      res, 404, "ResourceNotFound",
      "no storage '" + std::string(req.matches[1]) + "'; this array has '" + kStorageId + "'");
  return false;
}

}  // namespace snapset::mock
