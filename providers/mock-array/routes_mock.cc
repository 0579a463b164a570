// Fault injection and the mock's own routes: /mock/faults, /mock/requests,
// /mock/state, /mock/reset (docs/mock-array.md). The /mock routes are registered on the
// server directly, not through Route(): no fault and no 429 / 503 refusal
// ever applies to them, so a test can always disarm what it armed. The
// pre-routing handler lets only an Administrator's session in.
#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "providers/mock-array/faults.hpp"
#include "providers/mock-array/mock_array.hpp"
#include "providers/mock-array/redfish_json.hpp"

namespace snapset::mock {
namespace {

constexpr char kFaultsPath[] = "/mock/faults";

// Server threads: more than Route()'s 16 state-changing requests that may
// wait in the door (so its 429 can happen at all) plus room for reads and
// the /mock routes, e.g. a DELETE /mock/faults that ends hangs. httplib's
// default is 8.
constexpr size_t kServerThreads = 48;

// httplib's thread pool, ending every hang when the server shuts down: the
// pool joins its threads, and a hanging handler would hold it up for as
// long as kMaxHang.
class ServerThreads : public httplib::TaskQueue {
 public:
  ServerThreads(size_t n, Faults* faults) : pool_(n), faults_(faults) {}
  void enqueue(std::function<void()> fn) override { pool_.enqueue(std::move(fn)); }
  void shutdown() override {
    faults_->Shutdown();
    pool_.shutdown();
  }

 private:
  httplib::ThreadPool pool_;
  Faults* faults_;
};

// Redfish Base message ids for an injected error's status.
std::string MessageIdFor(int status) {
  switch (status) {
    case 401:
      return "NoValidSession";
    case 403:
      return "InsufficientPrivilege";
    case 404:
      return "ResourceNotFound";
    case 409:
      return "ResourceInUse";
    case 429:
    case 503:
      return "ServiceTemporarilyUnavailable";
    case 500:
      return "InternalError";
    default:
      return "GeneralError";
  }
}

void WriteFault(JsonWriter& w, const Fault& f) {
  w.StartObject();
  Key(w, "@odata.id", std::string(kFaultsPath) + "/" + std::to_string(f.id));
  Key(w, "Id", std::to_string(f.id));
  Key(w, "Operation", f.operation);
  Key(w, "Mode", FaultModeName(f.mode));
  if (f.mode == FaultMode::kTargetOffline) {
    w.Key("DurationMs");
    w.Int64(f.duration_ms);
  } else {
    w.Key("Count");
    w.Int64(f.count);
    w.Key("Remaining");  // null: until deleted
    if (f.count == 0) {
      w.Null();
    } else {
      w.Int64(f.remaining);
    }
  }
  switch (f.mode) {
    case FaultMode::kError:
      w.Key("Status");
      w.Int(f.status);
      if (f.status == 429 || f.status == 503) {
        w.Key("RetryAfterS");
        w.Int(f.retry_after_s);
      }
      break;
    case FaultMode::kDelay:
      w.Key("DelayMs");
      w.Int64(f.delay_ms);
      break;
    case FaultMode::kPartial:
      w.Key("FailMembers");
      w.Int(f.fail_members);
      break;
    default:
      break;
  }
  w.EndObject();
}

void WriteFaultList(JsonWriter& w, const std::vector<Fault>& faults) {
  w.StartArray();
  for (const Fault& f : faults) WriteFault(w, f);
  w.EndArray();
}

std::optional<int64_t> FaultId(const std::string& text) {
  if (text.empty() || text.size() > 18 ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  return std::stoll(text);
}

}  // namespace

void MockArray::SendRetryLater(httplib::Response& res, int status, int retry_after_s,
                               const std::string& message_id, const std::string& message) {
  SendError(res, status, message_id, message);
  res.set_header("Retry-After", std::to_string(retry_after_s));
}

void MockArray::DropReply(httplib::Response& res) {
  // The operation has run; only its reply is lost. A reply without a body
  // (204, or none at all) gets a stand-in, or there would be nothing to cut.
  std::string body = res.body;
  if (body.empty()) {
    body = R"({"@odata.type":"#Message.v1_1_1.Message","Message":"this reply is lost"})";
    if (res.status == 204 || res.status < 0) res.status = 200;
  }
  std::string type = res.get_header_value("Content-Type");
  if (type.empty()) type = "application/json";
  res.headers.erase("Content-Type");
  res.body.clear();
  const size_t half = body.size() / 2;
  // httplib sends the status line and headers (Content-Length: the whole
  // body), then calls this; false closes the connection.
  res.set_content_provider(body.size(), type,
                           [body, half](size_t offset, size_t, httplib::DataSink& sink) {
                             if (offset < half) sink.write(body.data() + offset, half - offset);
                             return false;
                           });
}

void MockArray::AnswerFault(const Fault& fault, const std::string& what, httplib::Response& res,
                            bool twophase) {
  if (fault.mode == FaultMode::kHang) {
    res.status = 200;
    return DropReply(res);
  }
  const std::string message = "injected fault " + std::to_string(fault.id) + ": " + what +
                              " fails with " + std::to_string(fault.status);
  if (twophase) {
    SendJson(res, fault.status, [&](JsonWriter& w) {
      w.StartObject();
      w.Key("error");
      w.StartObject();
      w.Key("code");
      w.Int(fault.status);
      Key(w, "reason", "INJECTED");
      Key(w, "detail", message);
      w.EndObject();
      w.EndObject();
    });
    if (fault.status == 429 || fault.status == 503)
      res.set_header("Retry-After", std::to_string(fault.retry_after_s));
    return;
  }
  if (fault.status == 429 || fault.status == 503) {
    return SendRetryLater(res, fault.status, fault.retry_after_s, MessageIdFor(fault.status),
                          message);
  }
  SendError(res, fault.status, MessageIdFor(fault.status), message);
}

bool MockArray::InjectFault(const std::string& operation, const httplib::Request& req,
                            httplib::Response& res, bool* drop_reply) {
  // The twophase dialect's routes answer in its own error body.
  const bool twophase = req.path.rfind("/api/v2/", 0) == 0;
  // Partial is no door's business: the group snapshot fires it itself.
  std::optional<Faults::Fired> fired =
      faults_.Fire(operation, [](FaultMode mode) { return mode != FaultMode::kPartial; });
  if (!fired) return false;
  const Fault& f = fired->fault;
  std::cerr << "mock-array: fault " << f.id << " (" << FaultModeName(f.mode) << ") fires on "
            << operation << "\n";
  switch (f.mode) {
    case FaultMode::kError:
      AnswerFault(f, operation, res, twophase);
      return true;
    case FaultMode::kDelay:
      faults_.Pause(std::chrono::milliseconds(f.delay_ms));
      return false;
    case FaultMode::kHang:
      faults_.WaitForRelease(fired->ticket);
      AnswerFault(f, operation, res, twophase);
      return true;
    case FaultMode::kMalformedJson:
      // A cut-off object: what a client gets from a broken array.
      res.status = 200;
      res.set_content(R"({"@odata.id":"/redfish/v1/Storage/array/Volumes/1","Name":"vol)",
                      "application/json");
      return true;
    case FaultMode::kDropConnection:
      *drop_reply = true;
      return false;
    case FaultMode::kPartial:
    case FaultMode::kTargetOffline:
      return false;
  }
  return false;
}

std::optional<Fault> MockArray::CopyMemberFault(const VolumeRecord& member) {
  std::optional<Faults::Fired> fired =
      faults_.Fire(kCopyMemberOperation, [](FaultMode) { return true; });
  if (!fired) return std::nullopt;
  const Fault& f = fired->fault;
  std::cerr << "mock-array: fault " << f.id << " (" << FaultModeName(f.mode)
            << ") fires before copying member " << member.name << "\n";
  if (f.mode == FaultMode::kDelay) {
    faults_.Pause(std::chrono::milliseconds(f.delay_ms));
    return std::nullopt;
  }
  if (f.mode == FaultMode::kHang) faults_.WaitForRelease(fired->ticket);
  return f;
}

Status MockArray::SetTargetsOffline(bool offline) {
  Status s = tgt_->SetOffline(offline);
  if (s.ok()) targets_offline_ = offline;
  return s;
}

Status MockArray::RemoveEverything() {
  if (targets_offline_) SNAPSET_RETURN_IF_ERROR(SetTargetsOffline(false));
  // Exposures first: they hold volumes and snapshots.
  Result<std::vector<ExposureRecord>> exposures = store_->Exposures();
  if (!exposures.ok()) return exposures.status();
  for (const ExposureRecord& e : *exposures) {
    SNAPSET_RETURN_IF_ERROR(RemoveExposure(e).WithContext("removing connection " + e.name));
  }
  Result<std::vector<GroupRecord>> groups = store_->Groups();
  if (!groups.ok()) return groups.status();
  for (const GroupRecord& g : *groups) SNAPSET_RETURN_IF_ERROR(store_->DeleteGroup(g.id));
  Result<std::vector<VolumeRecord>> volumes = store_->Volumes();
  if (!volumes.ok()) return volumes.status();
  // Snapshots before the volumes they hold.
  for (bool snapshots : {true, false}) {
    for (const VolumeRecord& v : *volumes) {
      if (v.is_snapshot() == snapshots) {
        SNAPSET_RETURN_IF_ERROR(RemoveVolume(v).WithContext("removing " + v.name));
      }
    }
  }
  return Status::Ok();
}

void MockArray::WriteState(JsonWriter& w) {
  Result<std::vector<VolumeRecord>> volumes = store_->Volumes();
  Result<std::vector<GroupRecord>> groups = store_->Groups();
  w.StartObject();
  w.Key("Volumes");  // every row, snapshots and unfinished ones included
  w.StartArray();
  for (const VolumeRecord& v : volumes.ok() ? *volumes : std::vector<VolumeRecord>{}) {
    w.StartObject();
    Key(w, "@odata.id", VolumesPath() + "/" + std::to_string(v.id));
    Key(w, "Id", std::to_string(v.id));
    Key(w, "Name", v.name);
    Key(w, "State", v.state);
    w.Key("SourceId");
    if (v.is_snapshot()) {
      w.String(std::to_string(v.source_id).c_str());
    } else {
      w.Null();
    }
    w.Key("CapacityBytes");
    w.Uint64(v.capacity_bytes);
    w.Key("BlockSizeBytes");
    w.Uint(v.block_size);
    Key(w, "DurableName", v.naa);
    Key(w, "SerialNumber", v.serial);
    w.Key("CopyMethod");
    if (v.copy_method.empty()) {
      w.Null();
    } else {
      w.String(v.copy_method.c_str());
    }
    w.EndObject();
  }
  w.EndArray();
  w.Key("ConsistencyGroups");
  w.StartArray();
  for (const GroupRecord& g : groups.ok() ? *groups : std::vector<GroupRecord>{}) {
    w.StartObject();
    Key(w, "@odata.id", GroupsPath() + "/" + std::to_string(g.id));
    Key(w, "Id", std::to_string(g.id));
    Key(w, "Name", g.name);
    w.Key("Volumes");
    w.StartArray();
    for (int64_t id : g.members) w.String(std::to_string(id).c_str());
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
  w.Key("Exposures");  // every connection row, unfinished ones included; never a secret
  w.StartArray();
  Result<std::vector<ExposureRecord>> exposures = store_->Exposures();
  for (const ExposureRecord& e : exposures.ok() ? *exposures : std::vector<ExposureRecord>{}) {
    w.StartObject();
    Key(w, "@odata.id", "/redfish/v1/Fabrics/iSCSI/Connections/" + std::to_string(e.id));
    Key(w, "Id", std::to_string(e.id));
    Key(w, "Name", e.name);
    Key(w, "State", e.state);
    Key(w, "InitiatorIqn", e.initiator_iqn);
    Key(w, "IscsiTarget", TargetIqn(e.id));
    w.Key("ChapUsername");
    if (e.chap_user.empty()) {
      w.Null();
    } else {
      w.String(e.chap_user.c_str());
    }
    w.Key("Luns");
    w.StartArray();
    for (const ExposureLun& lun : e.luns) {
      w.StartObject();
      w.Key("Lun");
      w.Int(lun.lun);
      Key(w, "VolumeId", std::to_string(lun.volume_id));
      w.Key("ReadOnly");
      w.Bool(lun.read_only);
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
  // The twophase dialect's fences up (always empty in the Swordfish one):
  // every write to their LUNs waits in the gate.
  ExpireFences();
  w.Key("Fences");
  w.StartArray();
  for (const auto& [id, f] : fences_) {
    w.StartObject();
    Key(w, "Id", id);
    Key(w, "Name", f.label);
    w.Key("Volumes");
    w.StartArray();
    for (int64_t lun : f.luns) w.String(std::to_string(lun).c_str());
    w.EndArray();
    w.Key("ExpiresInMs");
    w.Int64(std::max<int64_t>(
        0, std::chrono::duration_cast<std::chrono::milliseconds>(f.until - WriteGate::Clock::now())
               .count()));
    w.EndObject();
  }
  w.EndArray();
  w.Key("Sessions");
  w.StartArray();
  for (const Session& s : sessions_->List()) {
    w.StartObject();
    Key(w, "Id", s.id);
    Key(w, "UserName", s.user);
    Key(w, "RoleId", s.role);
    w.EndObject();
  }
  w.EndArray();
  w.Key("Faults");
  WriteFaultList(w, faults_.List());
  w.Key("Iscsi");
  w.StartObject();
  w.Key("TgtdRunning");
  w.Bool(tgt_->Running());
  w.Key("TargetsOffline");
  w.Bool(targets_offline_);
  w.EndObject();
  if (!volumes.ok() || !groups.ok()) {
    Key(w, "Error", !volumes.ok() ? volumes.status().message() : groups.status().message());
  }
  w.EndObject();
}

void MockArray::RegisterMockRoutes(httplib::Server& server) {
  server.new_task_queue = [this] { return new ServerThreads(kServerThreads, &faults_); };
  // A TargetOffline fault with a duration has run out: back online, unless
  // another one still holds the targets offline.
  faults_.SetExpiryCallback([this] {
    std::lock_guard<std::mutex> lock(mu_);
    if (!targets_offline_ || faults_.Armed(kIscsiOperation, FaultMode::kTargetOffline)) return;
    Status s = SetTargetsOffline(false);
    if (!s.ok()) std::cerr << "mock-array: bringing targets back online: " << s.message() << "\n";
  });

  server.Post(kFaultsPath, [this](const httplib::Request& req, httplib::Response& res) {
    rapidjson::Document doc;
    doc.Parse(req.body.c_str());
    if (doc.HasParseError()) {
      return SendError(res, 400, "MalformedJSON", "the body is not a JSON object");
    }
    Fault fault;
    FaultBodyError error;
    if (!ParseFault(doc, operations_, &fault, &error)) {
      return SendError(res, 400, error.message_id, error.message,
                       error.property.empty() ? std::vector<std::string>{}
                                              : std::vector<std::string>{error.property});
    }
    Fault armed;
    if (fault.mode == FaultMode::kTargetOffline) {
      // At once, not when some request comes by.
      std::lock_guard<std::mutex> lock(mu_);
      if (!tgt_->Running()) {
        return SendRetryLater(res, 503, 1, "ServiceTemporarilyUnavailable",
                              "the array's iSCSI target daemon is down");
      }
      armed = faults_.Arm(fault);
      Status s = SetTargetsOffline(true);
      if (!s.ok()) {
        faults_.Remove(armed.id);
        return SendError(res, 500, "InternalError", s.message());
      }
    } else {
      armed = faults_.Arm(fault);
    }
    std::cerr << "mock-array: fault " << armed.id << " armed: " << armed.operation << " "
              << FaultModeName(armed.mode) << "\n";
    res.set_header("Location", std::string(kFaultsPath) + "/" + std::to_string(armed.id));
    SendJson(res, 201, [&](JsonWriter& w) { WriteFault(w, armed); });
  });

  server.Get(kFaultsPath, [this](const httplib::Request&, httplib::Response& res) {
    const std::vector<Fault> faults = faults_.List();
    SendJson(res, 200, [&](JsonWriter& w) {
      w.StartObject();
      Key(w, "@odata.id", kFaultsPath);
      w.Key("Members");
      WriteFaultList(w, faults);
      w.Key("Members@odata.count");
      w.Uint64(faults.size());
      w.EndObject();
    });
  });

  server.Get(R"(/mock/faults/([^/]+))",
             [this](const httplib::Request& req, httplib::Response& res) {
               const std::optional<int64_t> id = FaultId(req.matches[1]);
               const std::optional<Fault> f = id ? faults_.Get(*id) : std::nullopt;
               if (!f) {
                 return SendError(res, 404, "ResourceNotFound",
                                  "no armed fault '" + std::string(req.matches[1]) + "'");
               }
               SendJson(res, 200, [&](JsonWriter& w) { WriteFault(w, *f); });
             });

  // Deleting faults ends their hangs and brings the targets back online.
  // The table first and without mu_: a hang inside a group snapshot holds
  // mu_ until it is released.
  server.Delete(kFaultsPath, [this](const httplib::Request&, httplib::Response& res) {
    faults_.Clear();
    std::lock_guard<std::mutex> lock(mu_);
    if (targets_offline_) {
      Status s = SetTargetsOffline(false);
      if (!s.ok()) return SendError(res, 500, "InternalError", s.message());
    }
    res.status = 204;
  });

  server.Delete(
      R"(/mock/faults/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
        const std::optional<int64_t> id = FaultId(req.matches[1]);
        if (!id || !faults_.Remove(*id)) {
          return SendError(res, 404, "ResourceNotFound",
                           "no fault '" + std::string(req.matches[1]) + "'");
        }
        std::lock_guard<std::mutex> lock(mu_);
        if (targets_offline_ && !faults_.Armed(kIscsiOperation, FaultMode::kTargetOffline)) {
          Status s = SetTargetsOffline(false);
          if (!s.ok()) return SendError(res, 500, "InternalError", s.message());
        }
        res.status = 204;
      });

  server.Get("/mock/requests", [this](const httplib::Request&, httplib::Response& res) {
    const std::vector<LoggedRequest> requests = requests_.Entries();
    SendJson(res, 200, [&](JsonWriter& w) {
      w.StartObject();
      Key(w, "@odata.id", "/mock/requests");
      w.Key("Members");
      w.StartArray();
      for (const LoggedRequest& r : requests) {
        w.StartObject();
        Key(w, "Operation", r.operation);
        Key(w, "Method", r.method);
        Key(w, "Path", r.path);
        w.Key("ReceivedMonotonicNs");
        w.Int64(r.received_ns);
        w.Key("AnsweredMonotonicNs");
        w.Int64(r.answered_ns);
        w.Key("Status");
        w.Int(r.status);
        w.EndObject();
      }
      w.EndArray();
      w.Key("Members@odata.count");
      w.Uint64(requests.size());
      w.EndObject();
    });
  });

  server.Delete("/mock/requests", [this](const httplib::Request&, httplib::Response& res) {
    requests_.Clear();
    res.status = 204;
  });

  server.Get("/mock/state", [this](const httplib::Request&, httplib::Response& res) {
    std::lock_guard<std::mutex> lock(mu_);
    SendJson(res, 200, [&](JsonWriter& w) { WriteState(w); });
  });

  // Back to an empty array: faults first (ending hangs that hold mu_), then
  // every exposure, group, snapshot and volume. Users and sessions stay.
  server.Post("/mock/reset", [this](const httplib::Request&, httplib::Response& res) {
    faults_.Clear();
    std::lock_guard<std::mutex> lock(mu_);
    Status s = RemoveEverything();
    if (!s.ok()) return SendError(res, 500, "InternalError", s.message());
    std::cerr << "mock-array: reset\n";
    res.status = 204;
  });
}

}  // namespace snapset::mock
