#include "core/provider_instance.hpp"

#include <dlfcn.h>

#include <cstring>

#include "core/file_safety.hpp"
#include "core/volume_abi.hpp"

namespace snapset {

// ---------------------------------------------------------------- host side

struct ProviderInstance::HostContext {
  HostLog* log;
  std::string source;  // provider name, shown with each log line
};

namespace {

// What a snapset_call* points to: one call's inputs and its error message.
struct CallState {
  explicit CallState(const CallOptions& o) : options(o) {}
  const CallOptions& options;
  std::string error;
};

CallState* FromCall(snapset_call* call) { return reinterpret_cast<CallState*>(call); }
snapset_call* ToCall(CallState* state) { return reinterpret_cast<snapset_call*>(state); }

void HostLogCallback(snapset_host_context* context, int32_t level, const char* message) {
  auto* ctx = reinterpret_cast<ProviderInstance::HostContext*>(context);
  if (!ctx || !ctx->log || !message) return;
  ctx->log->Push(level, ctx->source, message);
}

int64_t HostDeadline(snapset_call* call) {
  if (!call) return INT64_MAX;
  auto deadline = FromCall(call)->options.deadline;
  if (deadline == std::chrono::steady_clock::time_point::max()) return INT64_MAX;
  return std::chrono::duration_cast<std::chrono::nanoseconds>(deadline.time_since_epoch())
      .count();
}

int32_t HostIsCancelled(snapset_call* call) {
  if (!call) return 0;
  const auto* flag = FromCall(call)->options.cancelled;
  return flag && flag->load(std::memory_order_acquire) ? 1 : 0;
}

void HostSetError(snapset_call* call, const char* message) {
  if (call && message) FromCall(call)->error = message;
}

std::string VersionString(uint32_t v) {
  return std::to_string(SNAPSET_ABI_MAJOR(v)) + "." + std::to_string(SNAPSET_ABI_MINOR(v));
}

// Turns a provider's return code and message into a Status.
Status ToStatus(const char* op, snapset_status rc, const CallState& call) {
  if (rc == SNAPSET_OK) return Status::Ok();
  std::string message = call.error.empty()
                            ? std::string(op) + " failed (code " + std::to_string(rc) +
                                  ") and the provider gave no reason"
                            : call.error;
  return Status(CodeFromAbi(rc), std::move(message));
}

void CopyProperties(void* cookie, const snapset_snapshot_properties* p) {
  auto* out = static_cast<std::vector<SnapshotInfo>*>(cookie);
  if (!p) return;
  auto str = [](const char* s) { return s ? std::string(s) : std::string(); };
  SnapshotInfo info;
  // A properties struct smaller than ABI 1.0's is a broken plugin; read only
  // what it declares.
  if (!SNAPSET_HAS_MEMBER(p, snapset_snapshot_properties, snapshot_device)) return;
  info.state = p->state;
  info.snapshot_id = str(p->snapshot_id);
  info.set_id = str(p->set_id);
  info.original_volume = str(p->original_volume);
  info.provider_id = str(p->provider_id);
  info.creation_time_ns = p->creation_time_ns;
  info.attributes = p->attributes;
  info.exposed_as = str(p->exposed_as);
  info.snapshot_device = str(p->snapshot_device);
  if (SNAPSET_HAS_MEMBER(p, snapset_snapshot_properties, invalid_reason))
    info.invalid_reason = str(p->invalid_reason);
  if ((info.attributes & SNAPSET_ATTR_INVALID) && info.invalid_reason.empty())
    info.invalid_reason = "the provider says it cannot be read, and gave no reason";
  out->push_back(std::move(info));
}

}  // namespace

// ------------------------------------------------------------ negotiation

Status NegotiateAbi(const snapset_provider_ops* plugin, const std::string& library,
                    snapset_provider_ops* out) {
  std::memset(out, 0, sizeof *out);
  if (!plugin)
    return Status::Config(library + ": " SNAPSET_PROVIDER_ENTRY_SYMBOL "() returned NULL");
  const uint32_t major = SNAPSET_ABI_MAJOR(plugin->abi_version);
  const std::string theirs = VersionString(plugin->abi_version);
  const std::string ours = VersionString(SNAPSET_ABI_VERSION);
  if (major > SNAPSET_ABI_VERSION_MAJOR)
    return Status::Config(library + ": provider ABI too new: the plugin was built for ABI " +
                          theirs + ", this snapset speaks ABI " + ours +
                          " (upgrade snapset, or rebuild the plugin against an SDK " +
                          std::to_string(SNAPSET_ABI_VERSION_MAJOR) + ".x)");
  if (major < kOldestSupportedAbiMajor)
    return Status::Config(library + ": provider ABI too old: the plugin was built for ABI " +
                          theirs + ", this snapset needs ABI " +
                          std::to_string(kOldestSupportedAbiMajor) + ".0 or newer (rebuild " +
                          "the plugin against the installed SDK)");
  const size_t minimum = offsetof(snapset_provider_ops, on_load) + sizeof(plugin->on_load);
  if (plugin->struct_size < minimum)
    return Status::Config(library + ": ops table declares struct_size " +
                          std::to_string(plugin->struct_size) + ", smaller than the " +
                          std::to_string(minimum) + " bytes every ABI " +
                          std::to_string(major) + ".x table has");
  std::memcpy(out, plugin, std::min<size_t>(plugin->struct_size, sizeof *out));
  // The plugin's struct_size tells which members it knows; keep ours honest.
  out->struct_size = static_cast<uint32_t>(std::min<size_t>(plugin->struct_size, sizeof *out));

  struct Required {
    bool present;
    const char* name;
  };
  const Required required[] = {
      {out->on_load != nullptr, "on_load"},
      {out->on_unload != nullptr, "on_unload"},
      {out->is_volume_supported != nullptr, "is_volume_supported"},
      {out->begin_prepare_snapshot != nullptr, "begin_prepare_snapshot"},
      {out->commit_snapshots != nullptr, "commit_snapshots"},
      {out->abort_snapshots != nullptr, "abort_snapshots"},
  };
  for (const auto& r : required) {
    if (!r.present)
      return Status::Config(library + ": the provider does not implement " + r.name +
                            ", which every provider must");
  }
  if ((out->list_objects == nullptr) != (out->remove_object == nullptr))
    return Status::Config(library + ": the provider implements only one of list_objects and " +
                          "remove_object; it must implement both, or neither");
  return Status::Ok();
}

// ------------------------------------------------------------- loading

ProviderInstance::ProviderInstance(ProviderRegistration reg, HostLog* log)
    : reg_(std::move(reg)), host_context_(new HostContext{log, reg_.name}) {
  host_.abi_version = SNAPSET_ABI_VERSION;
  host_.struct_size = sizeof host_;
  host_.context = reinterpret_cast<snapset_host_context*>(host_context_.get());
  host_.log = &HostLogCallback;
  host_.deadline_ns = &HostDeadline;
  host_.is_cancelled = &HostIsCancelled;
  host_.set_error = &HostSetError;
}

Result<std::unique_ptr<ProviderInstance>> ProviderInstance::Load(const ProviderRegistration& reg,
                                                                 HostLog* log) {
  const std::string where = reg.file + ": provider \"" + reg.name + "\"";
  if (Status s = CheckTrustedFile(reg.library, "provider library"); !s.ok()) {
    if (s.IsNotFound())
      return Status::Config(where + ": library " + reg.library +
                            " does not exist (check \"library\"; a relative path is "
                            "relative to the registration file)");
    return Status::Config(where + ": " + s.message());
  }

  std::unique_ptr<ProviderInstance> p(new ProviderInstance(reg, log));
  dlerror();
  p->dl_ = ::dlopen(reg.library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!p->dl_) {
    const char* why = dlerror();
    return Status::Config(where + ": cannot load library " + reg.library + ": " +
                          (why ? why : "unknown dlopen error"));
  }
  dlerror();
  void* sym = ::dlsym(p->dl_, SNAPSET_PROVIDER_ENTRY_SYMBOL);
  if (!sym) {
    return Status::Config(where + ": library " + reg.library +
                          " has no entry point " SNAPSET_PROVIDER_ENTRY_SYMBOL
                          " (export it with SNAPSET_PROVIDER(YourClass), or define it "
                          "extern \"C\" with SNAPSET_EXPORT)");
  }
  auto entry = reinterpret_cast<snapset_provider_entry_fn>(sym);
  const snapset_provider_ops* plugin_ops = entry();
  if (Status s = NegotiateAbi(plugin_ops, reg.library, &p->ops_); !s.ok())
    return Status::Config(reg.file + ": " + s.message());
  p->plugin_ops_size_ = plugin_ops->struct_size;

  CallOptions options;
  CallState call(options);
  snapset_provider* instance = nullptr;
  snapset_status rc = p->ops_.on_load(&p->host_, ToCall(&call), 0, reg.config_json.c_str(),
                                      &instance);
  if (rc != SNAPSET_OK) {
    return Status::Config(where + ": on_load failed: " + ToStatus("on_load", rc, call).ToString());
  }
  if (!instance)
    return Status::Config(where + ": on_load returned OK but no instance");
  p->instance_ = instance;
  return p;
}

ProviderInstance::~ProviderInstance() {
  if (instance_ && ops_.on_unload) ops_.on_unload(instance_, 0);
  // The log may still hold lines whose text came from the plugin, but they
  // were copied into std::strings, so unmapping the code is safe.
  if (dl_) ::dlclose(dl_);
}

void ProviderInstance::MarkUnhealthy(const std::string& why) {
  std::lock_guard<std::mutex> lock(unhealthy_mu_);
  if (unhealthy_reason_.empty()) unhealthy_reason_ = why;
  unhealthy_.store(true, std::memory_order_release);
}

std::string ProviderInstance::unhealthy_reason() const {
  std::lock_guard<std::mutex> lock(unhealthy_mu_);
  return unhealthy_reason_;
}

// ---------------------------------------------------------------- calls

Status ProviderInstance::IsVolumeSupported(const Volume& v, uint32_t context,
                                           const CallOptions& o, std::string* why) {
  VolumeAbiView view(v);
  CallState call(o);
  Status s = ToStatus(
      "is_volume_supported",
      ops_.is_volume_supported(instance_, ToCall(&call), o.flags, view.get(), context), call);
  if (s.ok() && why) *why = call.error;
  return s;
}

Status ProviderInstance::BeginPrepareSnapshot(const std::string& set_id,
                                              const std::string& snapshot_id, const Volume& v,
                                              uint32_t context, const CallOptions& o) {
  VolumeAbiView view(v);
  CallState call(o);
  return ToStatus("begin_prepare_snapshot",
                  ops_.begin_prepare_snapshot(instance_, ToCall(&call), o.flags, set_id.c_str(),
                                              snapshot_id.c_str(), view.get(), context),
                  call);
}

Status ProviderInstance::SetEvent(const char* op,
                                  snapset_status (*fn)(snapset_provider*, snapset_call*, uint32_t,
                                                       const char*),
                                  const std::string& set_id, const CallOptions& o,
                                  bool optional_ok) {
  if (!fn) {
    if (optional_ok) return Status::Ok();
    return Status::NotImplemented(std::string(op) + " is not implemented by provider " +
                                  reg_.name);
  }
  CallState call(o);
  return ToStatus(op, fn(instance_, ToCall(&call), o.flags, set_id.c_str()), call);
}

// end_prepare, pre_commit, post_commit and the final commits are optional
// in the sense that a provider with nothing to do there may leave them NULL.
Status ProviderInstance::EndPrepareSnapshots(const std::string& s, const CallOptions& o) {
  return SetEvent("end_prepare_snapshots", ops_.end_prepare_snapshots, s, o, true);
}
Status ProviderInstance::PreCommitSnapshots(const std::string& s, const CallOptions& o) {
  return SetEvent("pre_commit_snapshots", ops_.pre_commit_snapshots, s, o, true);
}
Status ProviderInstance::CommitSnapshots(const std::string& s, const CallOptions& o) {
  return SetEvent("commit_snapshots", ops_.commit_snapshots, s, o, false);
}
Status ProviderInstance::PostCommitSnapshots(const std::string& s, const CallOptions& o) {
  return SetEvent("post_commit_snapshots", ops_.post_commit_snapshots, s, o, true);
}
Status ProviderInstance::PreFinalCommitSnapshots(const std::string& s, const CallOptions& o) {
  return SetEvent("pre_final_commit_snapshots", ops_.pre_final_commit_snapshots, s, o, true);
}
Status ProviderInstance::PostFinalCommitSnapshots(const std::string& s, const CallOptions& o) {
  return SetEvent("post_final_commit_snapshots", ops_.post_final_commit_snapshots, s, o, true);
}
Status ProviderInstance::AbortSnapshots(const std::string& s, const CallOptions& o) {
  return SetEvent("abort_snapshots", ops_.abort_snapshots, s, o, false);
}
Status ProviderInstance::DeleteSnapshot(const std::string& id, const CallOptions& o) {
  return SetEvent("delete_snapshot", ops_.delete_snapshot, id, o, false);
}
Status ProviderInstance::UnexposeSnapshot(const std::string& id, const CallOptions& o) {
  return SetEvent("unexpose_snapshot", ops_.unexpose_snapshot, id, o, false);
}
Status ProviderInstance::RevertToSnapshot(const std::string& id, const CallOptions& o) {
  return SetEvent("revert_to_snapshot", ops_.revert_to_snapshot, id, o, false);
}

Result<std::string> ProviderInstance::CanHoldWrites(const Volume& v, const CallOptions& o) {
  if (!can_hold_writes())
    return Status::VolumeNotSupported("provider " + reg_.name + " cannot hold writes");
  if (!ops_.can_hold_writes) return std::string("write-gate");  // every volume it takes
  VolumeAbiView view(v);
  CallState call(o);
  Status s = ToStatus("can_hold_writes",
                      ops_.can_hold_writes(instance_, ToCall(&call), o.flags, view.get()), call);
  if (!s.ok()) return s;
  // A short name only: it is a column of the plan.
  std::string how = call.error.empty() || call.error.size() > 32 ? "write-gate" : call.error;
  return how;
}

Status ProviderInstance::HoldWrites(const Volume& v, const CallOptions& o) {
  if (!can_hold_writes())
    return Status::NotImplemented("provider " + reg_.name + " cannot hold writes");
  VolumeAbiView view(v);
  CallState call(o);
  return ToStatus("hold_writes", ops_.hold_writes(instance_, ToCall(&call), o.flags, view.get()),
                  call);
}

Status ProviderInstance::ReleaseWrites(const Volume& v, const CallOptions& o) {
  if (!can_hold_writes())
    return Status::NotImplemented("provider " + reg_.name + " cannot hold writes");
  VolumeAbiView view(v);
  CallState call(o);
  return ToStatus("release_writes",
                  ops_.release_writes(instance_, ToCall(&call), o.flags, view.get()), call);
}

Result<std::vector<ProviderObject>> ProviderInstance::ListObjects(const CallOptions& o) {
  if (!lists_objects())
    return Status::NotImplemented("provider " + reg_.name + " does not list its objects");
  std::vector<ProviderObject> out;
  CallState call(o);
  auto sink = [](void* cookie, const snapset_provider_object* p) {
    if (!p || !SNAPSET_HAS_MEMBER(p, snapset_provider_object, snapshot_id)) return;
    static_cast<std::vector<ProviderObject>*>(cookie)->push_back(ProviderObjectFromAbi(*p));
  };
  Status s = ToStatus("list_objects",
                      ops_.list_objects(instance_, ToCall(&call), o.flags, sink, &out), call);
  if (!s.ok()) return s;
  return out;
}

Status ProviderInstance::RemoveObject(const ProviderObject& object, const CallOptions& o) {
  if (!lists_objects())
    return Status::NotImplemented("provider " + reg_.name + " does not remove its objects");
  const snapset_provider_object c = ProviderObjectToAbi(object);
  CallState call(o);
  return ToStatus("remove_object", ops_.remove_object(instance_, ToCall(&call), o.flags, &c), call);
}

Result<ProviderInstance::ChangedPage> ProviderInstance::ChangedBlocks(
    const std::string& snapshot_id, const std::string& base_snapshot_id, uint64_t start_offset,
    uint32_t max_ranges, const CallOptions& o) {
  if (!ops_.changed_blocks) {
    return Status::NotImplemented("provider " + reg_.name +
                                  " does not report changed blocks (it offers provider ABI " +
                                  std::to_string(ops_.abi_version >> 16) + "." +
                                  std::to_string(SNAPSET_ABI_MINOR(ops_.abi_version)) +
                                  " without changed_blocks); back up its snapshots whole");
  }
  ChangedPage page;
  auto sink = [](void* cookie, uint64_t offset, uint64_t length) {
    static_cast<std::vector<ByteRange>*>(cookie)->push_back({offset, length});
  };
  CallState call(o);
  Status s =
      ToStatus("changed_blocks",
               ops_.changed_blocks(instance_, ToCall(&call), o.flags, snapshot_id.c_str(),
                                   base_snapshot_id.empty() ? nullptr : base_snapshot_id.c_str(),
                                   start_offset, max_ranges, &page.volume_size, sink, &page.ranges),
               call);
  if (!s.ok()) return s;
  // What the host relies on, checked rather than trusted: a provider that
  // breaks it gives an error naming it, never a wrong backup.
  uint64_t end = start_offset;
  for (const ByteRange& r : page.ranges) {
    if (r.length == 0 || r.offset < end || r.offset + r.length < r.offset ||
        r.offset + r.length > page.volume_size || page.ranges.size() > max_ranges) {
      return Status::Internal("provider " + reg_.name + " answered changed_blocks with range [" +
                              std::to_string(r.offset) + ", +" + std::to_string(r.length) +
                              ") which is empty, unsorted, overlapping, before the start " +
                              "offset or beyond the volume's " + std::to_string(page.volume_size) +
                              " bytes");
    }
    end = r.offset + r.length;
  }
  return page;
}

Result<std::vector<SnapshotInfo>> ProviderInstance::ListSnapshots(const CallOptions& o) {
  if (!ops_.list_snapshots)
    return Status::NotImplemented("list_snapshots is not implemented by provider " + reg_.name);
  std::vector<SnapshotInfo> out;
  CallState call(o);
  Status s = ToStatus("list_snapshots",
                      ops_.list_snapshots(instance_, ToCall(&call), o.flags, &CopyProperties, &out),
                      call);
  if (!s.ok()) return s;
  // A provider cannot know which registration it serves; the host can.
  for (auto& info : out) info.provider_id = reg_.id;
  return out;
}

Result<SnapshotInfo> ProviderInstance::GetSnapshotProperties(const std::string& id,
                                                             const CallOptions& o) {
  if (!ops_.get_snapshot_properties)
    return Status::NotImplemented("get_snapshot_properties is not implemented by provider " +
                                  reg_.name);
  std::vector<SnapshotInfo> out;
  CallState call(o);
  Status s = ToStatus("get_snapshot_properties",
                      ops_.get_snapshot_properties(instance_, ToCall(&call), o.flags, id.c_str(),
                                                   &CopyProperties, &out),
                      call);
  if (!s.ok()) return s;
  if (out.size() != 1)
    return Status::Internal("provider " + reg_.name + " answered get_snapshot_properties with " +
                            std::to_string(out.size()) + " results instead of one");
  out.front().provider_id = reg_.id;
  return std::move(out.front());
}

Result<std::string> ProviderInstance::ExposeSnapshot(const std::string& id, const CallOptions& o) {
  if (!ops_.expose_snapshot)
    return Status::NotImplemented("provider " + reg_.name + " cannot expose snapshots");
  std::string where;
  bool got = false;
  struct Sink {
    std::string* where;
    bool* got;
  } sink{&where, &got};
  CallState call(o);
  Status s = ToStatus(
      "expose_snapshot",
      ops_.expose_snapshot(
          instance_, ToCall(&call), o.flags, id.c_str(),
          [](void* cookie, const char* value) {
            auto* k = static_cast<Sink*>(cookie);
            *k->where = value ? value : "";
            *k->got = true;
          },
          &sink),
      call);
  if (!s.ok()) return s;
  if (!got || where.empty())
    return Status::Internal("provider " + reg_.name +
                            " reported the snapshot exposed but gave no path or URL");
  return where;
}

}  // namespace snapset
