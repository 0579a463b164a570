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
//   "state_dir": "/abs/path"   persist the snapshots there (see below)
//   "expose_as": "iscsi://127.0.0.1:3260/iqn.x:{id}/0"   what expose_snapshot
//                              returns, {id} replaced by the snapshot id
//                              (default "scripted://{id}")
//   "objects": [{"kind": "group", "name": "...", "location": "...",
//                "set_id": "...", "snapshot_id": "..."}]
//                              what list_objects reports (memory only);
//                              remove_object takes one away
//   "invalid_reason": "text"   list_snapshots lists every snapshot as
//                              SNAPSET_ATTR_INVALID with that reason
//   "lost": true               list_snapshots lists nothing (and so
//                              get_snapshot_properties answers NOT_FOUND)
//   "changed_ranges": [[offset, length], ...], "volume_size": N
//                              what changed_blocks answers for any snapshot
//                              (as given: the SDK cuts them to the start
//                              offset and max_ranges, the host checks them)
//   "crash_in": "<event>"      after doing its work in that event, the
//                              provider kills its own process with SIGKILL:
//                              the coordinator it runs in dies at that point
// Events are the provider.h names (is_volume_supported, begin_prepare_snapshot, ...).
// Built a second time with SCRIPTED_HOLDS_WRITES as libscripted_gate_provider:
// it then also offers write holds (hold_writes / release_writes events).
//
// Without "state_dir" the snapshots live in memory and die with the process.
// With it, every change is written durably (temp file, fsync, rename, fsync
// of the folder) to <state_dir>/scripted-state.json and read back on load, so
// an instance in a new process sees what an earlier one did: the pending
// (prepared, not complete) snapshots of each set with the set's state, and
// the complete snapshots. That is what a crash-recovery test inspects. One
// live instance per folder: instances do not see each other's changes.
//
// Abort removes the set's pending snapshots, also those an earlier process
// prepared (the SDK forwards an abort of a set it has not seen). A set this
// provider already completed is refused with BAD_STATE, as the SDK does
// within one process: the provider cannot know whether the host recorded the
// set, so deleting its snapshots is the host's decision (delete_snapshot).
// list_snapshots returns complete snapshots only.
#include <snapset/provider.hpp>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
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

// Set states as the state file names them.
const std::map<int32_t, std::string> kStateNames = {
    {SNAPSET_STATE_PREPARING, "preparing"},         {SNAPSET_STATE_PREPARED, "prepared"},
    {SNAPSET_STATE_PRECOMMITTED, "pre-committed"},  {SNAPSET_STATE_COMMITTED, "committed"},
    {SNAPSET_STATE_POSTCOMMITTED, "post-committed"}, {SNAPSET_STATE_COMPLETE, "complete"}};

std::string StateName(int32_t state) {
  auto it = kStateNames.find(state);
  return it == kStateNames.end() ? "unknown" : it->second;
}

bool StateByName(const std::string& name, int32_t* state) {
  for (const auto& [s, n] : kStateNames)
    if (n == name) {
      *state = s;
      return true;
    }
  return false;
}

std::string ErrnoText(const std::string& what) { return what + ": " + std::strerror(errno); }

// Writes `text` to dir/name so that after a crash at any point the file holds
// either its old or its new contents: temp file, fsync, rename, fsync of dir.
Status WriteFileDurably(const std::filesystem::path& dir, const std::string& name,
                        const std::string& text) {
  const std::string tmp = (dir / (name + ".tmp")).string();
  const std::string final_path = (dir / name).string();
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status::Unavailable(ErrnoText("scripted provider: cannot create " + tmp));
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      Status s = Status::Unavailable(ErrnoText("scripted provider: cannot write " + tmp));
      ::close(fd);
      return s;
    }
    done += size_t(n);
  }
  if (::fsync(fd) != 0) {
    Status s = Status::Unavailable(ErrnoText("scripted provider: cannot fsync " + tmp));
    ::close(fd);
    return s;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), final_path.c_str()) != 0)
    return Status::Unavailable(ErrnoText("scripted provider: cannot rename " + tmp));
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0)
    return Status::Unavailable(ErrnoText("scripted provider: cannot open " + dir.string()));
  int rc = ::fsync(dfd);
  ::close(dfd);
  if (rc != 0)
    return Status::Unavailable(ErrnoText("scripted provider: cannot fsync " + dir.string()));
  return Status::Ok();
}

template <typename Writer>
void WriteInfo(Writer& w, const SnapshotInfo& s) {
  w.StartObject();
  w.Key("snapshot_id");
  w.String(s.snapshot_id.c_str());
  w.Key("set_id");
  w.String(s.set_id.c_str());
  w.Key("original_volume");
  w.String(s.original_volume.c_str());
  w.Key("creation_time_ns");
  w.Int64(s.creation_time_ns);
  w.Key("attributes");
  w.Uint(s.attributes);
  w.Key("state");
  w.String(StateName(s.state).c_str());
  w.EndObject();
}

bool ReadInfo(const rapidjson::Value& v, SnapshotInfo* s) {
  if (!v.IsObject()) return false;
  for (const char* key : {"snapshot_id", "set_id", "original_volume", "state"})
    if (!v.HasMember(key) || !v[key].IsString()) return false;
  if (!v.HasMember("creation_time_ns") || !v["creation_time_ns"].IsInt64()) return false;
  if (!v.HasMember("attributes") || !v["attributes"].IsUint()) return false;
  s->snapshot_id = v["snapshot_id"].GetString();
  s->set_id = v["set_id"].GetString();
  s->original_volume = v["original_volume"].GetString();
  s->creation_time_ns = v["creation_time_ns"].GetInt64();
  s->attributes = v["attributes"].GetUint();
  return StateByName(v["state"].GetString(), &s->state);
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
    if (auto it = doc.FindMember("crash_in"); it != doc.MemberEnd() && it->value.IsString())
      crash_in_ = it->value.GetString();
    if (auto it = doc.FindMember("expose_as"); it != doc.MemberEnd() && it->value.IsString())
      expose_as_ = it->value.GetString();
    if (auto it = doc.FindMember("invalid_reason"); it != doc.MemberEnd() && it->value.IsString())
      invalid_reason_ = it->value.GetString();
    if (auto it = doc.FindMember("lost"); it != doc.MemberEnd() && it->value.IsBool())
      lost_ = it->value.GetBool();
    if (auto it = doc.FindMember("changed_ranges"); it != doc.MemberEnd() && it->value.IsArray()) {
      for (const auto& r : it->value.GetArray())
        if (r.IsArray() && r.Size() == 2 && r[0].IsUint64() && r[1].IsUint64())
          changed_.push_back({r[0].GetUint64(), r[1].GetUint64()});
    }
    if (auto it = doc.FindMember("volume_size"); it != doc.MemberEnd() && it->value.IsUint64())
      volume_size_ = it->value.GetUint64();
    if (auto it = doc.FindMember("objects"); it != doc.MemberEnd() && it->value.IsArray()) {
      for (const auto& o : it->value.GetArray()) {
        auto text = [&](const char* key) {
          auto m = o.FindMember(key);
          return m != o.MemberEnd() && m->value.IsString() ? std::string(m->value.GetString())
                                                           : std::string();
        };
        objects_.push_back(
            {text("kind"), text("name"), text("location"), text("set_id"), text("snapshot_id")});
      }
    }
    if (auto it = doc.FindMember("state_dir"); it != doc.MemberEnd()) {
      if (!it->value.IsString() || it->value.GetStringLength() == 0 ||
          it->value.GetString()[0] != '/')
        return Status::InvalidArgument("scripted provider: state_dir must be an absolute path");
      state_dir_ = it->value.GetString();
      SNAPSET_RETURN_IF_ERROR(LoadState());
    }
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
    {
      std::lock_guard<std::mutex> lock(mu_);
      // The host may have given up on this call and aborted the set while
      // it ran (the SDK records the abort before calling AbortSnapshots,
      // which waits for mu_): then nothing may be left behind.
      if (StateOf(set_id) == SNAPSET_STATE_ABORTED)
        return Status::BadState("begin_prepare_snapshot: set " + std::string(set_id) +
                                " was aborted meanwhile");
      SnapshotInfo info;
      info.snapshot_id = snapshot_id;
      info.set_id = set_id;
      info.original_volume = v.name();
      info.attributes = context | SNAPSET_ATTR_READ_ONLY;
      info.state = SNAPSET_STATE_PREPARING;
      PendingSet& set = pending_[std::string(set_id)];
      set.state = SNAPSET_STATE_PREPARING;
      set.snapshots.push_back(info);
      SNAPSET_RETURN_IF_ERROR(SaveState());
    }
    CrashPoint("begin_prepare_snapshot");
    return Status::Ok();
  }
  Status EndPrepareSnapshots(const Call&, std::string_view set_id) override {
    SNAPSET_RETURN_IF_ERROR(Script("end_prepare_snapshots"));
    SNAPSET_RETURN_IF_ERROR(Advance(set_id, SNAPSET_STATE_PREPARED));
    CrashPoint("end_prepare_snapshots");
    return Status::Ok();
  }
  Status PreCommitSnapshots(const Call&, std::string_view set_id) override {
    SNAPSET_RETURN_IF_ERROR(Script("pre_commit_snapshots"));
    SNAPSET_RETURN_IF_ERROR(Advance(set_id, SNAPSET_STATE_PRECOMMITTED));
    CrashPoint("pre_commit_snapshots");
    return Status::Ok();
  }
  // With a state_dir this writes a file inside the commit window: it must
  // not be on a held volume.
  Status CommitSnapshots(const Call&, std::string_view set_id) override {
    SNAPSET_RETURN_IF_ERROR(Script("commit_snapshots"));
    {
      std::lock_guard<std::mutex> lock(mu_);
      timespec ts;
      clock_gettime(CLOCK_REALTIME, &ts);
      if (auto it = pending_.find(std::string(set_id)); it != pending_.end())
        for (auto& s : it->second.snapshots)
          s.creation_time_ns = int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
    }
    SNAPSET_RETURN_IF_ERROR(Advance(set_id, SNAPSET_STATE_COMMITTED));
    CrashPoint("commit_snapshots");
    return Status::Ok();
  }
  Status PostCommitSnapshots(const Call&, std::string_view set_id) override {
    SNAPSET_RETURN_IF_ERROR(Script("post_commit_snapshots"));
    SNAPSET_RETURN_IF_ERROR(Advance(set_id, SNAPSET_STATE_POSTCOMMITTED));
    CrashPoint("post_commit_snapshots");
    return Status::Ok();
  }
  Status PreFinalCommitSnapshots(const Call&, std::string_view) override {
    SNAPSET_RETURN_IF_ERROR(Script("pre_final_commit_snapshots"));
    CrashPoint("pre_final_commit_snapshots");
    return Status::Ok();
  }
  Status PostFinalCommitSnapshots(const Call&, std::string_view set_id) override {
    SNAPSET_RETURN_IF_ERROR(Script("post_final_commit_snapshots"));
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (auto it = pending_.find(std::string(set_id)); it != pending_.end()) {
        for (auto& s : it->second.snapshots) {
          s.state = SNAPSET_STATE_COMPLETE;
          snapshots_[s.snapshot_id] = s;
        }
        pending_.erase(it);
      }
      SNAPSET_RETURN_IF_ERROR(SaveState());
    }
    CrashPoint("post_final_commit_snapshots");
    return Status::Ok();
  }
  Status AbortSnapshots(const Call&, std::string_view set_id) override {
    SNAPSET_RETURN_IF_ERROR(Script("abort_snapshots"));
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& [id, s] : snapshots_)
        if (s.set_id == set_id)
          return Status::BadState("abort_snapshots: set " + std::string(set_id) +
                                  " is complete on this provider; delete its snapshots instead");
      if (pending_.erase(std::string(set_id)) > 0) SNAPSET_RETURN_IF_ERROR(SaveState());
    }
    CrashPoint("abort_snapshots");
    return Status::Ok();
  }
  Status DeleteSnapshot(const Call&, std::string_view id) override {
    SNAPSET_RETURN_IF_ERROR(Script("delete_snapshot"));
    std::lock_guard<std::mutex> lock(mu_);
    if (snapshots_.erase(std::string(id)) == 0)
      return Status::NotFound("scripted provider has no snapshot " + std::string(id));
    return SaveState();
  }
  Status ListSnapshots(const Call&, std::vector<SnapshotInfo>* out) override {
    SNAPSET_RETURN_IF_ERROR(Script("list_snapshots"));
    std::lock_guard<std::mutex> lock(mu_);
    if (lost_) return Status::Ok();
    for (const auto& [id, s] : snapshots_) {
      out->push_back(s);
      if (invalid_reason_.empty()) continue;
      out->back().attributes |= SNAPSET_ATTR_INVALID;
      out->back().invalid_reason = invalid_reason_;
    }
    return Status::Ok();
  }
  Status ExposeSnapshot(const Call&, std::string_view id, std::string* where) override {
    SNAPSET_RETURN_IF_ERROR(Script("expose_snapshot"));
    std::lock_guard<std::mutex> lock(mu_);
    if (!snapshots_.count(std::string(id)))
      return Status::NotFound("scripted provider has no snapshot " + std::string(id));
    *where = expose_as_;
    if (size_t at = where->find("{id}"); at != std::string::npos)
      where->replace(at, 4, std::string(id));
    return Status::Ok();
  }
  Status UnexposeSnapshot(const Call&, std::string_view) override {
    return Script("unexpose_snapshot");
  }
  Status ChangedBlocks(const Call&, std::string_view, std::string_view, uint64_t, uint32_t,
                       uint64_t* volume_size, std::vector<snapset::ByteRange>* out) override {
    SNAPSET_RETURN_IF_ERROR(Script("changed_blocks"));
    *volume_size = volume_size_;
    *out = changed_;
    return Status::Ok();
  }
  Status ListObjects(const Call&, std::vector<snapset::ProviderObject>* out) override {
    SNAPSET_RETURN_IF_ERROR(Script("list_objects"));
    std::lock_guard<std::mutex> lock(mu_);
    *out = objects_;
    return Status::Ok();
  }
  Status RemoveObject(const Call&, const snapset::ProviderObject& o) override {
    SNAPSET_RETURN_IF_ERROR(Script("remove_object"));
    std::lock_guard<std::mutex> lock(mu_);
    std::erase_if(objects_, [&](const snapset::ProviderObject& mine) {
      return mine.kind == o.kind && mine.name == o.name && mine.location == o.location;
    });
    return Status::Ok();
  }

#ifdef SCRIPTED_HOLDS_WRITES
  // Built as libscripted_gate_provider.so: a write gate per volume, as the
  // software-cow daemon will have. Holds are logged as lines in
  // "<volume>: hold|release" to the host log, and counted.
  Status HoldWrites(const Call&, const VolumeRef& v) override {
    SNAPSET_RETURN_IF_ERROR(Script("hold_writes"));
    host().Info(std::string(v.name()) + ": hold");
    return Status::Ok();
  }
  Status ReleaseWrites(const Call&, const VolumeRef& v) override {
    SNAPSET_RETURN_IF_ERROR(Script("release_writes"));
    host().Info(std::string(v.name()) + ": release");
    return Status::Ok();
  }
#endif

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

  // The process dies here, as a coordinator killed at this point would.
  void CrashPoint(const std::string& event) const {
    if (event == crash_in_) ::raise(SIGKILL);
  }

  // Moves a pending set to `state`. Caller must not hold mu_.
  Status Advance(std::string_view set_id, int32_t state) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = pending_.find(std::string(set_id));
    if (it == pending_.end()) return Status::Ok();
    it->second.state = state;
    for (auto& s : it->second.snapshots) s.state = state;
    return SaveState();
  }

  // Writes pending_ and snapshots_ to the state file. Caller holds mu_.
  Status SaveState() const {
    if (state_dir_.empty()) return Status::Ok();
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    w.StartObject();
    w.Key("pending");
    w.StartArray();
    for (const auto& [set_id, set] : pending_) {
      w.StartObject();
      w.Key("set_id");
      w.String(set_id.c_str());
      w.Key("state");
      w.String(StateName(set.state).c_str());
      w.Key("snapshots");
      w.StartArray();
      for (const auto& s : set.snapshots) WriteInfo(w, s);
      w.EndArray();
      w.EndObject();
    }
    w.EndArray();
    w.Key("complete");
    w.StartArray();
    for (const auto& [id, s] : snapshots_) WriteInfo(w, s);
    w.EndArray();
    w.EndObject();
    return WriteFileDurably(state_dir_, kStateFile, std::string(buf.GetString(), buf.GetSize()));
  }

  // Reads the state file an earlier instance wrote, if any.
  Status LoadState() {
    std::error_code ec;
    std::filesystem::create_directories(state_dir_, ec);
    if (ec)
      return Status::Unavailable("scripted provider: cannot create " + state_dir_.string() + ": " +
                                 ec.message());
    const std::filesystem::path file = state_dir_ / kStateFile;
    std::ifstream in(file);
    if (!in) return Status::Ok();  // nothing saved yet
    std::stringstream text;
    text << in.rdbuf();
    const Status damaged = Status::Internal("scripted provider: state file " + file.string() +
                                            " is damaged");
    rapidjson::Document doc;
    doc.Parse(text.str().c_str());
    if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("pending") ||
        !doc["pending"].IsArray() || !doc.HasMember("complete") || !doc["complete"].IsArray())
      return damaged;
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& p : doc["pending"].GetArray()) {
      if (!p.IsObject() || !p.HasMember("set_id") || !p["set_id"].IsString() ||
          !p.HasMember("state") || !p["state"].IsString() || !p.HasMember("snapshots") ||
          !p["snapshots"].IsArray())
        return damaged;
      PendingSet set;
      if (!StateByName(p["state"].GetString(), &set.state)) return damaged;
      for (const auto& v : p["snapshots"].GetArray()) {
        SnapshotInfo info;
        if (!ReadInfo(v, &info)) return damaged;
        set.snapshots.push_back(std::move(info));
      }
      pending_[p["set_id"].GetString()] = std::move(set);
    }
    for (const auto& v : doc["complete"].GetArray()) {
      SnapshotInfo info;
      if (!ReadInfo(v, &info)) return damaged;
      snapshots_[info.snapshot_id] = std::move(info);
    }
    return Status::Ok();
  }

  static constexpr const char* kStateFile = "scripted-state.json";

  struct PendingSet {
    int32_t state = SNAPSET_STATE_PREPARING;
    std::vector<SnapshotInfo> snapshots;
  };

  std::vector<std::string> supports_;
  std::string reason_;
  std::map<std::string, Code> fail_;
  std::set<std::string> throw_;
  std::map<std::string, int> delay_;
  std::string crash_in_;
  std::string expose_as_ = "scripted://{id}";
  std::string invalid_reason_;
  bool lost_ = false;
  std::vector<snapset::ByteRange> changed_;
  uint64_t volume_size_ = 0;
  std::vector<snapset::ProviderObject> objects_;  // "objects"; guarded by mu_
  std::filesystem::path state_dir_;  // empty: memory only

  std::mutex mu_;
  std::map<std::string, PendingSet> pending_;      // set -> its prepared snapshots
  std::map<std::string, SnapshotInfo> snapshots_;  // complete
};

}  // namespace

SNAPSET_PROVIDER(ScriptedProvider)
