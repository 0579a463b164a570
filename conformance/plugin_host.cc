// SPDX-License-Identifier: Apache-2.0
#include "conformance/plugin_host.hpp"

#include <dlfcn.h>

#include <cstring>

#include "core/provider_instance.hpp"

namespace snapset::conformance {

struct PluginHost::HostContext {
  std::mutex mu;
  std::vector<std::string> logs;
};

struct PluginHost::CallState {
  const CallSettings* settings;
  std::string error;
  bool error_set = false;
};

namespace {

PluginHost::CallState* FromCall(snapset_call* c) {
  return reinterpret_cast<PluginHost::CallState*>(c);
}
snapset_call* ToCall(PluginHost::CallState* s) { return reinterpret_cast<snapset_call*>(s); }

const char* LevelName(int32_t level) {
  switch (level) {
    case SNAPSET_LOG_ERROR:
      return "error";
    case SNAPSET_LOG_WARNING:
      return "warning";
    case SNAPSET_LOG_INFO:
      return "info";
    default:
      return "debug";
  }
}

void HostLog(snapset_host_context* context, int32_t level, const char* message) {
  auto* ctx = reinterpret_cast<PluginHost::HostContext*>(context);
  if (!ctx || !message) return;
  std::lock_guard<std::mutex> lock(ctx->mu);
  ctx->logs.push_back(std::string(LevelName(level)) + ": " + message);
}

int64_t HostDeadline(snapset_call* call) {
  if (!call) return INT64_MAX;
  auto d = FromCall(call)->settings->deadline;
  if (d == Clock::time_point::max()) return INT64_MAX;
  return std::chrono::duration_cast<std::chrono::nanoseconds>(d.time_since_epoch()).count();
}

int32_t HostIsCancelled(snapset_call* call) {
  if (!call) return 0;
  const auto* flag = FromCall(call)->settings->cancelled;
  return flag && flag->load(std::memory_order_acquire) ? 1 : 0;
}

void HostSetError(snapset_call* call, const char* message) {
  if (!call || !message) return;
  FromCall(call)->error = message;
  FromCall(call)->error_set = true;
}

SnapshotInfo InfoOf(const snapset_snapshot_properties* p) {
  auto str = [](const char* s) { return s ? std::string(s) : std::string(); };
  SnapshotInfo info;
  info.state = p->state;
  info.snapshot_id = str(p->snapshot_id);
  info.set_id = str(p->set_id);
  info.original_volume = str(p->original_volume);
  info.creation_time_ns = p->creation_time_ns;
  info.attributes = p->attributes;
  info.exposed_as = str(p->exposed_as);
  info.snapshot_device = str(p->snapshot_device);
  if (SNAPSET_HAS_MEMBER(p, snapset_snapshot_properties, invalid_reason))
    info.invalid_reason = str(p->invalid_reason);
  return info;
}

// A properties struct smaller than ABI 1.0's is a broken provider: read
// nothing, and let the case see an empty record.
bool WholeProperties(const snapset_snapshot_properties* p) {
  return p && SNAPSET_HAS_MEMBER(p, snapset_snapshot_properties, snapshot_device);
}

}  // namespace

std::string Answer::Describe() const {
  std::string text(CodeName(CodeFromAbi(code)));
  if (!message.empty()) text += ": " + message;
  return text;
}

const char* EventName(Event e) {
  switch (e) {
    case Event::kEndPrepare:
      return "end_prepare_snapshots";
    case Event::kPreCommit:
      return "pre_commit_snapshots";
    case Event::kCommit:
      return "commit_snapshots";
    case Event::kPostCommit:
      return "post_commit_snapshots";
    case Event::kPreFinal:
      return "pre_final_commit_snapshots";
    case Event::kPostFinal:
      return "post_final_commit_snapshots";
    case Event::kAbort:
      return "abort_snapshots";
  }
  return "?";
}

PluginHost::PluginHost(std::string library) : library_(std::move(library)) {}

Result<std::unique_ptr<PluginHost>> PluginHost::Open(const std::string& library) {
  std::unique_ptr<PluginHost> p(new PluginHost(library));
  p->dl_ = ::dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!p->dl_) return Status::Config("cannot load " + library + ": " + ::dlerror());
  auto entry =
      reinterpret_cast<snapset_provider_entry_fn>(::dlsym(p->dl_, SNAPSET_PROVIDER_ENTRY_SYMBOL));
  if (!entry)
    return Status::Config(library +
                          " does not export " SNAPSET_PROVIDER_ENTRY_SYMBOL
                          " (build it with snapset_add_provider, or SNAPSET_PROVIDER(...))");
  const snapset_provider_ops* table = entry();
  SNAPSET_RETURN_IF_ERROR(NegotiateAbi(table, library, &p->ops_));
  p->plugin_version_ = table->abi_version;
  p->plugin_size_ = table->struct_size;
  p->context_ = std::make_unique<HostContext>();
  return p;
}

PluginHost::~PluginHost() {
  Unload();
  // The library stays mapped: a provider's threads that outlive on_unload
  // (a broken provider's) must not run unmapped code.
}

template <typename Fn>
Answer PluginHost::Run(const char* op, const CallSettings& s, Fn&& fn) {
  CallState state{&s, {}, false};
  const auto start = Clock::now();
  const int32_t code = fn(ToCall(&state));
  Answer a;
  a.code = code;
  a.message = state.error;
  a.ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  std::lock_guard<std::mutex> lock(mu_);
  calls_.push_back({op, code, a.ms, state.error_set && !state.error.empty()});
  if (state.error_set) messages_.push_back(state.error);
  return a;
}

Answer PluginHost::Load(const std::string& config_json, HostFlavour flavour, uint32_t flags) {
  host_ = {};
  snapset_host& h = host_.base;
  h.abi_version = SNAPSET_ABI_VERSION;
  h.struct_size = sizeof(snapset_host);
  h.context = reinterpret_cast<snapset_host_context*>(context_.get());
  h.log = &HostLog;
  h.deadline_ns = &HostDeadline;
  h.is_cancelled = &HostIsCancelled;
  h.set_error = &HostSetError;
  if (flavour == HostFlavour::kOlderMinor) {
    // The host table has not grown since 1.0: only the version differs.
    h.abi_version = SNAPSET_ABI_MAKE_VERSION(SNAPSET_ABI_VERSION_MAJOR, 0);
  } else if (flavour == HostFlavour::kNewerMinor) {
    h.abi_version = SNAPSET_ABI_MAKE_VERSION(SNAPSET_ABI_VERSION_MAJOR, 999);
    h.struct_size = sizeof(NewerHost);
    host_.future_member = nullptr;
  }
  CallSettings s;
  snapset_provider* out = nullptr;
  Answer a = Run("on_load", s, [&](snapset_call* c) {
    return ops_.on_load(&h, c, flags, config_json.c_str(), &out);
  });
  if (a.ok() && !out) {
    a.code = SNAPSET_E_INTERNAL;
    a.message = "on_load returned OK but no instance";
  }
  if (a.ok()) instance_ = out;
  return a;
}

void PluginHost::Unload() {
  if (!instance_) return;
  ops_.on_unload(instance_, 0);
  instance_ = nullptr;
}

Answer PluginHost::IsVolumeSupported(const snapset_volume* v, uint32_t context,
                                     const CallSettings& s) {
  return Run("is_volume_supported", s, [&](snapset_call* c) {
    return ops_.is_volume_supported(instance_, c, s.flags, v, context);
  });
}

Answer PluginHost::BeginPrepare(const std::string& set_id, const std::string& snapshot_id,
                                const snapset_volume* v, uint32_t context, const CallSettings& s) {
  return Run("begin_prepare_snapshot", s, [&](snapset_call* c) {
    return ops_.begin_prepare_snapshot(instance_, c, s.flags, set_id.c_str(), snapshot_id.c_str(),
                                       v, context);
  });
}

Answer PluginHost::SetEvent(Event e, const std::string& set_id, const CallSettings& s) {
  using Fn = snapset_status (*)(snapset_provider*, snapset_call*, uint32_t, const char*);
  Fn fn = nullptr;
  switch (e) {
    case Event::kEndPrepare:
      fn = ops_.end_prepare_snapshots;
      break;
    case Event::kPreCommit:
      fn = ops_.pre_commit_snapshots;
      break;
    case Event::kCommit:
      fn = ops_.commit_snapshots;
      break;
    case Event::kPostCommit:
      fn = ops_.post_commit_snapshots;
      break;
    case Event::kPreFinal:
      fn = ops_.pre_final_commit_snapshots;
      break;
    case Event::kPostFinal:
      fn = ops_.post_final_commit_snapshots;
      break;
    case Event::kAbort:
      fn = ops_.abort_snapshots;
      break;
  }
  if (!fn) return Answer{};  // optional and absent: nothing to do
  return Run(EventName(e), s,
             [&](snapset_call* c) { return fn(instance_, c, s.flags, set_id.c_str()); });
}

Answer PluginHost::Delete(const std::string& snapshot_id, const CallSettings& s) {
  return Run("delete_snapshot", s, [&](snapset_call* c) {
    return ops_.delete_snapshot(instance_, c, s.flags, snapshot_id.c_str());
  });
}

Answer PluginHost::List(std::vector<SnapshotInfo>* out, const CallSettings& s) {
  out->clear();
  auto sink = [](void* cookie, const snapset_snapshot_properties* p) {
    if (WholeProperties(p)) static_cast<std::vector<SnapshotInfo>*>(cookie)->push_back(InfoOf(p));
  };
  return Run("list_snapshots", s, [&](snapset_call* c) {
    return ops_.list_snapshots(instance_, c, s.flags, sink, out);
  });
}

Answer PluginHost::Properties(const std::string& snapshot_id, SnapshotInfo* out, int* sink_calls,
                              const CallSettings& s) {
  struct Cookie {
    SnapshotInfo* info;
    int calls = 0;
  } cookie{out};
  auto sink = [](void* ck, const snapset_snapshot_properties* p) {
    auto* k = static_cast<Cookie*>(ck);
    ++k->calls;
    if (WholeProperties(p)) *k->info = InfoOf(p);
  };
  Answer a = Run("get_snapshot_properties", s, [&](snapset_call* c) {
    return ops_.get_snapshot_properties(instance_, c, s.flags, snapshot_id.c_str(), sink, &cookie);
  });
  if (sink_calls) *sink_calls = cookie.calls;
  return a;
}

Answer PluginHost::Expose(const std::string& snapshot_id, std::string* exposed_as,
                          const CallSettings& s) {
  if (!ops_.expose_snapshot) return Answer{SNAPSET_E_NOT_IMPLEMENTED, "not offered", 0};
  auto sink = [](void* cookie, const char* value) {
    if (value) *static_cast<std::string*>(cookie) = value;
  };
  return Run("expose_snapshot", s, [&](snapset_call* c) {
    return ops_.expose_snapshot(instance_, c, s.flags, snapshot_id.c_str(), sink, exposed_as);
  });
}

Answer PluginHost::Unexpose(const std::string& snapshot_id, const CallSettings& s) {
  if (!ops_.unexpose_snapshot) return Answer{SNAPSET_E_NOT_IMPLEMENTED, "not offered", 0};
  return Run("unexpose_snapshot", s, [&](snapset_call* c) {
    return ops_.unexpose_snapshot(instance_, c, s.flags, snapshot_id.c_str());
  });
}

Answer PluginHost::Revert(const std::string& snapshot_id, const CallSettings& s) {
  if (!ops_.revert_to_snapshot) return Answer{SNAPSET_E_NOT_IMPLEMENTED, "not offered", 0};
  return Run("revert_to_snapshot", s, [&](snapset_call* c) {
    return ops_.revert_to_snapshot(instance_, c, s.flags, snapshot_id.c_str());
  });
}

Answer PluginHost::CanHoldWrites(const snapset_volume* v, const CallSettings& s) {
  if (!ops_.hold_writes) return Answer{SNAPSET_E_NOT_IMPLEMENTED, "not offered", 0};
  if (!ops_.can_hold_writes) return Answer{};  // 1.0: every volume it takes
  return Run("can_hold_writes", s,
             [&](snapset_call* c) { return ops_.can_hold_writes(instance_, c, s.flags, v); });
}

Answer PluginHost::HoldWrites(const snapset_volume* v, const CallSettings& s) {
  return Run("hold_writes", s,
             [&](snapset_call* c) { return ops_.hold_writes(instance_, c, s.flags, v); });
}

Answer PluginHost::ReleaseWrites(const snapset_volume* v, const CallSettings& s) {
  return Run("release_writes", s,
             [&](snapset_call* c) { return ops_.release_writes(instance_, c, s.flags, v); });
}

Answer PluginHost::ListObjects(std::vector<std::string>* names, const CallSettings& s) {
  names->clear();
  if (!ops_.list_objects) return Answer{SNAPSET_E_NOT_IMPLEMENTED, "not offered", 0};
  auto sink = [](void* cookie, const snapset_provider_object* o) {
    if (!o || !SNAPSET_HAS_MEMBER(o, snapset_provider_object, snapshot_id)) return;
    std::string text = std::string(o->kind ? o->kind : "?") + " " + (o->name ? o->name : "?");
    if (o->location) text += std::string(" on ") + o->location;
    static_cast<std::vector<std::string>*>(cookie)->push_back(std::move(text));
  };
  return Run("list_objects", s, [&](snapset_call* c) {
    return ops_.list_objects(instance_, c, s.flags, sink, names);
  });
}

std::vector<CallRecord> PluginHost::calls() const {
  std::lock_guard<std::mutex> lock(mu_);
  return calls_;
}

std::vector<std::string> PluginHost::logs() const {
  std::lock_guard<std::mutex> lock(context_->mu);
  return context_->logs;
}

std::vector<std::string> PluginHost::messages() const {
  std::lock_guard<std::mutex> lock(mu_);
  return messages_;
}

}  // namespace snapset::conformance
