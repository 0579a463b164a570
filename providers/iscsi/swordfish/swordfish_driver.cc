// SPDX-License-Identifier: Apache-2.0
#include "swordfish_driver.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <thread>
#include <utility>

namespace snapset::swordfish {
namespace {

constexpr char kStorage[] = "/redfish/v1/Storage";
constexpr char kFabrics[] = "/redfish/v1/Fabrics";
constexpr auto kDefaultRetryAfter = std::chrono::seconds(1);
// Retry-After is honoured up to this; a larger value is taken as this, so a
// wrong header cannot park a call without a deadline for an hour.
constexpr auto kMaxRetryAfter = std::chrono::seconds(30);

using Json = rapidjson::Value;
using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

std::string ToLower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string Trim(const std::string& s) {
  const size_t first = s.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return "";
  return s.substr(first, s.find_last_not_of(" \t\r\n") - first + 1);
}

bool Is2xx(long status) { return status >= 200 && status < 300; }

// A task monitor's Retry-After (1 s when absent), capped.
std::chrono::milliseconds RetryAfter(const RestResponse& r) {
  return std::min<std::chrono::milliseconds>(r.RetryAfter(kDefaultRetryAfter), kMaxRetryAfter);
}

// Handles are @odata.id paths; anything else never came from this dialect.
Status CheckId(const std::string& op, const char* what, const std::string& id) {
  const bool ok =
      !id.empty() && id[0] == '/' && std::none_of(id.begin(), id.end(), [](unsigned char c) {
        return c <= ' ' || c == '?' || c == '#' || c == 0x7f;
      });
  if (ok) return Status::Ok();
  return Status::InvalidArgument(op + ": the " + what + " '" + id +
                                 "' is not a Swordfish @odata.id (a path such as "
                                 "/redfish/v1/Storage/array/Volumes/1)");
}

// Reads one answer's JSON, naming the call and the member in every error.
class Body {
 public:
  explicit Body(std::string call) : call_(std::move(call)) {}
  const std::string& call() const { return call_; }

  Status Bad(const std::string& at, const std::string& what) const {
    return Status::Unavailable(call_ + ": the array's answer is malformed: " + at + " " + what);
  }

  // obj[key], or nullptr when obj is an object without it (or null there).
  static const Json* Find(const Json& obj, const char* key) {
    if (!obj.IsObject()) return nullptr;
    auto it = obj.FindMember(key);
    if (it == obj.MemberEnd() || it->value.IsNull()) return nullptr;
    return &it->value;
  }

  Result<const Json*> Member(const Json& obj, const char* key, const std::string& at) const {
    const Json* v = Find(obj, key);
    if (v == nullptr) return Bad(Path(at, key), "is missing");
    return v;
  }
  Result<const Json*> Object(const Json& obj, const char* key, const std::string& at) const {
    Result<const Json*> v = Member(obj, key, at);
    if (!v.ok()) return v.status();
    if (!(*v)->IsObject()) return Bad(Path(at, key), "is not an object");
    return v;
  }
  Result<const Json*> Array(const Json& obj, const char* key, const std::string& at) const {
    Result<const Json*> v = Member(obj, key, at);
    if (!v.ok()) return v.status();
    if (!(*v)->IsArray()) return Bad(Path(at, key), "is not an array");
    return v;
  }
  Result<std::string> String(const Json& obj, const char* key, const std::string& at) const {
    Result<const Json*> v = Member(obj, key, at);
    if (!v.ok()) return v.status();
    if (!(*v)->IsString()) return Bad(Path(at, key), "is not a string");
    std::string s((*v)->GetString(), (*v)->GetStringLength());
    if (s.empty()) return Bad(Path(at, key), "is empty");
    return s;
  }
  Result<uint64_t> Uint64(const Json& obj, const char* key, const std::string& at) const {
    Result<const Json*> v = Member(obj, key, at);
    if (!v.ok()) return v.status();
    if (!(*v)->IsUint64()) return Bad(Path(at, key), "is not a non-negative integer");
    return (*v)->GetUint64();
  }
  // obj[key]["@odata.id"]: a link.
  Result<std::string> Link(const Json& obj, const char* key, const std::string& at) const {
    Result<const Json*> v = Object(obj, key, at);
    if (!v.ok()) return v.status();
    return String(**v, "@odata.id", Path(at, key));
  }

  static std::string Path(const std::string& at, const std::string& key) {
    return at.empty() ? key : at + "." + key;
  }
  static std::string Index(const std::string& at, size_t i) {
    return at + "[" + std::to_string(i) + "]";
  }

 private:
  std::string call_;
};

// The NAA of Identifiers[]: lower-case hex without a "naa." prefix.
Result<std::string> ParseNaa(const Body& b, const Json& volume, const std::string& at) {
  Result<const Json*> ids = b.Array(volume, "Identifiers", at);
  if (!ids.ok()) return ids.status();
  const std::string ids_at = Body::Path(at, "Identifiers");
  for (rapidjson::SizeType i = 0; i < (*ids)->Size(); ++i) {
    const Json& id = (**ids)[i];
    const Json* format = Body::Find(id, "DurableNameFormat");
    if (format == nullptr || !format->IsString() || std::string(format->GetString()) != "NAA") {
      continue;
    }
    Result<std::string> name = b.String(id, "DurableName", Body::Index(ids_at, i));
    if (!name.ok()) return name.status();
    std::string naa = ToLower(*name);
    if (naa.rfind("naa.", 0) == 0) naa.erase(0, 4);
    const bool hex =
        std::all_of(naa.begin(), naa.end(), [](unsigned char c) { return std::isxdigit(c) != 0; });
    if (!hex || (naa.size() != 16 && naa.size() != 32)) {
      return b.Bad(Body::Path(Body::Index(ids_at, i), "DurableName"),
                   "'" + *name + "' is not an NAA identifier (16 or 32 hex digits)");
    }
    return naa;
  }
  return b.Bad(ids_at, "has no DurableNameFormat \"NAA\" entry");
}

// A Volume resource (a snapshot is one too).
Result<ArrayVolume> ParseVolume(const Body& b, const Json& v, const std::string& at) {
  if (!v.IsObject()) return b.Bad(at.empty() ? "the body" : at, "is not an object");
  ArrayVolume out;
  Result<std::string> id = b.String(v, "@odata.id", at);
  if (!id.ok()) return id.status();
  out.id = *id;
  Result<std::string> name = b.String(v, "Name", at);
  if (!name.ok()) return name.status();
  out.name = *name;
  Result<std::string> naa = ParseNaa(b, v, at);
  if (!naa.ok()) return naa.status();
  out.naa = *naa;
  Result<uint64_t> capacity = b.Uint64(v, "CapacityBytes", at);
  if (!capacity.ok()) return capacity.status();
  out.capacity_bytes = *capacity;
  Result<uint64_t> block = b.Uint64(v, "BlockSizeBytes", at);
  if (!block.ok()) return block.status();
  if (*block == 0 || *block > UINT32_MAX) {
    return b.Bad(Body::Path(at, "BlockSizeBytes"), std::to_string(*block) + " is out of range");
  }
  out.block_size = static_cast<uint32_t>(*block);
  // The serial is an Oem extension: absent on arrays that do not give it.
  if (const Json* oem = Body::Find(v, "Oem"); oem != nullptr) {
    if (const Json* snapset = Body::Find(*oem, "Snapset"); snapset != nullptr) {
      if (const Json* serial = Body::Find(*snapset, "SerialNumber"); serial != nullptr) {
        if (!serial->IsString()) {
          return b.Bad(Body::Path(at, "Oem.Snapset.SerialNumber"), "is not a string");
        }
        out.serial = Trim(serial->GetString());
      }
    }
  }
  // A replica names its source; a source volume may carry ReplicaInfo too
  // (ReplicaRole "Source"), without a SourceReplica.
  if (const Json* replica = Body::Find(v, "ReplicaInfo"); replica != nullptr) {
    const std::string replica_at = Body::Path(at, "ReplicaInfo");
    if (!replica->IsObject()) return b.Bad(replica_at, "is not an object");
    const Json* role = Body::Find(*replica, "ReplicaRole");
    const bool source_role =
        role != nullptr && role->IsString() && std::string(role->GetString()) == "Source";
    if (!source_role) {
      Result<std::string> source = b.Link(*replica, "SourceReplica", replica_at);
      if (!source.ok()) return source.status();
      out.source_id = *source;
    }
  }
  return out;
}

Result<ArrayGroup> ParseGroup(const Body& b, const Json& g) {
  if (!g.IsObject()) return b.Bad("the body", "is not an object");
  ArrayGroup out;
  Result<std::string> id = b.String(g, "@odata.id", "");
  if (!id.ok()) return id.status();
  out.id = *id;
  Result<std::string> name = b.String(g, "Name", "");
  if (!name.ok()) return name.status();
  out.name = *name;
  Result<const Json*> volumes = b.Array(g, "Volumes", "");
  if (!volumes.ok()) return volumes.status();
  for (rapidjson::SizeType i = 0; i < (*volumes)->Size(); ++i) {
    const Json& link = (**volumes)[i];
    if (!link.IsObject()) return b.Bad(Body::Index("Volumes", i), "is not an object");
    Result<std::string> member = b.String(link, "@odata.id", Body::Index("Volumes", i));
    if (!member.ok()) return member.status();
    out.member_ids.push_back(*member);
  }
  return out;
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

}  // namespace

std::unique_ptr<ArrayDriver> MakeSwordfishDriver(RestEndpoint endpoint) {
  return std::make_unique<SwordfishDriver>(std::move(endpoint));
}

SwordfishDriver::SwordfishDriver(RestEndpoint endpoint)
    : session_(std::make_unique<RestSession>(std::move(endpoint))) {}

std::string SwordfishDriver::PathOf(const std::string& location) const {
  const size_t scheme = location.find("://");
  if (scheme == std::string::npos) return location;
  const size_t path = location.find('/', scheme + 3);
  return path == std::string::npos ? "/" : location.substr(path);
}

Result<RestResponse> SwordfishDriver::Exec(const std::string& method, const std::string& path,
                                           const std::string& body, const ArrayCall& policy) {
  Result<RestResponse> r = session_->Call(method, path, body, policy);
  if (!r.ok() || r->status != 202) return r;
  const std::string call = method + " " + Url(path);
  const std::string monitor = PathOf(r->Header("location"));
  if (monitor.empty()) {
    return Status::Unavailable(call +
                               ": the array answered 202 Accepted without a Location (task "
                               "monitor); whether the operation ran is unknown");
  }
  Result<RestResponse> done = PollMonitor(call, monitor, RetryAfter(*r), policy);
  // Remembered for Settle() when the poll gave no answer, and also when it
  // gave a 5xx: that may be the monitor's own failure while the task still
  // runs (and makes replicas after an abort looked for them). Settle() polls
  // again and takes the next non-202 answer as final.
  if (!done.ok() || done->status >= 500) pending_.push_back({call, monitor});
  return done;
}

Result<RestResponse> SwordfishDriver::PollMonitor(const std::string& call,
                                                  const std::string& monitor,
                                                  std::chrono::milliseconds wait,
                                                  const ArrayCall& policy) {
  rest::JobPolling polling;
  polling.default_wait = kDefaultRetryAfter;
  polling.max_wait = kMaxRetryAfter;
  polling.near_deadline_poll = kNearDeadlinePoll;
  polling.margin = kPollMargin;
  // A job still running at the deadline is remembered by Exec for Settle().
  return rest::PollJob(*session_, call, monitor, wait, policy, {}, polling);
}

Result<rapidjson::Document> SwordfishDriver::GetObject(const std::string& path,
                                                       const ArrayCall& policy) {
  Result<RestResponse> r = Exec("GET", path, "", policy);
  if (!r.ok()) return r.status();
  if (r->status != 200) return StatusFromResponse("GET", Url(path), *r);
  return JsonObject("GET", Url(path), *r);
}

Result<std::vector<std::string>> SwordfishDriver::GetMembers(const std::string& path,
                                                             const ArrayCall& policy) {
  Result<rapidjson::Document> doc = GetObject(path, policy);
  if (!doc.ok()) return doc.status();
  const Body b("GET " + Url(path));
  Result<const Json*> members = b.Array(*doc, "Members", "");
  if (!members.ok()) return members.status();
  std::vector<std::string> out;
  for (rapidjson::SizeType i = 0; i < (*members)->Size(); ++i) {
    const Json& link = (**members)[i];
    if (!link.IsObject()) return b.Bad(Body::Index("Members", i), "is not an object");
    Result<std::string> id = b.String(link, "@odata.id", Body::Index("Members", i));
    if (!id.ok()) return id.status();
    out.push_back(*id);
  }
  return out;
}

Status SwordfishDriver::Discover(const ArrayCall& policy) {
  if (storage_.empty()) {
    Result<std::vector<std::string>> storage = GetMembers(kStorage, policy);
    if (!storage.ok()) return storage.status();
    if (storage->empty()) {
      return Status::NotFound("GET " + Url(kStorage) + ": the array lists no storage");
    }
    // An array with several storage subsystems: the first one is used (the
    // provider has no way yet to name another; the mock has one).
    storage_ = storage->front();
  }
  if (connections_.empty()) {
    Result<std::vector<std::string>> fabrics = GetMembers(kFabrics, policy);
    if (!fabrics.ok()) return fabrics.status();
    for (const std::string& fabric : *fabrics) {
      Result<rapidjson::Document> doc = GetObject(fabric, policy);
      if (!doc.ok()) return doc.status();
      const Json* type = Body::Find(*doc, "FabricType");
      if (type == nullptr || !type->IsString() || std::string(type->GetString()) != "iSCSI") {
        continue;
      }
      // Connections is a link in Swordfish; where it is absent, the
      // conventional path.
      connections_ = fabric + "/Connections";
      if (Body::Find(*doc, "Connections") != nullptr) {
        Result<std::string> link = Body("GET " + Url(fabric)).Link(*doc, "Connections", "");
        if (!link.ok()) return link.status();
        connections_ = *link;
      }
      break;
    }
    if (connections_.empty()) {
      return Status::NotFound("GET " + Url(kFabrics) + ": no fabric of the array has FabricType " +
                              "\"iSCSI\"; it cannot expose LUNs to iSCSI initiators");
    }
  }
  return Status::Ok();
}

Status SwordfishDriver::Warm(const ArrayCall& policy) {
  SNAPSET_RETURN_IF_ERROR(session_->Warm(policy));
  return Discover(policy);
}

Result<std::vector<ArrayVolume>> SwordfishDriver::Inventory(const ArrayCall& policy) {
  SNAPSET_RETURN_IF_ERROR(Discover(policy));
  Result<std::vector<std::string>> members = GetMembers(storage_ + "/Volumes", policy);
  if (!members.ok()) return members.status();
  std::vector<ArrayVolume> out;
  for (const std::string& path : *members) {
    Result<rapidjson::Document> doc = GetObject(path, policy);
    // Deleted between the list and now: it is not part of the inventory.
    if (!doc.ok() && doc.status().IsNotFound()) continue;
    if (!doc.ok()) return doc.status();
    Result<ArrayVolume> volume = ParseVolume(Body("GET " + Url(path)), *doc, "");
    if (!volume.ok()) return volume.status();
    out.push_back(std::move(*volume));
  }
  return out;
}

Result<std::vector<ArrayGroup>> SwordfishDriver::Groups(const ArrayCall& policy) {
  SNAPSET_RETURN_IF_ERROR(Discover(policy));
  Result<std::vector<std::string>> members = GetMembers(storage_ + "/ConsistencyGroups", policy);
  if (!members.ok()) return members.status();
  std::vector<ArrayGroup> out;
  for (const std::string& path : *members) {
    Result<rapidjson::Document> doc = GetObject(path, policy);
    if (!doc.ok() && doc.status().IsNotFound()) continue;  // deleted meanwhile
    if (!doc.ok()) return doc.status();
    Result<ArrayGroup> group = ParseGroup(Body("GET " + Url(path)), *doc);
    if (!group.ok()) return group.status();
    out.push_back(std::move(*group));
  }
  return out;
}

Result<ArrayGroup> SwordfishDriver::CreateGroup(const std::string& name,
                                                const std::vector<std::string>& member_ids,
                                                const ArrayCall& policy) {
  if (name.empty()) return Status::InvalidArgument("CreateGroup: the group name is empty");
  if (member_ids.empty()) return Status::InvalidArgument("CreateGroup: no member volumes");
  for (const std::string& id : member_ids) {
    SNAPSET_RETURN_IF_ERROR(CheckId("CreateGroup", "member volume id", id));
  }
  SNAPSET_RETURN_IF_ERROR(Discover(policy));
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  Key(w, "Name", name);
  w.Key("Volumes");
  w.StartArray();
  for (const std::string& id : member_ids) {
    w.StartObject();
    Key(w, "@odata.id", id);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  const std::string path = storage_ + "/ConsistencyGroups";
  Result<RestResponse> r = Exec("POST", path, buffer.GetString(), policy);
  if (!r.ok()) return r.status();
  if (!Is2xx(r->status)) return StatusFromResponse("POST", Url(path), *r);
  Result<rapidjson::Document> doc = JsonObject("POST", Url(path), *r);
  if (!doc.ok()) return doc.status();
  return ParseGroup(Body("POST " + Url(path)), *doc);
}

Status SwordfishDriver::Deleted(const std::string& method, const std::string& path,
                                const std::string& body, const ArrayCall& policy) {
  Result<RestResponse> r = Exec(method, path, body, policy);
  if (!r.ok()) return r.status();
  if (Is2xx(r->status) || r->status == 404) return Status::Ok();  // 404: already gone
  return StatusFromResponse(method, Url(path), *r);
}

Status SwordfishDriver::DeleteGroup(const std::string& group_id, const ArrayCall& policy) {
  SNAPSET_RETURN_IF_ERROR(CheckId("DeleteGroup", "group id", group_id));
  return Deleted("DELETE", group_id, "", policy);
}

Result<std::vector<ArrayVolume>> SwordfishDriver::SnapshotGroup(const SnapshotRequest& request,
                                                                const ArrayCall& policy) {
  const ArrayGroup& group = request.group;
  const std::vector<std::string>& names = request.names;
  SNAPSET_RETURN_IF_ERROR(CheckId("SnapshotGroup", "group id", group.id));
  if (!names.empty() && names.size() != group.member_ids.size()) {
    return Status::InvalidArgument("SnapshotGroup: " + std::to_string(names.size()) +
                                   " names for a group of " +
                                   std::to_string(group.member_ids.size()) + " volumes");
  }
  // The body is built before the window's one request goes out.
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  Key(w, "ReplicaType", "Snapshot");
  if (!names.empty()) {
    w.Key("TargetVolumeNames");
    w.StartArray();
    for (const std::string& name : names) w.String(name.c_str());
    w.EndArray();
  }
  w.EndObject();
  // The conventional action URI of the group (its
  // Actions.#ConsistencyGroup.CreateReplicaTarget.target): no GET, so the
  // commit is exactly one request (plus task polls, when the array answers
  // 202).
  const std::string path = group.id + "/Actions/ConsistencyGroup.CreateReplicaTarget";
  const std::string call = "POST " + Url(path);
  Result<RestResponse> r = Exec("POST", path, buffer.GetString(), policy);
  // A transport failure may come after the array made the snapshots (the
  // reply was lost): the caller's abort must look for them in Inventory()
  // (by the names it gave), as it must after a 500 from an array that broke
  // all-or-none.
  if (!r.ok()) return r.status();
  if (!Is2xx(r->status)) return StatusFromResponse("POST", Url(path), *r);
  Result<rapidjson::Document> doc = JsonObject("POST", Url(path), *r);
  if (!doc.ok()) return doc.status();
  const Body b(call);
  Result<const Json*> members = b.Array(*doc, "Members", "");
  if (!members.ok()) return members.status();
  std::vector<ArrayVolume> made;
  for (rapidjson::SizeType i = 0; i < (*members)->Size(); ++i) {
    Result<ArrayVolume> snapshot = ParseVolume(b, (**members)[i], Body::Index("Members", i));
    if (!snapshot.ok()) return snapshot.status();
    made.push_back(std::move(*snapshot));
  }
  if (made.size() != group.member_ids.size()) {
    return b.Bad("Members", "has " + std::to_string(made.size()) + " snapshots for a group of " +
                                std::to_string(group.member_ids.size()) + " volumes");
  }
  // Swordfish promises member order; where each snapshot names its source,
  // match by source instead, and insist that every member has its own.
  std::vector<ArrayVolume> ordered;
  for (size_t i = 0; i < group.member_ids.size(); ++i) {
    const std::string& member = group.member_ids[i];
    if (made[i].source_id.empty()) {
      made[i].source_id = member;
      ordered.push_back(made[i]);
      continue;
    }
    auto found = std::find_if(made.begin(), made.end(),
                              [&](const ArrayVolume& s) { return s.source_id == member; });
    if (found == made.end()) {
      return b.Bad("Members", "has no snapshot of the member " + member);
    }
    ordered.push_back(*found);
  }
  return ordered;
}

Status SwordfishDriver::DeleteSnapshot(const std::string& snapshot_id, const ArrayCall& policy) {
  SNAPSET_RETURN_IF_ERROR(CheckId("DeleteSnapshot", "snapshot id", snapshot_id));
  return Deleted("POST", snapshot_id + "/Actions/Volume.RemoveReplicaRelationship",
                 R"({"DeleteTargetVolume":true})", policy);
}

Status SwordfishDriver::Revert(const std::string& volume_id, const std::string& snapshot_id,
                               const ArrayCall& policy) {
  SNAPSET_RETURN_IF_ERROR(CheckId("Revert", "volume id", volume_id));
  SNAPSET_RETURN_IF_ERROR(CheckId("Revert", "snapshot id", snapshot_id));
  Result<rapidjson::Document> volume = GetObject(volume_id, policy);
  if (!volume.ok()) return volume.status();
  const Json* actions = Body::Find(*volume, "Actions");
  const Json* oem = actions ? Body::Find(*actions, "Oem") : nullptr;
  const Json* action = oem ? Body::Find(*oem, "#Snapset.RevertToSnapshot") : nullptr;
  const Json* target = action ? Body::Find(*action, "target") : nullptr;
  if (target == nullptr || !target->IsString() || target->GetStringLength() == 0) {
    return Status::NotImplemented("volume " + Url(volume_id) +
                                  " advertises no Actions.Oem.#Snapset.RevertToSnapshot: this "
                                  "array cannot revert a volume to a snapshot through snapset; "
                                  "restore from the snapshot another way (expose it and copy)");
  }
  const std::string path = PathOf(target->GetString());
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  w.Key("Snapshot");
  w.StartObject();
  Key(w, "@odata.id", snapshot_id);
  w.EndObject();
  w.EndObject();
  Result<RestResponse> r = Exec("POST", path, buffer.GetString(), policy);
  if (!r.ok()) return r.status();
  if (!Is2xx(r->status)) return StatusFromResponse("POST", Url(path), *r);
  return Status::Ok();
}

namespace {

// A Connection: its id, name, target, portal and every volume it maps.
Result<ArrayExposure> ParseExposure(const Body& b, const Json& doc) {
  ArrayExposure out;
  Result<std::string> id = b.String(doc, "@odata.id", "");
  if (!id.ok()) return id.status();
  out.id = *id;
  if (const Json* name = Body::Find(doc, "Name"); name != nullptr && name->IsString()) {
    out.name = name->GetString();
  }
  Result<const Json*> oem = b.Object(doc, "Oem", "");
  if (!oem.ok()) return oem.status();
  Result<const Json*> snapset = b.Object(**oem, "Snapset", "Oem");
  if (!snapset.ok()) return snapset.status();
  Result<std::string> target = b.String(**snapset, "IscsiTarget", "Oem.Snapset");
  if (!target.ok()) return target.status();
  out.target_iqn = *target;
  Result<std::string> portal = b.String(**snapset, "Portal", "Oem.Snapset");
  if (!portal.ok()) return portal.status();
  out.portal = *portal;
  Result<const Json*> infos = b.Array(doc, "VolumeInfo", "");
  if (!infos.ok()) return infos.status();
  for (rapidjson::SizeType i = 0; i < (*infos)->Size(); ++i) {
    const Json& info = (**infos)[i];
    const std::string at = Body::Index("VolumeInfo", i);
    if (!info.IsObject()) return b.Bad(at, "is not an object");
    Result<std::string> volume = b.Link(info, "Volume", at);
    if (!volume.ok()) return volume.status();
    Result<uint64_t> lun = b.Uint64(info, "LUN", at);
    if (!lun.ok()) return lun.status();
    if (*lun > 16383) return b.Bad(Body::Path(at, "LUN"), "is out of range");
    out.volume_ids.push_back(*volume);
    out.luns.push_back(static_cast<int>(*lun));
  }
  return out;
}

}  // namespace

Result<ArrayExposure> SwordfishDriver::Expose(const ExposeRequest& request,
                                              const ArrayCall& policy) {
  if (request.volume_ids.empty()) return Status::InvalidArgument("Expose: no volumes to map");
  if (request.initiator_iqn.empty()) {
    return Status::InvalidArgument("Expose: no initiator IQN to map the volumes to");
  }
  for (const std::string& id : request.volume_ids) {
    SNAPSET_RETURN_IF_ERROR(CheckId("Expose", "volume id", id));
  }
  SNAPSET_RETURN_IF_ERROR(Discover(policy));
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  if (!request.name.empty()) Key(w, "Name", request.name);
  w.Key("VolumeInfo");
  w.StartArray();
  for (const std::string& id : request.volume_ids) {
    w.StartObject();
    Link(w, "Volume", id);
    if (request.read_only) {
      w.Key("AccessCapabilities");
      w.StartArray();
      w.String("Read");
      w.EndArray();
    }
    w.EndObject();
  }
  w.EndArray();
  if (!request.chap_user.empty()) {
    // The secret travels only here, in the request body; no message quotes
    // a request body.
    w.Key("ConnectionKeys");
    w.StartObject();
    w.Key("CHAP");
    w.StartObject();
    Key(w, "CHAPUsername", request.chap_user);
    Key(w, "CHAPPassword", request.chap_password);
    w.EndObject();
    w.EndObject();
  }
  w.Key("Oem");
  w.StartObject();
  w.Key("Snapset");
  w.StartObject();
  Key(w, "InitiatorIqn", request.initiator_iqn);
  w.EndObject();
  w.EndObject();
  w.EndObject();

  const std::string call = "POST " + Url(connections_);
  Result<RestResponse> r = Exec("POST", connections_, buffer.GetString(), policy);
  if (!r.ok()) return r.status();
  if (!Is2xx(r->status)) return StatusFromResponse("POST", Url(connections_), *r);
  const std::string location = PathOf(r->Header("location"));
  Result<rapidjson::Document> doc = JsonObject("POST", Url(connections_), *r);
  const Body b(call);
  auto parse = [&]() -> Result<ArrayExposure> {
    if (!doc.ok()) return doc.status();
    Result<ArrayExposure> out = ParseExposure(b, *doc);
    if (!out.ok()) return out.status();
    // The LUNs in the order asked for.
    std::vector<int> luns;
    for (const std::string& wanted : request.volume_ids) {
      auto found = std::find(out->volume_ids.begin(), out->volume_ids.end(), wanted);
      if (found == out->volume_ids.end()) return b.Bad("VolumeInfo", "does not map " + wanted);
      luns.push_back(out->luns[static_cast<size_t>(found - out->volume_ids.begin())]);
    }
    out->volume_ids = request.volume_ids;
    out->luns = std::move(luns);
    return out;
  };
  Result<ArrayExposure> exposure = parse();
  if (!exposure.ok() && !location.empty()) {
    // The connection exists but cannot be used: do not leave it behind.
    static_cast<void>(Unexpose(location, policy));
  }
  return exposure;
}

Status SwordfishDriver::Unexpose(const std::string& exposure_id, const ArrayCall& policy) {
  SNAPSET_RETURN_IF_ERROR(CheckId("Unexpose", "exposure id", exposure_id));
  return Deleted("DELETE", exposure_id, "", policy);
}

Result<std::vector<ArrayExposure>> SwordfishDriver::Exposures(const ArrayCall& policy) {
  SNAPSET_RETURN_IF_ERROR(Discover(policy));
  Result<std::vector<std::string>> members = GetMembers(connections_, policy);
  if (!members.ok()) return members.status();
  std::vector<ArrayExposure> out;
  for (const std::string& path : *members) {
    Result<rapidjson::Document> doc = GetObject(path, policy);
    if (!doc.ok() && doc.status().IsNotFound()) continue;  // deleted meanwhile
    if (!doc.ok()) return doc.status();
    Result<ArrayExposure> exposure = ParseExposure(Body("GET " + Url(path)), *doc);
    if (!exposure.ok()) return exposure.status();
    out.push_back(std::move(*exposure));
  }
  return out;
}

Status SwordfishDriver::Settle(const ArrayCall& policy) {
  std::vector<Pending> still;
  std::string running;
  for (const Pending& p : pending_) {
    // Poll at once: it may have finished long ago.
    Result<RestResponse> r = PollMonitor(p.call, p.monitor, std::chrono::milliseconds(0), policy);
    if (r.ok()) continue;  // done, whatever the operation answered
    still.push_back(p);
    running += (running.empty() ? "" : "; ") + r.status().message();
  }
  pending_ = std::move(still);
  if (pending_.empty()) return Status::Ok();
  return Status::Unavailable(std::to_string(pending_.size()) +
                             " operation(s) on the array still unfinished: " + running);
}

}  // namespace snapset::swordfish

namespace snapset::swordfish {

Status SwordfishDriver::Open(std::string_view config_json) {
  rapidjson::Document doc;
  doc.Parse(config_json.data(), config_json.size());
  if (doc.HasParseError() || !doc.IsObject())
    return Status::InvalidArgument("the swordfish driver's config is not a JSON object");
  SNAPSET_RETURN_IF_ERROR(rest::CheckKeys(doc, "", {SNAPSET_REST_ENDPOINT_KEYS}));
  Result<rest::EndpointConfig> config = rest::ParseEndpoint(doc);
  if (!config.ok()) return config.status();
  for (const std::string& warning : config->warnings) host().Warning(warning);
  config->endpoint.login = rest::RestLogin::Redfish();
  session_ = std::make_unique<RestSession>(std::move(config->endpoint));
  return Status::Ok();
}

}  // namespace snapset::swordfish
