// A provider whose behaviour is scripted by its registration's "config", so
// tests can drive the host through every verdict, failure and exception
// through the real ABI and loader. Built with provider.hpp like any provider.
//
// config:
//   "supports": ["*" | "kind:filesystem" | "naa:HEX" | "name:VOLUME" |
//                "name-prefix:cow:a" | "device-prefix:/dev/loop"],
//                (none: supports nothing)
//   "not_supported_reason": "text",
//   "fail":  {"<event>": "<code name>", ...}  e.g. "commit_snapshots": "unavailable"
//   "throw": ["<event>", ...]
//   "delay_ms": {"<event>": N, ...}
//   "fail_load": true
// Events are the provider.h names (is_volume_supported, begin_prepare_snapshot, ...).
#include <snapset/provider.hpp>

#include <rapidjson/document.h>

#include <chrono>
#include <ctime>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>

namespace {

using snapset::Call;
using snapset::Code;
using snapset::SnapshotInfo;
using snapset::Status;
using snapset::VolumeRef;

Code CodeByName(const std::string& name) {
  for (int c = 0; c <= SNAPSET_E_NOT_IMPLEMENTED; ++c) {
    if (snapset::CodeName(Code(c)) == name) return Code(c);
  }
  return Code::kInternal;
}

class ScriptedProvider : public snapset::Provider {
 public:
  using Provider::Provider;

  Status Load(std::string_view config_json) override {
    rapidjson::Document doc;
    doc.Parse(config_json.data(), config_json.size());
    if (doc.HasParseError() || !doc.IsObject())
      return Status::InvalidArgument("scripted provider: config is not a JSON object");
    if (doc.HasMember("fail_load") && doc["fail_load"].IsTrue())
      return Status::InvalidArgument("scripted provider: told to fail on_load");
    if (auto it = doc.FindMember("supports"); it != doc.MemberEnd() && it->value.IsArray())
      for (const auto& r : it->value.GetArray()) supports_.push_back(r.GetString());
    if (auto it = doc.FindMember("not_supported_reason");
        it != doc.MemberEnd() && it->value.IsString())
      reason_ = it->value.GetString();
    if (auto it = doc.FindMember("fail"); it != doc.MemberEnd() && it->value.IsObject())
      for (auto m = it->value.MemberBegin(); m != it->value.MemberEnd(); ++m)
        fail_[m->name.GetString()] = CodeByName(m->value.GetString());
    if (auto it = doc.FindMember("throw"); it != doc.MemberEnd() && it->value.IsArray())
      for (const auto& e : it->value.GetArray()) throw_.insert(e.GetString());
    if (auto it = doc.FindMember("delay_ms"); it != doc.MemberEnd() && it->value.IsObject())
      for (auto m = it->value.MemberBegin(); m != it->value.MemberEnd(); ++m)
        delay_[m->name.GetString()] = m->value.GetInt();
    host().Info("scripted provider loaded");
    return Status::Ok();
  }

  Status IsVolumeSupported(const Call&, const VolumeRef& v, uint32_t) override {
    SNAPSET_RETURN_IF_ERROR(Script("is_volume_supported"));
    for (const auto& rule : supports_) {
      if (rule == "*") return Status::Ok();
      if (Match(rule, "kind:", KindName(v.kind()))) return Status::Ok();
      if (Match(rule, "naa:", v.naa())) return Status::Ok();
      if (Match(rule, "name:", v.name())) return Status::Ok();
      if (rule.rfind("name-prefix:", 0) == 0 && v.name().rfind(rule.substr(12), 0) == 0)
        return Status::Ok();
      if (rule.rfind("device-prefix:", 0) == 0 &&
          v.device_path().rfind(rule.substr(14), 0) == 0)
        return Status::Ok();
    }
    return Status::VolumeNotSupported(reason_.empty() ? "no scripted rule matches " +
                                                            std::string(v.name())
                                                      : reason_);
  }

  Status BeginPrepareSnapshot(const Call&, std::string_view set_id, std::string_view snapshot_id,
                              const VolumeRef& v, uint32_t context) override {
    SNAPSET_RETURN_IF_ERROR(Script("begin_prepare_snapshot"));
    std::lock_guard<std::mutex> lock(mu_);
    SnapshotInfo info;
    info.snapshot_id = snapshot_id;
    info.set_id = set_id;
    info.original_volume = v.name();
    info.attributes = context | SNAPSET_ATTR_READ_ONLY;
    info.state = SNAPSET_STATE_PREPARING;
    pending_[std::string(set_id)].push_back(info);
    return Status::Ok();
  }
  Status EndPrepareSnapshots(const Call&, std::string_view) override {
    return Script("end_prepare_snapshots");
  }
  Status PreCommitSnapshots(const Call&, std::string_view) override {
    return Script("pre_commit_snapshots");
  }
  Status CommitSnapshots(const Call&, std::string_view set_id) override {
    SNAPSET_RETURN_IF_ERROR(Script("commit_snapshots"));
    std::lock_guard<std::mutex> lock(mu_);
    timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    for (auto& s : pending_[std::string(set_id)])
      s.creation_time_ns = int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
    return Status::Ok();
  }
  Status PostCommitSnapshots(const Call&, std::string_view) override {
    return Script("post_commit_snapshots");
  }
  Status PreFinalCommitSnapshots(const Call&, std::string_view) override {
    return Script("pre_final_commit_snapshots");
  }
  Status PostFinalCommitSnapshots(const Call&, std::string_view set_id) override {
    SNAPSET_RETURN_IF_ERROR(Script("post_final_commit_snapshots"));
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& s : pending_[std::string(set_id)]) {
      s.state = SNAPSET_STATE_COMPLETE;
      snapshots_[s.snapshot_id] = s;
    }
    pending_.erase(std::string(set_id));
    return Status::Ok();
  }
  Status AbortSnapshots(const Call&, std::string_view set_id) override {
    SNAPSET_RETURN_IF_ERROR(Script("abort_snapshots"));
    std::lock_guard<std::mutex> lock(mu_);
    pending_.erase(std::string(set_id));
    return Status::Ok();
  }
  Status DeleteSnapshot(const Call&, std::string_view id) override {
    SNAPSET_RETURN_IF_ERROR(Script("delete_snapshot"));
    std::lock_guard<std::mutex> lock(mu_);
    if (snapshots_.erase(std::string(id)) == 0)
      return Status::NotFound("scripted provider has no snapshot " + std::string(id));
    return Status::Ok();
  }
  Status ListSnapshots(const Call&, std::vector<SnapshotInfo>* out) override {
    SNAPSET_RETURN_IF_ERROR(Script("list_snapshots"));
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [id, s] : snapshots_) out->push_back(s);
    return Status::Ok();
  }
  Status ExposeSnapshot(const Call&, std::string_view id, std::string* where) override {
    SNAPSET_RETURN_IF_ERROR(Script("expose_snapshot"));
    std::lock_guard<std::mutex> lock(mu_);
    if (!snapshots_.count(std::string(id)))
      return Status::NotFound("scripted provider has no snapshot " + std::string(id));
    *where = "scripted://" + std::string(id);
    return Status::Ok();
  }
  Status UnexposeSnapshot(const Call&, std::string_view) override {
    return Script("unexpose_snapshot");
  }

 private:
  static bool Match(const std::string& rule, const char* prefix, std::string_view value) {
    std::string_view p(prefix);
    return rule.rfind(p, 0) == 0 && !value.empty() && rule.substr(p.size()) == value;
  }
  static std::string_view KindName(uint32_t kind) {
    switch (kind) {
      case SNAPSET_VOLUME_FILESYSTEM: return "filesystem";
      case SNAPSET_VOLUME_BLOCK: return "block";
      case SNAPSET_VOLUME_ISCSI: return "iscsi";
      case SNAPSET_VOLUME_COW: return "cow";
    }
    return "unknown";
  }

  // Applies the script for one event: delay, then throw or fail.
  Status Script(const std::string& event) {
    if (auto it = delay_.find(event); it != delay_.end())
      std::this_thread::sleep_for(std::chrono::milliseconds(it->second));
    if (throw_.count(event)) throw std::runtime_error("scripted exception in " + event);
    if (auto it = fail_.find(event); it != fail_.end())
      return Status(it->second, "scripted failure in " + event);
    return Status::Ok();
  }

  std::vector<std::string> supports_;
  std::string reason_;
  std::map<std::string, Code> fail_;
  std::set<std::string> throw_;
  std::map<std::string, int> delay_;

  std::mutex mu_;
  std::map<std::string, std::vector<SnapshotInfo>> pending_;  // set -> snapshots
  std::map<std::string, SnapshotInfo> snapshots_;              // complete
};

}  // namespace

SNAPSET_PROVIDER(ScriptedProvider)
