// SPDX-License-Identifier: Apache-2.0
// twophase: an array driver for the mock array's second dialect
// (snapset-mock-array --dialect twophase, docs/mock-array.md), written as a
// storage vendor writes one: against the installed SDK (array.hpp) and the
// REST toolkit (rest.hpp) only, loaded by the iSCSI provider with dlopen.
//
// The array's API is two-phase: a fence holds the writes of some LUNs for at
// most a timeout, a commit cuts a consistency group's snapshot (a job polled
// by id) and ends the fence. Everything else -- matching volumes by NAA,
// grouping a set by array, the window, rollback by name, checking exposed
// LUNs on the wire -- the provider does.
//
// Config: the REST toolkit's endpoint keys (rest_url, credentials_file,
// ca_file, insecure, timeouts_ms) and nothing else.
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <memory>
#include <snapset/array.hpp>
#include <snapset/rest.hpp>
#include <string>
#include <vector>

namespace {

using snapset::ArrayCall;
using snapset::ArrayExposure;
using snapset::ArrayFence;
using snapset::ArrayGroup;
using snapset::ArrayVolume;
using snapset::Result;
using snapset::Status;
using snapset::rest::RestResponse;
using Json = rapidjson::Value;

constexpr char kApi[] = "/api/v2";

// A JSON body built with a writer: Body([&](W& w) { ... }).
using W = rapidjson::Writer<rapidjson::StringBuffer>;
template <typename Fn>
std::string Body(Fn&& fill) {
  rapidjson::StringBuffer buffer;
  W w(buffer);
  w.StartObject();
  fill(w);
  w.EndObject();
  return buffer.GetString();
}
void Strings(W& w, const char* key, const std::vector<std::string>& values) {
  w.Key(key);
  w.StartArray();
  for (const std::string& v : values) w.String(v.c_str());
  w.EndArray();
}

std::string Str(const Json& o, const char* key) {
  if (!o.IsObject()) return "";
  auto it = o.FindMember(key);
  return it != o.MemberEnd() && it->value.IsString() ? it->value.GetString() : "";
}

class TwoPhaseDriver final : public snapset::ArrayDriver {
 public:
  using ArrayDriver::ArrayDriver;

  Status Open(std::string_view config_json) override {
    rapidjson::Document doc;
    doc.Parse(config_json.data(), config_json.size());
    if (doc.HasParseError() || !doc.IsObject())
      return Status::InvalidArgument("the twophase driver's config is not a JSON object");
    SNAPSET_RETURN_IF_ERROR(snapset::rest::CheckKeys(doc, "", {SNAPSET_REST_ENDPOINT_KEYS}));
    Result<snapset::rest::EndpointConfig> config = snapset::rest::ParseEndpoint(doc);
    if (!config.ok()) return config.status();
    for (const std::string& warning : config->warnings) host().Warning(warning);
    // This array's log-in: its own path, fields and token header.
    snapset::rest::RestLogin& login = config->endpoint.login;
    login.path = std::string(kApi) + "/auth/login";
    login.user_field = "username";
    login.password_field = "password";
    login.token_response_header = "";
    login.token_field = "access_token";
    login.token_header = "X-TP-Session";
    login.probe_path = std::string(kApi) + "/luns";
    session_ = std::make_unique<snapset::rest::RestSession>(std::move(config->endpoint));
    return Status::Ok();
  }

  Status Warm(const ArrayCall& call) override { return session_->Warm(call); }

  Result<std::vector<ArrayVolume>> Inventory(const ArrayCall& call) override {
    std::vector<ArrayVolume> out;
    for (const char* kind : {"/luns", "/snapshots"}) {
      Result<rapidjson::Document> doc = Get(std::string(kApi) + kind, call);
      if (!doc.ok()) return doc.status();
      for (const Json& r : Records(*doc)) out.push_back(VolumeOf(r));
    }
    return out;
  }

  Result<std::vector<ArrayGroup>> Groups(const ArrayCall& call) override {
    Result<rapidjson::Document> doc = Get(std::string(kApi) + "/consistency-groups", call);
    if (!doc.ok()) return doc.status();
    std::vector<ArrayGroup> out;
    for (const Json& r : Records(*doc)) out.push_back(GroupOf(r));
    return out;
  }

  Result<ArrayGroup> CreateGroup(const std::string& name, const std::vector<std::string>& members,
                                 const ArrayCall& call) override {
    Result<rapidjson::Document> doc =
        Send("POST", std::string(kApi) + "/consistency-groups", Body([&](W& w) {
               w.Key("label");
               w.String(name.c_str());
               Strings(w, "luns", members);
             }),
             call, 201);
    if (!doc.ok()) return doc.status();
    return GroupOf(*doc);
  }

  Status DeleteGroup(const std::string& id, const ArrayCall& call) override {
    return Delete(std::string(kApi) + "/consistency-groups/" + id, call);
  }

  // The commit: one POST (under the set's fence when it has one), then the
  // job's polls. The snapshots come back in member order.
  Result<std::vector<ArrayVolume>> SnapshotGroup(const snapset::SnapshotRequest& request,
                                                 const ArrayCall& call) override {
    const std::string path =
        std::string(kApi) + "/consistency-groups/" + request.group.id + "/snapshots";
    Result<rapidjson::Document> accepted = Send("POST", path, Body([&](W& w) {
                                                  Strings(w, "labels", request.names);
                                                  if (!request.fence_id.empty()) {
                                                    w.Key("fence");
                                                    w.String(request.fence_id.c_str());
                                                  }
                                                }),
                                                call, 202);
    if (!accepted.ok()) return accepted.status();
    const auto job = accepted->FindMember("job");
    if (job == accepted->MemberEnd() || !job->value.IsObject() || Str(job->value, "id").empty())
      return Malformed("POST " + path, "no job id in the 202");
    Result<rapidjson::Document> done = WaitForJob(Str(job->value, "id"), call);
    if (!done.ok()) return done.status();
    std::vector<ArrayVolume> made;
    const auto result = done->FindMember("result");
    if (result != done->MemberEnd() && result->value.IsObject())
      for (const Json& s : Records(result->value, "snapshots")) made.push_back(VolumeOf(s));
    std::vector<ArrayVolume> ordered;
    for (const std::string& member : request.group.member_ids) {
      auto it = std::find_if(made.begin(), made.end(),
                             [&](const ArrayVolume& v) { return v.source_id == member; });
      if (it == made.end()) return Malformed("POST " + path, "no snapshot of member " + member);
      ordered.push_back(*it);
    }
    return ordered;
  }

  Status DeleteSnapshot(const std::string& id, const ArrayCall& call) override {
    return Delete(std::string(kApi) + "/snapshots/" + id, call);
  }

  // In place, synchronous: the LUN keeps its id, WWN and exports.
  Status Revert(const std::string& volume_id, const std::string& snapshot_id,
                const ArrayCall& call) override {
    Result<rapidjson::Document> done =
        Send("POST", std::string(kApi) + "/luns/" + volume_id + "/restore", Body([&](W& w) {
               w.Key("snapshot");
               w.String(snapshot_id.c_str());
             }),
             call, 200);
    return done.status();
  }

  Result<ArrayExposure> Expose(const snapset::ExposeRequest& r, const ArrayCall& call) override {
    Result<rapidjson::Document> doc = Send("POST", std::string(kApi) + "/exports", Body([&](W& w) {
                                             w.Key("label");
                                             w.String(r.name.c_str());
                                             w.Key("initiator_iqn");
                                             w.String(r.initiator_iqn.c_str());
                                             if (!r.chap_user.empty()) {
                                               w.Key("chap");
                                               w.StartObject();
                                               w.Key("user");
                                               w.String(r.chap_user.c_str());
                                               w.Key("secret");
                                               w.String(r.chap_password.c_str());
                                               w.EndObject();
                                             }
                                             w.Key("read_only");
                                             w.Bool(r.read_only);
                                             Strings(w, "objects", r.volume_ids);
                                           }),
                                           call, 201);
    if (!doc.ok()) return doc.status();
    return ExposureOf(*doc);
  }

  Status Unexpose(const std::string& id, const ArrayCall& call) override {
    return Delete(std::string(kApi) + "/exports/" + id, call);
  }

  Result<std::vector<ArrayExposure>> Exposures(const ArrayCall& call) override {
    Result<rapidjson::Document> doc = Get(std::string(kApi) + "/exports", call);
    if (!doc.ok()) return doc.status();
    std::vector<ArrayExposure> out;
    for (const Json& r : Records(*doc)) out.push_back(ExposureOf(r));
    return out;
  }

  // Jobs whose end a deadline cut short: waited for here.
  Status Settle(const ArrayCall& call) override {
    while (!pending_jobs_.empty()) {
      Result<rapidjson::Document> done = WaitForJob(pending_jobs_.back(), call);
      if (!done.ok() && call.expired()) return done.status();
      pending_jobs_.pop_back();  // ended, well or not: nothing runs any more
    }
    return Status::Ok();
  }

  Result<ArrayFence> StartFence(const snapset::FenceRequest& r, const ArrayCall& call) override {
    Result<rapidjson::Document> doc = Send("POST", std::string(kApi) + "/fences", Body([&](W& w) {
                                             w.Key("label");
                                             w.String(r.name.c_str());
                                             Strings(w, "luns", r.volume_ids);
                                             w.Key("timeout_ms");
                                             w.Uint64(uint64_t(r.timeout.count()));
                                             if (r.expires_realtime_ns > 0) {  // host 1.1
                                               w.Key("expires_at_unix_ms");
                                               w.Uint64(uint64_t(r.expires_realtime_ns / 1000000));
                                             }
                                           }),
                                           call, 201);
    if (!doc.ok()) return doc.status();
    return FenceOf(*doc);
  }

  Status LiftFence(const std::string& id, const ArrayCall& call) override {
    return Delete(std::string(kApi) + "/fences/" + id, call);
  }

  Result<std::vector<ArrayFence>> Fences(const ArrayCall& call) override {
    Result<rapidjson::Document> doc = Get(std::string(kApi) + "/fences", call);
    if (!doc.ok()) return doc.status();
    std::vector<ArrayFence> out;
    for (const Json& r : Records(*doc)) out.push_back(FenceOf(r));
    return out;
  }

  snapset::ArrayCounters counters() const override {
    return {uint64_t(session_->requests()), uint64_t(session_->logins())};
  }

 private:
  // ---- the array's answers ----
  static std::vector<std::reference_wrapper<const Json>> Records(const Json& doc,
                                                                 const char* key = "records") {
    std::vector<std::reference_wrapper<const Json>> out;
    auto it = doc.FindMember(key);
    if (it == doc.MemberEnd() || !it->value.IsArray()) return out;
    for (const Json& r : it->value.GetArray())
      if (r.IsObject()) out.emplace_back(r);
    return out;
  }
  static ArrayVolume VolumeOf(const Json& r) {
    ArrayVolume v;
    v.id = Str(r, "id");
    v.name = Str(r, "label");
    v.naa = Str(r, "wwn");
    if (v.naa.rfind("naa.", 0) == 0) v.naa.erase(0, 4);
    v.serial = Str(r, "serial");
    if (r.HasMember("size_bytes") && r["size_bytes"].IsUint64())
      v.capacity_bytes = r["size_bytes"].GetUint64();
    if (r.HasMember("block_bytes") && r["block_bytes"].IsUint())
      v.block_size = r["block_bytes"].GetUint();
    v.source_id = Str(r, "parent");
    return v;
  }
  static ArrayGroup GroupOf(const Json& r) {
    ArrayGroup g{Str(r, "id"), Str(r, "label"), {}};
    if (r.HasMember("luns") && r["luns"].IsArray())
      for (const Json& m : r["luns"].GetArray())
        if (m.IsString()) g.member_ids.push_back(m.GetString());
    return g;
  }
  static ArrayExposure ExposureOf(const Json& r) {
    ArrayExposure e;
    e.id = Str(r, "id");
    e.name = Str(r, "label");
    e.target_iqn = Str(r, "target_iqn");
    e.portal = Str(r, "portal");
    e.initiator_iqn = Str(r, "initiator_iqn");
    for (const Json& l : Records(r, "luns")) {
      e.volume_ids.push_back(Str(l, "object"));
      e.luns.push_back(l.HasMember("lun_id") && l["lun_id"].IsInt() ? l["lun_id"].GetInt() : -1);
    }
    return e;
  }
  static ArrayFence FenceOf(const Json& r) {
    ArrayFence f{Str(r, "id"), Str(r, "label"), {}, -1};
    if (r.HasMember("luns") && r["luns"].IsArray())
      for (const Json& m : r["luns"].GetArray())
        if (m.IsString()) f.volume_ids.push_back(m.GetString());
    if (r.HasMember("expires_in_ms") && r["expires_in_ms"].IsInt64())
      f.remaining_ms = r["expires_in_ms"].GetInt64();
    return f;
  }

  // ---- requests ----
  std::string What(const std::string& method, const std::string& path) const {
    return method + " " + session_->base_url() + path;
  }
  static Status Malformed(const std::string& what, const std::string& why) {
    return Status::Unavailable(what + ": the array's answer is malformed: " + why);
  }
  // A refusal as snapset's codes (array.h): 409 LABEL_TAKEN is a name taken,
  // any other 409 a state that forbids it now (the object is still there).
  Status Refused(const std::string& what, const RestResponse& r) const {
    rapidjson::Document d;
    d.Parse(r.body.c_str());
    std::string reason, detail;
    if (d.IsObject() && d.HasMember("error") && d["error"].IsObject()) {
      reason = Str(d["error"], "reason");
      detail = Str(d["error"], "detail");
    }
    // A body that is no error of this API (a proxy's page, a cut-off
    // answer) is said to be one.
    const std::string said = d.IsObject()     ? " " + reason + " (" + detail + ")"
                             : r.body.empty() ? ", with no body"
                                              : ", with a body that is not a JSON object";
    const std::string m =
        session_->Redact(what + ": the array answered " + std::to_string(r.status) + said);
    switch (r.status) {
      case 400:
        return Status::InvalidArgument(m);
      case 401:
      case 403:
        return Status::InvalidArgument(m + "; check credentials_file");
      case 404:
        return Status::NotFound(m);
      case 409:
        return reason == "LABEL_TAKEN" ? Status::AlreadyExists(m) : Status::BadState(m);
      case 507:
        return Status::InsufficientStorage(m);
      default:
        return Status::Unavailable(m);
    }
  }
  // Sends and expects `ok` with a JSON object.
  Result<rapidjson::Document> Send(const std::string& method, const std::string& path,
                                   const std::string& body, const ArrayCall& call, long ok) {
    Result<RestResponse> r = session_->Call(method, path, body, call);
    if (!r.ok()) {
      if (call.expired()) return call.DeadlinePassed(r.status().message());
      return r.status();
    }
    if (r->status != ok) return Refused(What(method, path), *r);
    rapidjson::Document d;
    d.Parse(r->body.c_str());
    if (d.HasParseError() || !d.IsObject())
      return Malformed(What(method, path), "not a JSON object");
    return d;
  }
  Result<rapidjson::Document> Get(const std::string& path, const ArrayCall& call) {
    return Send("GET", path, "", call, 200);
  }
  // Idempotent: gone already (404) is done.
  Status Delete(const std::string& path, const ArrayCall& call) {
    Result<RestResponse> r = session_->Call("DELETE", path, "", call);
    if (!r.ok()) return r.status();
    if (r->status == 204 || r->status == 200 || r->status == 404) return Status::Ok();
    return Refused(What("DELETE", path), *r);
  }
  // The job's final answer; a job still running at the deadline is kept for
  // Settle().
  Result<rapidjson::Document> WaitForJob(const std::string& id, const ArrayCall& call) {
    const std::string path = std::string(kApi) + "/jobs/" + id;
    Result<RestResponse> r =
        // A group snapshot takes milliseconds here: the first poll soon, then
        // every 10 ms (the array gives no Retry-After).
        snapset::rest::PollJob(*session_, "job " + id, path, std::chrono::milliseconds(5), call,
                               [](const RestResponse& a) {
                                 rapidjson::Document d;
                                 d.Parse(a.body.c_str());
                                 return !d.IsObject() || Str(d, "state") != "running";
                               },
                               {std::chrono::milliseconds(10), std::chrono::milliseconds(1000),
                                std::chrono::milliseconds(10), std::chrono::milliseconds(10)});
    if (!r.ok()) {
      if (std::find(pending_jobs_.begin(), pending_jobs_.end(), id) == pending_jobs_.end())
        pending_jobs_.push_back(id);
      return r.status();
    }
    if (r->status != 200) return Refused(What("GET", path), *r);
    rapidjson::Document d;
    d.Parse(r->body.c_str());
    if (!d.IsObject()) return Malformed(What("GET", path), "not a JSON object");
    if (Str(d, "state") == "success") return d;
    // A failed job carries the operation's own refusal.
    RestResponse failure;
    failure.status = 500;
    if (d.HasMember("failure") && d["failure"].IsObject()) {
      rapidjson::StringBuffer b;
      W w(b);
      d["failure"].Accept(w);
      failure.body = b.GetString();
      const Json& e = d["failure"];
      if (e.HasMember("error") && e["error"].IsObject() && e["error"].HasMember("code") &&
          e["error"]["code"].IsInt())
        failure.status = e["error"]["code"].GetInt();
    }
    return Refused("job " + id + " at " + session_->base_url(), failure);
  }

  std::unique_ptr<snapset::rest::RestSession> session_;
  std::vector<std::string> pending_jobs_;
};

}  // namespace

SNAPSET_ARRAY_DRIVER(TwoPhaseDriver)
