// SPDX-License-Identifier: Apache-2.0
// The mock array's second dialect, "twophase" (snapset-mock-array --dialect
// twophase; docs/mock-array.md): an API unlike Swordfish, after public
// two-phase consistency-group APIs -- fence the group's writes, then commit
// the snapshot -- with its own log-in, token header, resource names, fields,
// jobs polled by id and exposure model. Same store, LUNs, faults and /mock
// routes as the Swordfish dialect.
//
//   POST   /api/v2/auth/login            {"username","password"} -> {"access_token"}
//                                        every other call: X-TP-Session: TOKEN
//   DELETE /api/v2/auth/sessions/ID      log out
//   GET    /api/v2/luns                  {"records":[lun]}; POST {"label","size_bytes"}
//   GET    /api/v2/snapshots             {"records":[snapshot]}; DELETE /snapshots/ID
//   POST   /api/v2/luns/ID/restore       {"snapshot":ID}: the LUN's blocks back to
//                                        that snapshot of it, in place -> 200 {lun}
//   GET    /api/v2/consistency-groups    {"records":[cg]}; POST {"label","luns":[ID]};
//                                        DELETE /consistency-groups/ID
//   POST   /api/v2/fences                {"label","luns":[ID],"timeout_ms"}: holds every
//                                        write to the LUNs until DELETE /fences/ID, a
//                                        commit under it, or the timeout; GET lists them
//   POST   /api/v2/consistency-groups/ID/snapshots  {"labels":[..],"fence":ID?}
//                                        -> 202 {"job":{"id"}}: the commit
//   GET    /api/v2/jobs/ID               {"id","state":"running|success|failure",
//                                         "result":{"snapshots":[..]},"error":{..}}
//   GET    /api/v2/exports               {"records":[export]}; POST {"label",
//                                        "initiator_iqn","chap":{"user","secret"}?,
//                                        "read_only","objects":[ID]}; DELETE /exports/ID
//
// Errors: {"error":{"code":HTTP,"reason":"LABEL_TAKEN|NOT_FOUND|...","detail":"..."}}.
#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "providers/mock-array/mock_array.hpp"
#include "providers/mock-array/redfish_json.hpp"

namespace snapset::mock {
namespace {

constexpr char kApi[] = "/api/v2";
constexpr uint32_t kMaxFenceMs = 60000;

void SendTp(httplib::Response& res, int status, const std::string& reason,
            const std::string& detail) {
  SendJson(res, status, [&](JsonWriter& w) {
    w.StartObject();
    w.Key("error");
    w.StartObject();
    w.Key("code");
    w.Int(status);
    Key(w, "reason", reason);
    Key(w, "detail", detail);
    w.EndObject();
    w.EndObject();
  });
}

// "lun-12" -> 12 for prefix "lun-"; nullopt otherwise.
std::optional<int64_t> IdOf(const std::string& text, const std::string& prefix) {
  if (text.rfind(prefix, 0) != 0 || text.size() == prefix.size()) return std::nullopt;
  int64_t id = 0;
  for (char c : text.substr(prefix.size())) {
    if (c < '0' || c > '9' || id > (int64_t(1) << 50)) return std::nullopt;
    id = id * 10 + (c - '0');
  }
  return id;
}

bool ParseBody(const httplib::Request& req, httplib::Response& res, rapidjson::Document& doc,
               std::initializer_list<const char*> allowed) {
  doc.Parse(req.body.c_str());
  if (doc.HasParseError() || !doc.IsObject()) {
    SendTp(res, 400, "BAD_BODY", "the body is not a JSON object");
    return false;
  }
  for (const auto& m : doc.GetObject()) {
    const std::string key = m.name.GetString();
    if (std::none_of(allowed.begin(), allowed.end(), [&](const char* a) { return key == a; })) {
      SendTp(res, 400, "UNKNOWN_FIELD", key + " is not a field of this request");
      return false;
    }
  }
  return true;
}

// The ids in doc[key], all with `prefix`; false (a 400 sent) otherwise.
bool Ids(const rapidjson::Document& doc, const char* key, const std::string& prefix,
         std::vector<int64_t>* out, httplib::Response& res) {
  if (!doc.HasMember(key) || !doc[key].IsArray() || doc[key].Empty()) {
    SendTp(res, 400, "BAD_FIELD", std::string(key) + " must be a non-empty array of ids");
    return false;
  }
  for (const auto& v : doc[key].GetArray()) {
    std::optional<int64_t> id = v.IsString() ? IdOf(v.GetString(), prefix) : std::nullopt;
    if (!id) {
      SendTp(res, 400, "BAD_FIELD",
             std::string(key) + " must hold ids of the form " + prefix + "N");
      return false;
    }
    out->push_back(*id);
  }
  return true;
}

std::string Label(const rapidjson::Document& doc) {
  return doc.HasMember("label") && doc["label"].IsString() ? doc["label"].GetString() : "";
}

}  // namespace

void MockArray::WriteTpObject(JsonWriter& w, const VolumeRecord& v) const {
  w.StartObject();
  Key(w, "id", (v.is_snapshot() ? "snap-" : "lun-") + std::to_string(v.id));
  Key(w, "label", v.name);
  Key(w, "wwn", "naa." + v.naa);
  Key(w, "serial", v.serial);
  w.Key("size_bytes");
  w.Uint64(v.capacity_bytes);
  w.Key("block_bytes");
  w.Uint(v.block_size);
  if (v.is_snapshot()) Key(w, "parent", "lun-" + std::to_string(v.source_id));
  w.EndObject();
}

std::string MockArray::LunFile(int64_t id) const {
  return gate_ ? gate_->mount_dir() + "/" + std::to_string(id) + ".img" : VolumeFile(id);
}

void MockArray::RegisterTwoPhaseRoutes(httplib::Server& server) {
  const std::string api = kApi;

  Route(server, "POST", "Session.Create", api + "/auth/login",
        [this](const httplib::Request& req, httplib::Response& res) {
          rapidjson::Document doc;
          if (!ParseBody(req, res, doc, {"username", "password"})) return;
          if (!doc.HasMember("username") || !doc["username"].IsString() ||
              !doc.HasMember("password") || !doc["password"].IsString()) {
            return SendTp(res, 400, "BAD_FIELD", "username and password are strings");
          }
          std::optional<Session> s =
              sessions_->Login(doc["username"].GetString(), doc["password"].GetString());
          if (!s) return SendTp(res, 401, "BAD_CREDENTIALS", "wrong user name or password");
          res.set_header("Location", std::string(kApi) + "/auth/sessions/" + s->id);
          SendJson(res, 200, [&](JsonWriter& w) {
            w.StartObject();
            Key(w, "access_token", s->token);
            Key(w, "session", s->id);
            w.EndObject();
          });
        });
  Route(server, "DELETE", "Session.Delete", api + "/auth/sessions/([^/]+)",
        [this](const httplib::Request& req, httplib::Response& res) {
          if (!sessions_->Delete(req.matches[1]))
            return SendTp(res, 404, "NOT_FOUND", "no session");
          res.status = 204;
        });

  auto list = [this](bool snapshots) {
    return [this, snapshots](const httplib::Request&, httplib::Response& res) {
      std::lock_guard<std::mutex> lock(mu_);
      Result<std::vector<VolumeRecord>> all = store_->Volumes();
      if (!all.ok()) return SendTp(res, 500, "INTERNAL", all.status().message());
      SendJson(res, 200, [&](JsonWriter& w) {
        w.StartObject();
        w.Key("records");
        w.StartArray();
        for (const VolumeRecord& v : *all)
          if (v.state == "ready" && v.is_snapshot() == snapshots) WriteTpObject(w, v);
        w.EndArray();
        w.EndObject();
      });
    };
  };
  Route(server, "GET", "Volume.List", api + "/luns", list(false));
  Route(server, "GET", "Snapshot.List", api + "/snapshots", list(true));

  Route(server, "POST", "Volume.Create", api + "/luns",
        [this](const httplib::Request& req, httplib::Response& res) {
          rapidjson::Document doc;
          if (!ParseBody(req, res, doc, {"label", "size_bytes"})) return;
          const std::string label = Label(doc);
          if (!ValidName(label))
            return SendTp(res, 400, "BAD_FIELD", "label: 1 to 64 of [A-Za-z0-9._-]");
          if (!doc.HasMember("size_bytes") || !doc["size_bytes"].IsUint64() ||
              doc["size_bytes"].GetUint64() == 0 || doc["size_bytes"].GetUint64() % 512 != 0) {
            return SendTp(res, 400, "BAD_FIELD", "size_bytes: a positive multiple of 512");
          }
          const uint64_t size = doc["size_bytes"].GetUint64();
          std::lock_guard<std::mutex> lock(mu_);
          Result<uint64_t> used = UsedBytes();
          if (!used.ok()) return SendTp(res, 500, "INTERNAL", used.status().message());
          if (size > options_.pool_capacity_bytes - *used)
            return SendTp(res, 507, "NO_SPACE", "the pool has not that much free");
          Result<VolumeRecord> v = store_->InsertVolume(label, size, 512);
          if (!v.ok()) {
            if (v.status().code() == Code::kAlreadyExists)
              return SendTp(res, 409, "LABEL_TAKEN", v.status().message());
            return SendTp(res, 500, "INTERNAL", v.status().message());
          }
          Status made = PrepareFile(*v);
          if (made.ok()) made = store_->SetState(v->id, "ready");
          if (!made.ok()) {
            Discard(*v);
            return SendTp(res, 500, "INTERNAL", made.message());
          }
          v->state = "ready";
          SendJson(res, 201, [&](JsonWriter& w) { WriteTpObject(w, *v); });
        });

  Route(server, "DELETE", "Snapshot.Delete", api + "/snapshots/([^/]+)",
        [this](const httplib::Request& req, httplib::Response& res) {
          std::optional<int64_t> id = IdOf(req.matches[1], "snap-");
          if (!id)
            return SendTp(res, 404, "NOT_FOUND", "no snapshot " + std::string(req.matches[1]));
          std::lock_guard<std::mutex> lock(mu_);
          Result<std::vector<VolumeRecord>> all = store_->Volumes();
          if (!all.ok()) return SendTp(res, 500, "INTERNAL", all.status().message());
          auto v = std::find_if(all->begin(), all->end(), [&](const VolumeRecord& r) {
            return r.id == *id && r.is_snapshot() && r.state == "ready";
          });
          if (v == all->end())
            return SendTp(res, 404, "NOT_FOUND", "no snapshot snap-" + std::to_string(*id));
          Result<std::vector<std::string>> holders = Holders(*v);
          if (!holders.ok()) return SendTp(res, 500, "INTERNAL", holders.status().message());
          if (!holders->empty())
            return SendTp(res, 409, "IN_USE",
                          "snapshot " + v->name + " is held by " + holders->front());
          Status s = RemoveVolume(*v);
          if (!s.ok()) return SendTp(res, 500, "INTERNAL", s.message());
          res.status = 204;
        });

  Route(server, "POST", "Volume.RevertToSnapshot", api + "/luns/([^/]+)/restore",
        [this](const httplib::Request& req, httplib::Response& res) {
          rapidjson::Document doc;
          if (!ParseBody(req, res, doc, {"snapshot"})) return;
          std::optional<int64_t> snap_id = doc.HasMember("snapshot") && doc["snapshot"].IsString()
                                               ? IdOf(doc["snapshot"].GetString(), "snap-")
                                               : std::nullopt;
          if (!snap_id) return SendTp(res, 400, "BAD_FIELD", "snapshot must be an id snap-N");
          std::optional<int64_t> id = IdOf(req.matches[1], "lun-");
          if (!id) return SendTp(res, 404, "NOT_FOUND", "no LUN " + std::string(req.matches[1]));
          std::lock_guard<std::mutex> lock(mu_);
          Result<std::vector<VolumeRecord>> all = store_->Volumes();
          if (!all.ok()) return SendTp(res, 500, "INTERNAL", all.status().message());
          auto lun = std::find_if(all->begin(), all->end(), [&](const VolumeRecord& r) {
            return r.id == *id && !r.is_snapshot() && r.state == "ready";
          });
          if (lun == all->end())
            return SendTp(res, 404, "NOT_FOUND", "no LUN lun-" + std::to_string(*id));
          VolumeRecord snapshot;
          if (auto refused = RevertRefusal(*lun, *snap_id, &snapshot)) {
            const char* reason = refused->status == 404   ? "NOT_FOUND"
                                 : refused->status == 409 ? "FENCED"
                                                          : "INTERNAL";
            return SendTp(res, refused->status, reason, refused->message);
          }
          Status s = RevertContents(*lun, snapshot);
          if (!s.ok()) return SendTp(res, 500, "INTERNAL", s.message());
          SendJson(res, 200, [&](JsonWriter& w) { WriteTpObject(w, *lun); });
        });

  Route(server, "GET", "ConsistencyGroup.List", api + "/consistency-groups",
        [this](const httplib::Request&, httplib::Response& res) {
          std::lock_guard<std::mutex> lock(mu_);
          Result<std::vector<GroupRecord>> groups = store_->Groups();
          if (!groups.ok()) return SendTp(res, 500, "INTERNAL", groups.status().message());
          SendJson(res, 200, [&](JsonWriter& w) {
            w.StartObject();
            w.Key("records");
            w.StartArray();
            for (const GroupRecord& g : *groups) WriteTpGroup(w, g);
            w.EndArray();
            w.EndObject();
          });
        });
  Route(server, "POST", "ConsistencyGroup.Create", api + "/consistency-groups",
        [this](const httplib::Request& req, httplib::Response& res) {
          rapidjson::Document doc;
          if (!ParseBody(req, res, doc, {"label", "luns"})) return;
          const std::string label = Label(doc);
          if (!ValidName(label))
            return SendTp(res, 400, "BAD_FIELD", "label: 1 to 64 of [A-Za-z0-9._-]");
          std::vector<int64_t> members;
          if (!Ids(doc, "luns", "lun-", &members, res)) return;
          std::lock_guard<std::mutex> lock(mu_);
          Result<std::vector<VolumeRecord>> all = store_->Volumes();
          if (!all.ok()) return SendTp(res, 500, "INTERNAL", all.status().message());
          for (int64_t id : members) {
            if (std::none_of(all->begin(), all->end(), [&](const VolumeRecord& v) {
                  return v.id == id && !v.is_snapshot() && v.state == "ready";
                })) {
              return SendTp(res, 404, "NOT_FOUND", "no lun lun-" + std::to_string(id));
            }
          }
          if (const std::string holder = GroupHolding(members); !holder.empty())
            return SendTp(res, 409, "IN_GROUP", "a lun is already in consistency group " + holder);
          Result<GroupRecord> g = store_->InsertGroup(label, members);
          if (!g.ok()) {
            if (g.status().code() == Code::kAlreadyExists)
              return SendTp(res, 409, "LABEL_TAKEN", g.status().message());
            return SendTp(res, 500, "INTERNAL", g.status().message());
          }
          SendJson(res, 201, [&](JsonWriter& w) { WriteTpGroup(w, *g); });
        });
  Route(server, "DELETE", "ConsistencyGroup.Delete", api + "/consistency-groups/([^/]+)",
        [this](const httplib::Request& req, httplib::Response& res) {
          std::optional<int64_t> id = IdOf(req.matches[1], "cg-");
          std::lock_guard<std::mutex> lock(mu_);
          Result<std::vector<GroupRecord>> groups = store_->Groups();
          if (!groups.ok()) return SendTp(res, 500, "INTERNAL", groups.status().message());
          if (!id || std::none_of(groups->begin(), groups->end(),
                                  [&](const GroupRecord& g) { return g.id == *id; })) {
            return SendTp(res, 404, "NOT_FOUND",
                          "no consistency group " + std::string(req.matches[1]));
          }
          Status s = store_->DeleteGroup(*id);
          if (!s.ok()) return SendTp(res, 500, "INTERNAL", s.message());
          res.status = 204;
        });

  // ---- fences: writes held in the gate ----
  Route(server, "POST", "Fence.Create", api + "/fences",
        [this](const httplib::Request& req, httplib::Response& res) {
          rapidjson::Document doc;
          if (!ParseBody(req, res, doc, {"label", "luns", "timeout_ms", "expires_at_unix_ms"}))
            return;
          const std::string label = Label(doc);
          if (!ValidName(label))
            return SendTp(res, 400, "BAD_FIELD", "label: 1 to 64 of [A-Za-z0-9._-]");
          std::vector<int64_t> luns;
          if (!Ids(doc, "luns", "lun-", &luns, res)) return;
          if (!doc.HasMember("timeout_ms") || !doc["timeout_ms"].IsUint() ||
              doc["timeout_ms"].GetUint() == 0 || doc["timeout_ms"].GetUint() > kMaxFenceMs) {
            return SendTp(res, 400, "BAD_FIELD", "timeout_ms: 1 to 60000");
          }
          // Optional: the fence's end as a time, which a request that
          // reaches the array late cannot stretch.
          std::chrono::milliseconds hold(doc["timeout_ms"].GetUint());
          if (doc.HasMember("expires_at_unix_ms")) {
            if (!doc["expires_at_unix_ms"].IsUint64())
              return SendTp(res, 400, "BAD_FIELD", "expires_at_unix_ms: milliseconds since 1970");
            const auto left = std::chrono::milliseconds(doc["expires_at_unix_ms"].GetUint64()) -
                              std::chrono::duration_cast<std::chrono::milliseconds>(
                                  std::chrono::system_clock::now().time_since_epoch());
            if (left.count() <= 0)
              return SendTp(res, 409, "EXPIRED", "the fence's end has passed; nothing is fenced");
            hold = std::min(hold, left);
          }
          if (!gate_) return SendTp(res, 501, "NOT_SUPPORTED", "this array has no write gate");
          std::lock_guard<std::mutex> lock(mu_);
          ExpireFences();
          for (const auto& [fid, f] : fences_) {
            if (f.label == label)
              return SendTp(res, 409, "LABEL_TAKEN", "a fence is named " + label);
            for (int64_t id : luns)
              if (std::find(f.luns.begin(), f.luns.end(), id) != f.luns.end())
                return SendTp(res, 409, "ALREADY_FENCED",
                              "lun-" + std::to_string(id) + " is fenced by " + f.label);
          }
          std::vector<std::string> files;
          for (int64_t id : luns) files.push_back(std::to_string(id) + ".img");
          const auto until = WriteGate::Clock::now() + hold;
          Fence f{label, luns, gate_->Hold(files, until), until};
          const std::string id = "fence-" + std::to_string(f.hold);
          fences_[id] = f;
          SendJson(res, 201, [&](JsonWriter& w) { WriteTpFence(w, id, f); });
        });
  Route(server, "GET", "Fence.List", api + "/fences",
        [this](const httplib::Request&, httplib::Response& res) {
          std::lock_guard<std::mutex> lock(mu_);
          ExpireFences();
          SendJson(res, 200, [&](JsonWriter& w) {
            w.StartObject();
            w.Key("records");
            w.StartArray();
            for (const auto& [id, f] : fences_) WriteTpFence(w, id, f);
            w.EndArray();
            w.EndObject();
          });
        });
  Route(server, "DELETE", "Fence.Delete", api + "/fences/([^/]+)",
        [this](const httplib::Request& req, httplib::Response& res) {
          std::lock_guard<std::mutex> lock(mu_);
          auto it = fences_.find(req.matches[1]);
          if (it == fences_.end())
            return SendTp(res, 404, "NOT_FOUND", "no fence " + std::string(req.matches[1]));
          if (gate_) gate_->Lift(it->second.hold);
          fences_.erase(it);
          res.status = 204;
        });

  // ---- the commit, as a job ----
  Route(server, "POST", "ConsistencyGroup.Snapshot", api + "/consistency-groups/([^/]+)/snapshots",
        [this](const httplib::Request& req, httplib::Response& res) {
          rapidjson::Document doc;
          if (!ParseBody(req, res, doc, {"labels", "fence"})) return;
          std::vector<std::string> labels;
          if (doc.HasMember("labels")) {
            if (!doc["labels"].IsArray()) return SendTp(res, 400, "BAD_FIELD", "labels: an array");
            for (const auto& l : doc["labels"].GetArray()) {
              if (!l.IsString() || !ValidName(l.GetString()))
                return SendTp(res, 400, "BAD_FIELD", "labels: 1 to 64 of [A-Za-z0-9._-] each");
              labels.push_back(l.GetString());
            }
          }
          std::string fence;
          if (doc.HasMember("fence")) {
            if (!doc["fence"].IsString()) return SendTp(res, 400, "BAD_FIELD", "fence: an id");
            fence = doc["fence"].GetString();
          }
          const std::string group = req.matches[1];
          TaskRequest task{"ConsistencyGroup.Snapshot", req.method, req.path, req.body};
          Result<std::string> job = tasks_.Start(task, [this, group, labels, fence] {
            httplib::Response out;
            CommitTwoPhase(group, labels, fence, out);
            return TaskResult{out.status, {}, out.body};
          });
          if (!job.ok()) return SendTp(res, 503, "BUSY", job.status().message());
          SendJson(res, 202, [&](JsonWriter& w) {
            w.StartObject();
            w.Key("job");
            w.StartObject();
            Key(w, "id", *job);
            w.EndObject();
            w.EndObject();
          });
        });
  Route(server, "GET", "Job.Get", api + "/jobs/([^/]+)",
        [this](const httplib::Request& req, httplib::Response& res) {
          std::optional<TaskInfo> t = tasks_.Get(req.matches[1]);
          if (!t) return SendTp(res, 404, "NOT_FOUND", "no job " + std::string(req.matches[1]));
          const bool ok = t->done() && t->result.status >= 200 && t->result.status < 300;
          SendJson(res, 200, [&](JsonWriter& w) {
            w.StartObject();
            Key(w, "id", t->id);
            Key(w, "state", !t->done() ? "running" : ok ? "success" : "failure");
            if (t->done()) {
              // The operation's own answer, a JSON object.
              w.Key(ok ? "result" : "failure");
              w.RawValue(t->result.body.empty() ? "{}" : t->result.body.c_str(),
                         t->result.body.empty() ? 2 : t->result.body.size(),
                         rapidjson::kObjectType);
            }
            w.EndObject();
          });
        });

  // ---- exports: this dialect's exposure ----
  Route(server, "GET", "Connection.List", api + "/exports",
        [this](const httplib::Request&, httplib::Response& res) {
          std::lock_guard<std::mutex> lock(mu_);
          Result<std::vector<ExposureRecord>> all = store_->Exposures();
          if (!all.ok()) return SendTp(res, 500, "INTERNAL", all.status().message());
          Result<std::vector<VolumeRecord>> volumes = store_->Volumes();
          if (!volumes.ok()) return SendTp(res, 500, "INTERNAL", volumes.status().message());
          SendJson(res, 200, [&](JsonWriter& w) {
            w.StartObject();
            w.Key("records");
            w.StartArray();
            for (const ExposureRecord& e : *all)
              if (e.state == "ready") WriteTpExport(w, e, *volumes);
            w.EndArray();
            w.EndObject();
          });
        });
  Route(server, "POST", "Connection.Create", api + "/exports",
        [this](const httplib::Request& req, httplib::Response& res) {
          rapidjson::Document doc;
          if (!ParseBody(req, res, doc, {"label", "initiator_iqn", "chap", "read_only", "objects"}))
            return;
          const std::string label = Label(doc);
          if (!ValidName(label))
            return SendTp(res, 400, "BAD_FIELD", "label: 1 to 64 of [A-Za-z0-9._-]");
          if (!doc.HasMember("initiator_iqn") || !doc["initiator_iqn"].IsString() ||
              std::string(doc["initiator_iqn"].GetString()).rfind("iqn.", 0) != 0) {
            return SendTp(res, 400, "BAD_FIELD", "initiator_iqn: an iqn. name");
          }
          if (!doc.HasMember("objects") || !doc["objects"].IsArray() || doc["objects"].Empty())
            return SendTp(res, 400, "BAD_FIELD", "objects: a non-empty array of lun- or snap- ids");
          ExposureRecord e;
          e.name = label;
          e.initiator_iqn = doc["initiator_iqn"].GetString();
          if (doc.HasMember("chap")) {
            const auto& c = doc["chap"];
            if (!c.IsObject() || !c.HasMember("user") || !c["user"].IsString() ||
                !c.HasMember("secret") || !c["secret"].IsString())
              return SendTp(res, 400, "BAD_FIELD", "chap: {\"user\", \"secret\"}");
            e.chap_user = c["user"].GetString();
            e.chap_password = c["secret"].GetString();
          }
          const bool read_only = !doc.HasMember("read_only") ||
                                 (doc["read_only"].IsBool() && doc["read_only"].GetBool());
          std::lock_guard<std::mutex> lock(mu_);
          Result<std::vector<VolumeRecord>> all = store_->Volumes();
          if (!all.ok()) return SendTp(res, 500, "INTERNAL", all.status().message());
          int lun = 1;
          for (const auto& o : doc["objects"].GetArray()) {
            const std::string text = o.IsString() ? o.GetString() : "";
            std::optional<int64_t> id = IdOf(text, "snap-");
            if (!id) id = IdOf(text, "lun-");
            auto v = std::find_if(all->begin(), all->end(), [&](const VolumeRecord& r) {
              return id && r.id == *id && r.state == "ready" &&
                     r.is_snapshot() == (text.rfind("snap-", 0) == 0);
            });
            if (v == all->end()) return SendTp(res, 404, "NOT_FOUND", "no object " + text);
            e.luns.push_back({v->id, lun++, read_only || v->is_snapshot()});
          }
          Result<ExposureRecord> inserted = store_->InsertExposure(e);
          if (!inserted.ok()) {
            if (inserted.status().code() == Code::kAlreadyExists)
              return SendTp(res, 409, "LABEL_TAKEN", inserted.status().message());
            return SendTp(res, 500, "INTERNAL", inserted.status().message());
          }
          Status s = AddExposureTarget(*inserted);
          if (s.ok()) s = store_->SetExposureState(inserted->id, "ready");
          if (!s.ok()) {
            static_cast<void>(tgt_->DeleteTarget(static_cast<int>(inserted->id)));
            static_cast<void>(store_->DeleteExposure(inserted->id));
            return SendTp(res, 500, "INTERNAL", s.message());
          }
          inserted->state = "ready";
          SendJson(res, 201, [&](JsonWriter& w) { WriteTpExport(w, *inserted, *all); });
        });
  Route(server, "DELETE", "Connection.Delete", api + "/exports/([^/]+)",
        [this](const httplib::Request& req, httplib::Response& res) {
          std::optional<int64_t> id = IdOf(req.matches[1], "exp-");
          std::lock_guard<std::mutex> lock(mu_);
          Result<std::vector<ExposureRecord>> all = store_->Exposures();
          if (!all.ok()) return SendTp(res, 500, "INTERNAL", all.status().message());
          auto e = std::find_if(all->begin(), all->end(), [&](const ExposureRecord& r) {
            return id && r.id == *id && r.state == "ready";
          });
          if (e == all->end())
            return SendTp(res, 404, "NOT_FOUND", "no export " + std::string(req.matches[1]));
          Status s = RemoveExposure(*e);
          if (!s.ok()) return SendTp(res, 500, "INTERNAL", s.message());
          res.status = 204;
        });
}

void MockArray::CommitTwoPhase(const std::string& group, const std::vector<std::string>& labels,
                               const std::string& fence, httplib::Response& res) {
  std::lock_guard<std::mutex> lock(mu_);
  std::optional<int64_t> id = IdOf(group, "cg-");
  Result<std::vector<GroupRecord>> groups = store_->Groups();
  if (!groups.ok()) return SendTp(res, 500, "INTERNAL", groups.status().message());
  auto g = std::find_if(groups->begin(), groups->end(),
                        [&](const GroupRecord& r) { return id && r.id == *id; });
  if (g == groups->end()) return SendTp(res, 404, "NOT_FOUND", "no consistency group " + group);
  if (!labels.empty() && labels.size() != g->members.size())
    return SendTp(res, 400, "BAD_FIELD", "labels: one per member of " + g->name);
  ExpireFences();
  auto f = fences_.end();
  if (!fence.empty()) {
    f = fences_.find(fence);
    // A fence that timed out has let writes go on: the snapshot would not
    // be of the fenced instant.
    if (f == fences_.end())
      return SendTp(res, 409, "FENCE_EXPIRED",
                    "fence " + fence + " is not up (lifted or timed out)");
  }
  Result<std::vector<VolumeRecord>> all = store_->Volumes();
  if (!all.ok()) return SendTp(res, 500, "INTERNAL", all.status().message());
  std::vector<VolumeRecord> sources;
  for (int64_t m : g->members)
    for (const VolumeRecord& v : *all)
      if (v.id == m && v.state == "ready") sources.push_back(v);
  if (sources.size() != g->members.size())
    return SendTp(res, 500, "INTERNAL", "a member of " + g->name + " is gone");
  // An injected Partial fault: a misbehaving array that snapshots the first
  // members, leaves those snapshots and fails the last FailMembers.
  std::vector<VolumeRecord> failing;
  std::vector<std::string> names = labels;
  if (std::optional<Faults::Fired> partial = faults_.Fire(
          kTwoPhaseSnapshotOperation, [](FaultMode m) { return m == FaultMode::kPartial; })) {
    const size_t k = std::min(sources.size(), static_cast<size_t>(partial->fault.fail_members));
    failing.assign(sources.end() - static_cast<std::ptrdiff_t>(k), sources.end());
    sources.resize(sources.size() - k);
    if (!names.empty()) names.resize(sources.size());
  }
  std::optional<Fault> injected;
  std::vector<VolumeRecord> snaps;
  Status s = SnapshotMembers(sources, names, &injected, &snaps);
  // The commit ends the fence, made or not.
  if (f != fences_.end()) {
    gate_->Lift(f->second.hold);
    fences_.erase(f);
  }
  if (!s.ok()) {
    if (injected)
      return AnswerFault(*injected, "the snapshot of group " + g->name, res, /*twophase=*/true);
    if (s.code() == Code::kAlreadyExists) return SendTp(res, 409, "LABEL_TAKEN", s.message());
    return SendTp(res, 500, "INTERNAL", s.message());
  }
  if (!failing.empty()) return SendTpPartialFailure(*g, snaps, failing, res);
  SendJson(res, 201, [&](JsonWriter& w) {
    w.StartObject();
    w.Key("snapshots");
    w.StartArray();
    for (const VolumeRecord& snap : snaps) WriteTpObject(w, snap);
    w.EndArray();
    w.EndObject();
  });
}

void MockArray::SendTpPartialFailure(const GroupRecord& g, const std::vector<VolumeRecord>& made,
                                     const std::vector<VolumeRecord>& failed,
                                     httplib::Response& res) const {
  std::string failed_text, made_text;
  for (const VolumeRecord& v : failed)
    failed_text += (failed_text.empty() ? "lun-" : ", lun-") + std::to_string(v.id);
  for (const VolumeRecord& v : made)
    made_text += (made_text.empty() ? "" : ", ") + v.name + " (snap-" + std::to_string(v.id) + ")";
  // The error, and the snapshots made as a success would list them.
  SendJson(res, 500, [&](JsonWriter& w) {
    w.StartObject();
    w.Key("error");
    w.StartObject();
    w.Key("code");
    w.Int(500);
    Key(w, "reason", "PARTIAL");
    Key(w, "detail",
        "snapshot of consistency group " + g.name + " failed for " + failed_text +
            "; snapshots created and left on the array: " + (made.empty() ? "none" : made_text));
    w.EndObject();
    w.Key("snapshots");
    w.StartArray();
    for (const VolumeRecord& snap : made) WriteTpObject(w, snap);
    w.EndArray();
    w.EndObject();
  });
}

void MockArray::ExpireFences() {
  const auto now = WriteGate::Clock::now();
  for (auto it = fences_.begin(); it != fences_.end();)
    it = it->second.until <= now ? fences_.erase(it) : std::next(it);
}

void MockArray::WriteTpGroup(JsonWriter& w, const GroupRecord& g) const {
  w.StartObject();
  Key(w, "id", "cg-" + std::to_string(g.id));
  Key(w, "label", g.name);
  w.Key("luns");
  w.StartArray();
  for (int64_t m : g.members) w.String(("lun-" + std::to_string(m)).c_str());
  w.EndArray();
  w.EndObject();
}

void MockArray::WriteTpFence(JsonWriter& w, const std::string& id, const Fence& f) const {
  w.StartObject();
  Key(w, "id", id);
  Key(w, "label", f.label);
  w.Key("luns");
  w.StartArray();
  for (int64_t m : f.luns) w.String(("lun-" + std::to_string(m)).c_str());
  w.EndArray();
  w.Key("expires_in_ms");
  w.Int64(std::max<int64_t>(
      0, std::chrono::duration_cast<std::chrono::milliseconds>(f.until - WriteGate::Clock::now())
             .count()));
  w.EndObject();
}

void MockArray::WriteTpExport(JsonWriter& w, const ExposureRecord& e,
                              const std::vector<VolumeRecord>& volumes) const {
  w.StartObject();
  Key(w, "id", "exp-" + std::to_string(e.id));
  Key(w, "label", e.name);
  Key(w, "initiator_iqn", e.initiator_iqn);
  Key(w, "target_iqn", TargetIqn(e.id));
  Key(w, "portal", options_.iscsi_portal);
  w.Key("luns");
  w.StartArray();
  for (const ExposureLun& l : e.luns) {
    bool snapshot = false;
    for (const VolumeRecord& v : volumes)
      if (v.id == l.volume_id) snapshot = v.is_snapshot();
    w.StartObject();
    Key(w, "object", (snapshot ? "snap-" : "lun-") + std::to_string(l.volume_id));
    w.Key("lun_id");
    w.Int(l.lun);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
}

}  // namespace snapset::mock
