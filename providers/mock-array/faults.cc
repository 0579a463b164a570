#include "providers/mock-array/faults.hpp"

#include <algorithm>
#include <utility>

namespace snapset::mock {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int64_t kMaxCount = 1000000;
constexpr int64_t kMaxDelayMs = 600000;      // as long as a hang may last
constexpr int64_t kMaxDurationMs = 3600000;  // an hour offline at most
constexpr int64_t kMaxRetryAfterS = 3600;
constexpr int64_t kMaxFailMembers = 1000;

struct ModeInfo {
  FaultMode mode;
  const char* name;
  std::set<std::string> properties;  // beyond Operation, Mode and Count
};

const std::vector<ModeInfo>& Modes() {
  static const std::vector<ModeInfo> modes = {
      {FaultMode::kError, "Error", {"Status", "RetryAfterS"}},
      {FaultMode::kDelay, "Delay", {"DelayMs"}},
      {FaultMode::kHang, "Hang", {}},
      {FaultMode::kMalformedJson, "MalformedJson", {}},
      {FaultMode::kDropConnection, "DropConnection", {}},
      {FaultMode::kPartial, "Partial", {"FailMembers"}},
      {FaultMode::kTargetOffline, "TargetOffline", {"DurationMs"}},
  };
  return modes;
}

bool Fail(FaultBodyError* error, std::string property, std::string message_id,
          std::string message) {
  *error = {std::move(property), std::move(message_id), std::move(message)};
  return false;
}

// An integer property in [low, high] into *out, or an error naming it.
bool Integer(const rapidjson::Value& body, const char* name, int64_t low, int64_t high,
             int64_t* out, FaultBodyError* error) {
  const rapidjson::Value& v = body[name];
  if (!v.IsInt64() || v.GetInt64() < low || v.GetInt64() > high) {
    return Fail(error, name, "PropertyValueOutOfRange",
                std::string(name) + " must be an integer from " + std::to_string(low) + " to " +
                    std::to_string(high));
  }
  *out = v.GetInt64();
  return true;
}

std::string Join(const std::set<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace

const char* FaultModeName(FaultMode mode) {
  for (const ModeInfo& m : Modes()) {
    if (m.mode == mode) return m.name;
  }
  return "?";
}

bool ParseFault(const rapidjson::Value& body, const std::set<std::string>& operations, Fault* out,
                FaultBodyError* error) {
  if (!body.IsObject()) return Fail(error, "", "MalformedJSON", "the body is not a JSON object");
  for (const char* name : {"Operation", "Mode"}) {
    if (!body.HasMember(name)) {
      return Fail(error, name, "PropertyMissing", std::string(name) + " is missing");
    }
    if (!body[name].IsString()) {
      return Fail(error, name, "PropertyValueTypeError", std::string(name) + " must be a string");
    }
  }
  std::set<std::string> known = operations;
  known.insert({kCopyMemberOperation, kIscsiOperation});
  Fault f;
  f.operation = body["Operation"].GetString();
  if (known.count(f.operation) == 0) {
    return Fail(error, "Operation", "PropertyValueNotInList",
                "Operation '" + f.operation + "' is unknown; known operations: " + Join(known));
  }
  const std::string mode = body["Mode"].GetString();
  const ModeInfo* info = nullptr;
  std::set<std::string> mode_names;
  for (const ModeInfo& m : Modes()) {
    mode_names.insert(m.name);
    if (mode == m.name) info = &m;
  }
  if (info == nullptr) {
    return Fail(error, "Mode", "PropertyValueNotInList",
                "Mode '" + mode + "' is unknown; modes: " + Join(mode_names));
  }
  f.mode = info->mode;

  // Which operation takes which mode.
  const bool iscsi = f.operation == kIscsiOperation;
  if (iscsi != (f.mode == FaultMode::kTargetOffline)) {
    return Fail(error, "Mode", "PropertyValueConflict",
                "Operation iSCSI takes Mode TargetOffline, and only it does");
  }
  if (f.mode == FaultMode::kPartial && f.operation != kGroupSnapshotOperation &&
      f.operation != kTwoPhaseSnapshotOperation) {
    return Fail(error, "Mode", "PropertyValueConflict",
                std::string("Mode Partial applies to Operation ") + kGroupSnapshotOperation +
                    " (the twophase dialect's " + kTwoPhaseSnapshotOperation + ") only");
  }
  if (f.operation == kCopyMemberOperation && f.mode != FaultMode::kError &&
      f.mode != FaultMode::kDelay && f.mode != FaultMode::kHang) {
    return Fail(
        error, "Mode", "PropertyValueConflict",
        std::string("Operation ") + kCopyMemberOperation + " takes Mode Error, Delay or Hang");
  }

  // Every other property must be one this mode takes.
  for (const auto& member : body.GetObject()) {
    const std::string key = member.name.GetString();
    if (key == "Operation" || key == "Mode") continue;
    const bool general = key == "Count" && f.mode != FaultMode::kTargetOffline;
    if (general || info->properties.count(key) != 0) continue;
    bool other_mode = key == "Count";
    for (const ModeInfo& m : Modes()) other_mode = other_mode || m.properties.count(key) != 0;
    if (!other_mode) {
      return Fail(error, key, "PropertyUnknown", key + " is not a property of a fault");
    }
    return Fail(error, key, "PropertyValueConflict", key + " does not apply to Mode " + info->name);
  }

  int64_t n = 0;
  if (body.HasMember("Count")) {
    if (!Integer(body, "Count", 0, kMaxCount, &n, error)) return false;
    f.count = n;
  }
  f.remaining = f.count;
  switch (f.mode) {
    case FaultMode::kError:
      if (body.HasMember("Status")) {
        if (!Integer(body, "Status", 400, 599, &n, error)) return false;
        f.status = static_cast<int>(n);
      }
      if (body.HasMember("RetryAfterS")) {
        if (f.status != 429 && f.status != 503) {
          return Fail(error, "RetryAfterS", "PropertyValueConflict",
                      "RetryAfterS applies to Status 429 and 503 only");
        }
        if (!Integer(body, "RetryAfterS", 0, kMaxRetryAfterS, &n, error)) return false;
        f.retry_after_s = static_cast<int>(n);
      }
      break;
    case FaultMode::kDelay:
      if (!body.HasMember("DelayMs")) {
        return Fail(error, "DelayMs", "PropertyMissing", "Mode Delay needs DelayMs");
      }
      if (!Integer(body, "DelayMs", 1, kMaxDelayMs, &n, error)) return false;
      f.delay_ms = n;
      break;
    case FaultMode::kPartial:
      if (body.HasMember("FailMembers")) {
        if (!Integer(body, "FailMembers", 1, kMaxFailMembers, &n, error)) return false;
        f.fail_members = static_cast<int>(n);
      }
      break;
    case FaultMode::kTargetOffline:
      f.count = 0;
      f.remaining = 0;
      if (body.HasMember("DurationMs")) {
        if (!Integer(body, "DurationMs", 0, kMaxDurationMs, &n, error)) return false;
        f.duration_ms = n;
      }
      break;
    case FaultMode::kHang:
    case FaultMode::kMalformedJson:
    case FaultMode::kDropConnection:
      break;
  }
  *out = f;
  return true;
}

Faults::~Faults() { StopTimer(); }

void Faults::StopTimer() {
  Shutdown();
  if (timer_.joinable()) timer_.join();
}

void Faults::SetExpiryCallback(std::function<void()> callback) {
  std::lock_guard<std::mutex> lock(mu_);
  on_expiry_ = std::move(callback);
}

Fault Faults::Arm(Fault fault) {
  std::lock_guard<std::mutex> lock(mu_);
  fault.id = next_id_++;
  if (fault.mode == FaultMode::kTargetOffline && fault.duration_ms > 0) {
    fault.expires = Clock::now() + std::chrono::milliseconds(fault.duration_ms);
    if (!timer_.joinable() && !shutdown_) timer_ = std::thread([this] { RunTimer(); });
  }
  armed_.push_back(fault);
  changed_.notify_all();
  return fault;
}

std::optional<Faults::Fired> Faults::Fire(const std::string& operation,
                                          const std::function<bool(FaultMode)>& wanted) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = armed_.begin(); it != armed_.end(); ++it) {
    if (it->operation != operation || it->mode == FaultMode::kTargetOffline || !wanted(it->mode)) {
      continue;
    }
    Fired fired{*it, 0};
    if (it->count > 0 && --it->remaining == 0) armed_.erase(it);
    if (fired.fault.mode == FaultMode::kHang) {
      fired.ticket = next_ticket_++;
      hangs_[fired.ticket] = fired.fault.id;
    }
    return fired;
  }
  return std::nullopt;
}

void Faults::WaitForRelease(uint64_t ticket) {
  std::unique_lock<std::mutex> lock(mu_);
  changed_.wait_for(lock, kMaxHang, [&] { return shutdown_ || hangs_.count(ticket) == 0; });
  hangs_.erase(ticket);
}

void Faults::Pause(std::chrono::milliseconds delay) {
  std::unique_lock<std::mutex> lock(mu_);
  changed_.wait_for(lock, delay, [&] { return shutdown_; });
}

std::vector<Fault> Faults::List() const {
  std::lock_guard<std::mutex> lock(mu_);
  return armed_;
}

std::optional<Fault> Faults::Get(int64_t id) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const Fault& f : armed_) {
    if (f.id == id) return f;
  }
  return std::nullopt;
}

bool Faults::Armed(const std::string& operation, FaultMode mode) const {
  std::lock_guard<std::mutex> lock(mu_);
  return std::any_of(armed_.begin(), armed_.end(),
                     [&](const Fault& f) { return f.operation == operation && f.mode == mode; });
}

bool Faults::Remove(int64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  // Hangs of a spent fault are released by its id too.
  bool found = false;
  for (auto it = hangs_.begin(); it != hangs_.end();) {
    found = found || it->second == id;
    it = it->second == id ? hangs_.erase(it) : std::next(it);
  }
  const auto gone =
      std::remove_if(armed_.begin(), armed_.end(), [&](const Fault& f) { return f.id == id; });
  found = found || gone != armed_.end();
  armed_.erase(gone, armed_.end());
  changed_.notify_all();
  return found;
}

void Faults::Clear() {
  std::lock_guard<std::mutex> lock(mu_);
  armed_.clear();
  hangs_.clear();
  changed_.notify_all();
}

void Faults::Shutdown() {
  std::lock_guard<std::mutex> lock(mu_);
  shutdown_ = true;
  hangs_.clear();
  changed_.notify_all();
}

void Faults::RunTimer() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!shutdown_) {
    std::optional<Clock::time_point> next;
    for (const Fault& f : armed_) {
      if (f.mode == FaultMode::kTargetOffline && f.duration_ms > 0 &&
          (!next || f.expires < *next)) {
        next = f.expires;
      }
    }
    if (!next) {
      changed_.wait(lock);
      continue;
    }
    if (Clock::now() < *next) {
      changed_.wait_until(lock, *next);
      continue;
    }
    const Clock::time_point now = Clock::now();
    armed_.erase(std::remove_if(armed_.begin(), armed_.end(),
                                [&](const Fault& f) {
                                  return f.mode == FaultMode::kTargetOffline && f.duration_ms > 0 &&
                                         f.expires <= now;
                                }),
                 armed_.end());
    std::function<void()> callback = on_expiry_;
    lock.unlock();
    if (callback) callback();
    lock.lock();
  }
}

}  // namespace snapset::mock
