// Asynchronous operations: the Redfish task service, its tasks and their
// task monitors (docs/mock-array.md, "Asynchronous operations (tasks)").
#include <httplib.h>
#include <time.h>

#include <cctype>
#include <cstdlib>
#include <chrono>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "providers/mock-array/mock_array.hpp"

#include <rapidjson/document.h>

#include <cstdlib>
#include "providers/mock-array/redfish_json.hpp"

namespace snapset::mock {
namespace {

constexpr char kTaskService[] = "/redfish/v1/TaskService";
constexpr char kTasks[] = "/redfish/v1/TaskService/Tasks";
constexpr char kTaskMonitors[] = "/redfish/v1/TaskService/TaskMonitors";
// TaskDelayMs at most: ten minutes.
constexpr int64_t kMaxDelayMs = 600000;

std::string TaskPath(const std::string& id) { return std::string(kTasks) + "/" + id; }
std::string MonitorPath(const std::string& id) { return std::string(kTaskMonitors) + "/" + id; }

// ISO 8601, UTC, to the second: 2026-11-03T10:15:00Z.
std::string Iso8601(std::chrono::system_clock::time_point t) {
  const time_t seconds = std::chrono::system_clock::to_time_t(t);
  struct tm utc {};
  gmtime_r(&seconds, &utc);
  char text[32];
  strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string Trim(const std::string& s) {
  const size_t begin = s.find_first_not_of(" \t");
  if (begin == std::string::npos) return "";
  return s.substr(begin, s.find_last_not_of(" \t") + 1 - begin);
}

std::optional<std::string> ResultHeader(const TaskResult& result, const std::string& name) {
  for (const auto& [key, value] : result.headers) {
    if (Lower(key) == Lower(name)) return value;
  }
  return std::nullopt;
}

const char* TaskStatus(const TaskInfo& task) {
  if (!task.done() || task.result.status < 400) return "OK";
  return task.result.status >= 500 ? "Critical" : "Warning";
}

void WriteMessages(JsonWriter& w, const TaskInfo& task) {
  w.Key("Messages");
  w.StartArray();
  if (task.state == TaskState::kCompleted) {
    w.StartObject();
    Key(w, "@odata.type", "#Message.v1_1_1.Message");
    Key(w, "MessageId", "TaskEvent.1.0.TaskCompletedOK");
    Key(w, "Message", "The task with Id '" + task.id + "' has completed.");
    w.Key("MessageArgs");
    w.StartArray();
    w.String(task.id.c_str());
    w.EndArray();
    Key(w, "Severity", "OK");
    w.EndObject();
  } else if (task.state == TaskState::kException) {
    // The operation's own error messages, as the synchronous call had them.
    rapidjson::Document error;
    error.Parse(task.result.body.c_str());
    if (!error.HasParseError() && error.IsObject() && error.HasMember("error") &&
        error["error"].IsObject() && error["error"].HasMember("@Message.ExtendedInfo") &&
        error["error"]["@Message.ExtendedInfo"].IsArray()) {
      for (const auto& message : error["error"]["@Message.ExtendedInfo"].GetArray()) {
        message.Accept(w);
      }
    } else {
      w.StartObject();
      Key(w, "@odata.type", "#Message.v1_1_1.Message");
      Key(w, "MessageId", "Base.1.8.GeneralError");
      Key(w, "Message", "the operation answered HTTP status " + std::to_string(task.result.status));
      Key(w, "Severity", TaskStatus(task));
      w.EndObject();
    }
  }
  w.EndArray();
}

void WriteTask(JsonWriter& w, const TaskInfo& task) {
  w.StartObject();
  Key(w, "@odata.id", TaskPath(task.id));
  Key(w, "@odata.type", "#Task.v1_7_1.Task");
  Key(w, "Id", task.id);
  Key(w, "Name", "Task " + task.id + ": " + task.request.operation);
  Key(w, "TaskState", TaskStateName(task.state));
  Key(w, "TaskStatus", TaskStatus(task));
  Key(w, "StartTime", Iso8601(task.start_time));
  if (task.end_time) Key(w, "EndTime", Iso8601(*task.end_time));
  w.Key("PercentComplete");
  w.Int(task.percent_complete);
  Key(w, "TaskMonitor", MonitorPath(task.id));
  // A body with a secret in it (a connection's CHAP password) is never
  // shown: Redfish's HidePayload, and no Payload at all.
  const bool hide = task.request.body.find("Password") != std::string::npos;
  w.Key("HidePayload");
  w.Bool(hide);
  if (!hide) {
    w.Key("Payload");
    w.StartObject();
    Key(w, "HttpOperation", task.request.method);
    Key(w, "TargetUri", task.request.target_uri);
    w.Key("HttpHeaders");
    w.StartArray();
    w.EndArray();
    Key(w, "JsonBody", task.request.body);
    w.EndObject();
  }
  WriteMessages(w, task);
  w.Key("Oem");
  w.StartObject();
  w.Key("Snapset");
  w.StartObject();
  Key(w, "Operation", task.request.operation);
  if (task.done()) {
    w.Key("HttpStatusCode");
    w.Int(task.result.status);
    if (std::optional<std::string> location = ResultHeader(task.result, "Location")) {
      Key(w, "ResultLocation", *location);
    }
  }
  w.EndObject();
  w.EndObject();
  w.EndObject();
}

// The task's answer while it is not done: 202, where to poll, and when.
void SendPending(httplib::Response& res, const TaskInfo& task) {
  res.set_header("Location", MonitorPath(task.id));
  res.set_header("Retry-After", "1");
  SendJson(res, 202, [&](JsonWriter& w) { WriteTask(w, task); });
}

}  // namespace

bool MockArray::PrefersAsync(const httplib::Request& req) {
  // Prefer: respond-async[, wait=10][; param]; several Prefer headers may come.
  const size_t headers = req.get_header_value_count("Prefer");
  for (size_t i = 0; i < headers; ++i) {
    const std::string value = req.get_header_value("Prefer", i);
    size_t start = 0;
    while (start <= value.size()) {
      size_t end = value.find(',', start);
      if (end == std::string::npos) end = value.size();
      std::string preference = value.substr(start, end - start);
      preference = Trim(preference.substr(0, preference.find_first_of(";=")));
      if (Lower(preference) == "respond-async") return true;
      start = end + 1;
    }
  }
  return false;
}

bool MockArray::RunsAsTask(const std::string& operation, const httplib::Request& req) {
  // Only the state-changing operations of the Redfish tree: not reads, not
  // logging in or out, not the task service itself, not the /mock routes.
  if (req.method == "GET" || req.method == "HEAD") return false;
  if (operation.rfind("Session.", 0) == 0 || operation.rfind("Task", 0) == 0) return false;
  if (req.path.rfind("/redfish/v1/", 0) != 0) return false;
  // A refusal the array can tell at once is answered at once, as arrays
  // check a request before they accept it as a job: a group of a volume
  // already in one, under --exclusive-groups.
  if (operation == "ConsistencyGroup.Create" && options_.exclusive_groups) {
    rapidjson::Document doc;
    doc.Parse(req.body.c_str());
    std::vector<int64_t> members;
    if (!doc.HasParseError() && doc.IsObject() && doc.HasMember("Volumes") &&
        doc["Volumes"].IsArray()) {
      const std::string prefix = VolumesPath() + "/";
      for (const auto& link : doc["Volumes"].GetArray()) {
        if (!link.IsObject() || !link.HasMember("@odata.id") || !link["@odata.id"].IsString())
          continue;
        const std::string path = link["@odata.id"].GetString();
        if (path.rfind(prefix, 0) == 0) members.push_back(std::atoll(path.c_str() + prefix.size()));
      }
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (!GroupHolding(members).empty()) return false;
  }
  return tasks_.async_operations() || PrefersAsync(req);
}

void MockArray::StartTask(const std::string& operation, const std::string& pattern,
                          const Handler& handler, const httplib::Request& req,
                          httplib::Response& res) {
  // The task outlives the request: it gets a copy, whose matches must point
  // into the copy's own path, and no TLS connection of its own.
  auto copy = std::make_shared<httplib::Request>(req);
  copy->ssl = nullptr;
  copy->matches = httplib::Match();
  std::regex_match(copy->path, copy->matches, std::regex(pattern));
  Tasks::Work work = [handler, copy]() {
    httplib::Response response;
    handler(*copy, response);
    TaskResult result;
    // httplib answers 200 for a handler that set no status.
    result.status = response.status == -1 ? 200 : response.status;
    for (const auto& [name, value] : response.headers) result.headers.emplace_back(name, value);
    result.body = std::move(response.body);
    return result;
  };
  Result<std::string> id = tasks_.Start({operation, req.method, req.path, req.body}, work);
  if (!id.ok()) {
    res.set_header("Retry-After", "1");
    return SendError(res, 503, "ServiceTemporarilyUnavailable",
                     "cannot start a task: " + id.status().message());
  }
  std::optional<TaskInfo> task = tasks_.Get(*id);
  if (!task) return SendError(res, 500, "GeneralError", "task " + *id + " vanished");
  if (PrefersAsync(req)) res.set_header("Preference-Applied", "respond-async");
  SendPending(res, *task);
}

void MockArray::Quiesce() {
  tasks_.Drain();
  faults_.StopTimer();
}

void MockArray::RegisterTaskRoutes(httplib::Server& server) {
  tasks_.set_async_operations(options_.async_operations);

  auto write_service = [this](JsonWriter& w) {
    w.StartObject();
    Key(w, "@odata.id", kTaskService);
    Key(w, "@odata.type", "#TaskService.v1_2_0.TaskService");
    Key(w, "Id", "TaskService");
    Key(w, "Name", "Task Service");
    w.Key("ServiceEnabled");
    w.Bool(true);
    Key(w, "CompletedTaskOverWritePolicy", "Oldest");
    w.Key("LifeCycleEventOnTaskStateChange");
    w.Bool(false);
    Key(w, "DateTime", Iso8601(std::chrono::system_clock::now()));
    w.Key("Status");
    w.StartObject();
    Key(w, "State", "Enabled");
    Key(w, "Health", "OK");
    w.EndObject();
    Link(w, "Tasks", kTasks);
    w.Key("Oem");
    w.StartObject();
    w.Key("Snapset");
    w.StartObject();
    w.Key("AsyncOperations");
    w.Bool(tasks_.async_operations());
    w.Key("TaskDelayMs");
    w.Int64(tasks_.delay_ms());
    w.Key("KeptCompletedTasks");
    w.Uint64(tasks_.kept_completed());
    w.EndObject();
    w.EndObject();
    w.EndObject();
  };

  Route(server, "GET", "TaskService.Get", kTaskService,
        [write_service](const httplib::Request&, httplib::Response& res) {
          SendJson(res, 200, write_service);
        });

  Route(server, "PATCH", "TaskService.Patch", kTaskService,
        [this, write_service](const httplib::Request& req, httplib::Response& res) {
          const std::optional<Session> session =
              sessions_->Authenticate(req.get_header_value("X-Auth-Token"));
          if (!session || session->role != kAdministrator) {
            return SendError(res, 403, "InsufficientPrivilege",
                             "changing the TaskService needs a session of a user whose RoleId is "
                             "Administrator" +
                                 (session ? "; " + session->user + " is " + session->role : ""));
          }
          rapidjson::Document doc;
          doc.Parse(req.body.c_str());
          if (doc.HasParseError() || !doc.IsObject()) {
            return SendError(res, 400, "MalformedJSON", "the body is not a JSON object");
          }
          for (const auto& member : doc.GetObject()) {
            const std::string key = member.name.GetString();
            if (key != "Oem") {
              return SendError(res, 400, "PropertyNotWritable",
                               key +
                                   " of the TaskService cannot be changed; only "
                                   "Oem/Snapset/AsyncOperations and Oem/Snapset/TaskDelayMs can",
                               {key});
            }
          }
          std::optional<bool> async;
          std::optional<int64_t> delay_ms;
          if (doc.HasMember("Oem")) {
            const auto& oem = doc["Oem"];
            if (!oem.IsObject()) {
              return SendError(res, 400, "PropertyValueTypeError", "Oem must be an object",
                               {"Oem"});
            }
            for (const auto& member : oem.GetObject()) {
              const std::string key = member.name.GetString();
              if (key != "Snapset") {
                return SendError(res, 400, "PropertyUnknown",
                                 "Oem/" + key + " is not a property of the TaskService",
                                 {"Oem/" + key});
              }
              if (!member.value.IsObject()) {
                return SendError(res, 400, "PropertyValueTypeError",
                                 "Oem/Snapset must be an object", {"Oem/Snapset"});
              }
              for (const auto& setting : member.value.GetObject()) {
                const std::string name = setting.name.GetString();
                const std::string property = "Oem/Snapset/" + name;
                if (name == "AsyncOperations") {
                  if (!setting.value.IsBool()) {
                    return SendError(res, 400, "PropertyValueTypeError",
                                     property + " must be true or false", {property});
                  }
                  async = setting.value.GetBool();
                } else if (name == "TaskDelayMs") {
                  if (!setting.value.IsInt64()) {
                    return SendError(res, 400, "PropertyValueTypeError",
                                     property + " must be an integer", {property});
                  }
                  if (setting.value.GetInt64() < 0 || setting.value.GetInt64() > kMaxDelayMs) {
                    return SendError(res, 400, "PropertyValueOutOfRange",
                                     property + " must be 0 to " + std::to_string(kMaxDelayMs),
                                     {property});
                  }
                  delay_ms = setting.value.GetInt64();
                } else {
                  return SendError(res, 400, "PropertyUnknown",
                                   property + " is not a property of the TaskService", {property});
                }
              }
            }
          }
          // All checked first: a bad body changes nothing.
          if (async) tasks_.set_async_operations(*async);
          if (delay_ms) tasks_.set_delay_ms(*delay_ms);
          SendJson(res, 200, write_service);
        });

  Route(server, "GET", "Task.List", kTasks,
        [this](const httplib::Request&, httplib::Response& res) {
          const std::vector<TaskInfo> tasks = tasks_.List();
          std::vector<std::string> members;
          for (const TaskInfo& task : tasks) members.push_back(TaskPath(task.id));
          SendCollection(res, kTasks, "#TaskCollection.TaskCollection", "Tasks", members);
        });

  Route(server, "GET", "Task.Get", std::string(kTasks) + "/([^/]+)",
        [this](const httplib::Request& req, httplib::Response& res) {
          const std::optional<TaskInfo> task = tasks_.Get(req.matches[1]);
          if (!task) {
            return SendError(res, 404, "ResourceNotFound",
                             "no task '" + std::string(req.matches[1]) + "'");
          }
          SendJson(res, 200, [&](JsonWriter& w) { WriteTask(w, *task); });
        });

  Route(server, "DELETE", "Task.Delete", std::string(kTasks) + "/([^/]+)",
        [this](const httplib::Request& req, httplib::Response& res) {
          const std::string id = req.matches[1];
          switch (tasks_.Remove(id)) {
            case Tasks::Removal::kRemoved:
              res.status = 204;
              return;
            case Tasks::Removal::kNotDone:
              return SendError(res, 409, "ResourceInUse",
                               "task " + id +
                                   " is not done yet; the mock cannot cancel a task, delete it "
                                   "once it has completed");
            case Tasks::Removal::kUnknown:
              break;
          }
          SendError(res, 404, "ResourceNotFound", "no task '" + id + "'");
        });

  Route(server, "GET", "TaskMonitor.Get", std::string(kTaskMonitors) + "/([^/]+)",
        [this](const httplib::Request& req, httplib::Response& res) {
          const std::optional<TaskInfo> task = tasks_.Get(req.matches[1]);
          if (!task) {
            return SendError(res, 404, "ResourceNotFound",
                             "no task '" + std::string(req.matches[1]) +
                                 "' (tasks do not survive a restart of the array)");
          }
          if (!task->done()) return SendPending(res, *task);
          // Done: the operation's own answer, as the synchronous call had it.
          res.status = task->result.status;
          for (const auto& [name, value] : task->result.headers) res.set_header(name, value);
          res.body = task->result.body;
        });
}

}  // namespace snapset::mock
