// snapset provider SDK for C++: write a provider as a class, export it with
// one macro.
//
//   class MyProvider : public snapset::Provider {
//    public:
//     using Provider::Provider;
//     snapset::Status IsVolumeSupported(const snapset::Call&,
//                                       const snapset::VolumeRef& v,
//                                       uint32_t context) override;
//     ...
//   };
//   SNAPSET_PROVIDER(MyProvider)
//
// What this header does for you, so every provider gets it right:
//   - fills the C ops table of provider.h and exports snapset_provider_entry;
//   - rejects unknown flag bits with SNAPSET_E_INVALID_ARGUMENT;
//   - keeps the per-set state machine of DESIGN §3 (Idle -> Preparing ->
//     Prepared -> PreCommitted -> Committed -> PostCommitted -> Complete,
//     Aborted from any state before Complete) and answers an event out of
//     order with SNAPSET_E_BAD_STATE without calling your method;
//   - makes abort_snapshots idempotent: a set already aborted in this
//     instance is OK without calling you again; a set this instance never
//     saw is passed on to AbortSnapshots (it may be one an instance in an
//     earlier, crashed process prepared: see AbortSnapshots);
//   - catches every exception and returns SNAPSET_E_INTERNAL with its text,
//     so no exception ever crosses the C ABI.
//
// Thread-safety: the host may call methods concurrently (see provider.h);
// your class must be thread-safe. The state bookkeeping here is.
// Ownership: the host owns every argument; copy what you keep.
// Header-only: a provider links nothing of snapset.
#ifndef SNAPSET_PROVIDER_HPP
#define SNAPSET_PROVIDER_HPP

#include <snapset/provider.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <snapset/provider_object.hpp>
#include <snapset/snapshot_info.hpp>
#include <snapset/status.hpp>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace snapset {

// The host's services (provider.h snapset_host). Cheap to copy.
class Host {
 public:
  explicit Host(const snapset_host* host) : host_(host) {}

  // Never blocks; safe inside CommitSnapshots.
  void Log(int32_t level, std::string_view message) const {
    if (!host_ || !SNAPSET_HAS_MEMBER(host_, snapset_host, log) || !host_->log) return;
    std::string text(message);
    host_->log(host_->context, level, text.c_str());
  }
  void Error(std::string_view m) const { Log(SNAPSET_LOG_ERROR, m); }
  void Warning(std::string_view m) const { Log(SNAPSET_LOG_WARNING, m); }
  void Info(std::string_view m) const { Log(SNAPSET_LOG_INFO, m); }
  void Debug(std::string_view m) const { Log(SNAPSET_LOG_DEBUG, m); }

  const snapset_host* raw() const { return host_; }

 private:
  const snapset_host* host_;
};

// The call in progress: its deadline and cancellation flag.
class Call {
 public:
  Call(const snapset_host* host, snapset_call* call) : host_(host), call_(call) {}

  // Absolute deadline on the steady (CLOCK_MONOTONIC) clock; time_point::max()
  // when the call has none.
  std::chrono::steady_clock::time_point deadline() const {
    using std::chrono::steady_clock;
    if (!host_ || !SNAPSET_HAS_MEMBER(host_, snapset_host, deadline_ns) ||
        !host_->deadline_ns)
      return steady_clock::time_point::max();
    int64_t ns = host_->deadline_ns(call_);
    if (ns == INT64_MAX) return steady_clock::time_point::max();
    return steady_clock::time_point(std::chrono::nanoseconds(ns));
  }
  // Time left before the deadline (zero once it passed).
  std::chrono::nanoseconds remaining() const {
    auto d = deadline();
    if (d == std::chrono::steady_clock::time_point::max())
      return std::chrono::nanoseconds::max();
    auto left = d - std::chrono::steady_clock::now();
    return left.count() > 0 ? std::chrono::duration_cast<std::chrono::nanoseconds>(left)
                            : std::chrono::nanoseconds(0);
  }
  // From IsVolumeSupported returning OK: why this provider supports the
  // volume (e.g. which array holds it, by which identity), for `snapset
  // providers explain`. Ignored for every other call and result.
  void ExplainSupport(std::string_view why) const {
    if (host_ && SNAPSET_HAS_MEMBER(host_, snapset_host, set_error) && host_->set_error)
      host_->set_error(call_, std::string(why).c_str());
  }
  bool cancelled() const {
    return host_ && SNAPSET_HAS_MEMBER(host_, snapset_host, is_cancelled) &&
           host_->is_cancelled && host_->is_cancelled(call_) != 0;
  }

 private:
  const snapset_host* host_;
  snapset_call* call_;
};

// Read-only view of a snapset_volume; valid during the call only.
class VolumeRef {
 public:
  explicit VolumeRef(const snapset_volume* v) : v_(v) {}

  uint32_t kind() const { return v_->kind; }
  std::string_view name() const { return Str(v_->name); }
  std::string_view device_path() const { return Str(v_->device_path); }
  uint64_t size_bytes() const { return v_->size_bytes; }
  uint32_t block_size() const { return v_->block_size; }
  std::string_view mount_point() const { return Str(v_->mount_point); }
  std::string_view filesystem() const { return Str(v_->filesystem); }
  std::string_view naa() const { return Str(v_->naa); }
  std::string_view serial() const { return Str(v_->serial); }
  std::span<const snapset_designator> designators() const {
    if (!v_->designators) return {};
    return {v_->designators, v_->designator_count};
  }
  const snapset_volume& raw() const { return *v_; }

 private:
  static std::string_view Str(const char* s) { return s ? std::string_view(s) : std::string_view(); }
  const snapset_volume* v_;
};

// Base class of a provider. Override the events you need; the defaults of
// the optional ones succeed (for the set events) or return NotImplemented.
class Provider {
 public:
  explicit Provider(const Host& host) : host_(host) {}
  virtual ~Provider() = default;
  Provider(const Provider&) = delete;
  Provider& operator=(const Provider&) = delete;

  // Called once after construction with the registration's "config" object
  // as JSON text. May do I/O.
  virtual Status Load(std::string_view config_json) {
    (void)config_json;
    return Status::Ok();
  }

  // OK if supported; VolumeNotSupported with the reason otherwise.
  virtual Status IsVolumeSupported(const Call& call, const VolumeRef& volume,
                                   uint32_t context) = 0;

  virtual Status BeginPrepareSnapshot(const Call& call, std::string_view set_id,
                                      std::string_view snapshot_id,
                                      const VolumeRef& volume,
                                      uint32_t context) = 0;
  virtual Status EndPrepareSnapshots(const Call&, std::string_view /*set_id*/) {
    return Status::Ok();
  }
  virtual Status PreCommitSnapshots(const Call&, std::string_view /*set_id*/) {
    return Status::Ok();
  }
  // Inside the commit window: no I/O to the held volumes, no blocking.
  virtual Status CommitSnapshots(const Call& call, std::string_view set_id) = 0;
  virtual Status PostCommitSnapshots(const Call&, std::string_view /*set_id*/) {
    return Status::Ok();
  }
  virtual Status PreFinalCommitSnapshots(const Call&, std::string_view /*set_id*/) {
    return Status::Ok();
  }
  virtual Status PostFinalCommitSnapshots(const Call&, std::string_view /*set_id*/) {
    return Status::Ok();
  }
  // Undo everything of the set. Called for sets this instance has seen and
  // not yet completed or aborted, and for sets it has never seen: after a
  // crash, the host's next start aborts the sets the dead process left
  // unfinished, and a provider that keeps state across processes must clean
  // up what an earlier instance prepared. For a set you know nothing of,
  // return OK. For a set that is complete on your side (an earlier process
  // completed it), return BadState: the host then deletes the snapshots it
  // never recorded. Never called twice for one set once it succeeded.
  virtual Status AbortSnapshots(const Call& call, std::string_view set_id) = 0;

  virtual Status DeleteSnapshot(const Call& call, std::string_view snapshot_id) = 0;
  virtual Status ListSnapshots(const Call& call, std::vector<SnapshotInfo>* out) = 0;
  // Default: found through ListSnapshots.
  virtual Status GetSnapshotProperties(const Call& call, std::string_view snapshot_id,
                                       SnapshotInfo* out) {
    std::vector<SnapshotInfo> all;
    Status s = ListSnapshots(call, &all);
    if (!s.ok()) return s;
    for (auto& info : all) {
      if (info.snapshot_id == snapshot_id) {
        *out = std::move(info);
        return Status::Ok();
      }
    }
    return Status::NotFound("no snapshot " + std::string(snapshot_id));
  }
  virtual Status ExposeSnapshot(const Call&, std::string_view /*snapshot_id*/,
                                std::string* /*exposed_as*/) {
    return Status::NotImplemented("this provider cannot expose snapshots");
  }
  virtual Status UnexposeSnapshot(const Call&, std::string_view /*snapshot_id*/) {
    return Status::NotImplemented("this provider cannot expose snapshots");
  }
  virtual Status RevertToSnapshot(const Call&, std::string_view /*snapshot_id*/) {
    return Status::NotImplemented("this provider cannot revert to a snapshot");
  }

  // Write holds for volumes only this provider can hold (provider.h
  // hold_writes). Override both to offer them: the SDK exports the pair only
  // for a class that overrides HoldWrites, so the host knows at load time.
  virtual Status HoldWrites(const Call&, const VolumeRef&) {
    return Status::NotImplemented("this provider cannot hold writes");
  }
  virtual Status ReleaseWrites(const Call&, const VolumeRef&) { return Status::Ok(); }
  // Planning (provider.h 1.1 can_hold_writes): can HoldWrites hold this
  // volume? OK, naming the hold with call.ExplainSupport("array-fence") (the
  // plan shows it; "write-gate" when you name none), or VolumeNotSupported
  // with why. Offered only by a class that overrides it; without it the
  // host takes every volume you take as held.
  virtual Status CanHoldWrites(const Call&, const VolumeRef&) { return Status::Ok(); }

  // Finding leftovers (provider.h 1.2 list_objects / remove_object): every
  // object you made for snapset besides snapshots -- groups, fences,
  // exposures, on everything you manage -- with the set or snapshot id its
  // name carries. Override both to offer them (the SDK exports the pair
  // only for a class that overrides ListObjects). RemoveObject gets an
  // object as ListObjects gave it; one already gone is OK.
  virtual Status ListObjects(const Call&, std::vector<ProviderObject>* /*out*/) {
    return Status::NotImplemented("this provider does not list its objects");
  }
  virtual Status RemoveObject(const Call&, const ProviderObject&) {
    return Status::NotImplemented("this provider does not remove its objects");
  }

  // Changed blocks (provider.h 1.3 changed_blocks): the byte ranges of
  // `snapshot_id` that may differ from `base_snapshot_id` (empty: that may
  // hold data), sorted and not overlapping, from `start_offset` on, at most
  // `max_ranges` (the SDK cuts a range beginning before start_offset and
  // drops any beyond max_ranges). Offered only by a class that overrides it.
  virtual Status ChangedBlocks(const Call&, std::string_view /*snapshot_id*/,
                               std::string_view /*base_snapshot_id*/, uint64_t /*start_offset*/,
                               uint32_t /*max_ranges*/, uint64_t* /*volume_size*/,
                               std::vector<ByteRange>* /*out*/) {
    return Status::NotImplemented("this provider does not report changed blocks");
  }

  // The set's state as the SDK tracks it (SNAPSET_STATE_IDLE if unknown).
  int32_t StateOf(std::string_view set_id) const {
    std::lock_guard<std::mutex> lock(states_mu_);
    auto it = states_.find(std::string(set_id));
    return it == states_.end() ? SNAPSET_STATE_IDLE : it->second;
  }

 protected:
  const Host& host() const { return host_; }

 private:
  template <typename P>
  friend struct detail_adapter;
  Host host_;
  mutable std::mutex states_mu_;
  std::map<std::string, int32_t, std::less<>> states_;
};

namespace detail {

inline const char* StateName(int32_t s) {
  switch (s) {
    case SNAPSET_STATE_IDLE: return "idle";
    case SNAPSET_STATE_PREPARING: return "preparing";
    case SNAPSET_STATE_PREPARED: return "prepared";
    case SNAPSET_STATE_PRECOMMITTED: return "pre-committed";
    case SNAPSET_STATE_COMMITTED: return "committed";
    case SNAPSET_STATE_POSTCOMMITTED: return "post-committed";
    case SNAPSET_STATE_COMPLETE: return "complete";
    case SNAPSET_STATE_ABORTED: return "aborted";
  }
  return "unknown";
}

inline void SetError(const snapset_host* host, snapset_call* call, const std::string& msg) {
  if (host && SNAPSET_HAS_MEMBER(host, snapset_host, set_error) && host->set_error)
    host->set_error(call, msg.c_str());
}

// Runs fn, turning a non-OK Status into its code + message and any exception
// into SNAPSET_E_INTERNAL. Nothing escapes.
template <typename Fn>
snapset_status Guard(const snapset_host* host, snapset_call* call, const char* op, Fn&& fn) noexcept {
  try {
    Status s = fn();
    if (s.ok()) return SNAPSET_OK;
    SetError(host, call, s.message());
    return s.code() == Code::kConfig ? SNAPSET_E_INVALID_ARGUMENT : snapset_status(s.code());
  } catch (const std::exception& e) {
    try {
      SetError(host, call, std::string(op) + ": provider threw an exception: " + e.what());
    } catch (...) {
    }
  } catch (...) {
    try {
      SetError(host, call, std::string(op) + ": provider threw a non-standard exception");
    } catch (...) {
    }
  }
  return SNAPSET_E_INTERNAL;
}

inline Status CheckFlags(const char* op, uint32_t flags, uint32_t known) {
  if ((flags & ~known) == 0) return Status::Ok();
  char buf[160];
  std::snprintf(buf, sizeof buf, "%s: unknown flag bits 0x%x (this provider knows 0x%x)",
                op, flags & ~known, known);
  return Status::InvalidArgument(buf);
}

inline Status CheckVolume(const char* op, const snapset_volume* v) {
  if (!v) return Status::InvalidArgument(std::string(op) + ": volume is NULL");
  if (!SNAPSET_HAS_MEMBER(v, snapset_volume, designators))
    return Status::InvalidArgument(std::string(op) + ": snapset_volume.struct_size too small");
  return Status::Ok();
}

inline Status CheckId(const char* op, const char* what, const char* id) {
  if (!id || !*id) return Status::InvalidArgument(std::string(op) + ": " + what + " is empty");
  return Status::Ok();
}

// Owns the provider object and the host table pointer for one registration.
struct Instance {
  const snapset_host* host;
  std::unique_ptr<Provider> provider;
};

inline Instance* From(snapset_provider* p) { return reinterpret_cast<Instance*>(p); }

inline void EmitProperties(const SnapshotInfo& info, snapset_properties_sink sink, void* cookie) {
  snapset_snapshot_properties p{};
  p.struct_size = sizeof p;
  p.state = info.state;
  p.snapshot_id = info.snapshot_id.c_str();
  p.set_id = info.set_id.c_str();
  p.original_volume = info.original_volume.c_str();
  p.provider_id = info.provider_id.c_str();
  p.creation_time_ns = info.creation_time_ns;
  p.attributes = info.attributes;
  p.exposed_as = info.exposed_as.empty() ? nullptr : info.exposed_as.c_str();
  p.snapshot_device = info.snapshot_device.empty() ? nullptr : info.snapshot_device.c_str();
  p.invalid_reason = info.invalid_reason.empty() ? nullptr : info.invalid_reason.c_str();
  sink(cookie, &p);
}

}  // namespace detail

// The adapter between the C ops table and a Provider subclass P. P must be
// constructible from (const snapset::Host&).
template <typename P>
struct detail_adapter {
  using I = detail::Instance;

  // Moves a set from one of `from` states to `to` around the provider's
  // method, so that an event out of order never reaches the provider, and a
  // set aborted while the method ran stays aborted.
  template <typename Fn>
  static Status Transition(Provider& p, const char* op, const char* set_id,
                           std::initializer_list<int32_t> from, int32_t to, Fn&& fn) {
    SNAPSET_RETURN_IF_ERROR(detail::CheckId(op, "set id", set_id));
    int32_t before;
    {
      std::lock_guard<std::mutex> lock(p.states_mu_);
      auto it = p.states_.find(set_id);
      before = it == p.states_.end() ? SNAPSET_STATE_IDLE : it->second;
    }
    bool allowed = false;
    for (int32_t s : from) allowed |= (s == before);
    if (!allowed)
      return Status::BadState(std::string(op) + " is out of order: set " + set_id + " is " +
                              detail::StateName(before));
    Status s = fn();
    if (!s.ok()) return s;
    std::lock_guard<std::mutex> lock(p.states_mu_);
    auto it = p.states_.find(set_id);
    int32_t now = it == p.states_.end() ? SNAPSET_STATE_IDLE : it->second;
    if (now != before) return s;  // aborted meanwhile: it stays aborted
    // A complete set stays recorded (one small entry per set) so that a late
    // abort or a repeated event gets BAD_STATE rather than a silent OK.
    p.states_[set_id] = to;
    return s;
  }

  static snapset_status on_load(const snapset_host* host, snapset_call* call, uint32_t flags,
                                const char* config_json, snapset_provider** out) {
    return detail::Guard(host, call, "on_load", [&]() -> Status {
      SNAPSET_RETURN_IF_ERROR(detail::CheckFlags("on_load", flags, 0));
      if (!out) return Status::InvalidArgument("on_load: out_instance is NULL");
      auto inst = std::make_unique<I>();
      inst->host = host;
      inst->provider = std::make_unique<P>(Host(host));
      SNAPSET_RETURN_IF_ERROR(inst->provider->Load(config_json ? config_json : "{}"));
      *out = reinterpret_cast<snapset_provider*>(inst.release());
      return Status::Ok();
    });
  }

  static void on_unload(snapset_provider* p, uint32_t) {
    try {
      delete detail::From(p);
    } catch (...) {
    }
  }

  static snapset_status is_volume_supported(snapset_provider* p, snapset_call* call,
                                            uint32_t flags, const snapset_volume* v,
                                            uint32_t context) {
    I* in = detail::From(p);
    return detail::Guard(in->host, call, "is_volume_supported", [&]() -> Status {
      SNAPSET_RETURN_IF_ERROR(detail::CheckFlags("is_volume_supported", flags, 0));
      SNAPSET_RETURN_IF_ERROR(detail::CheckVolume("is_volume_supported", v));
      return in->provider->IsVolumeSupported(Call(in->host, call), VolumeRef(v), context);
    });
  }

  static snapset_status begin_prepare_snapshot(snapset_provider* p, snapset_call* call,
                                               uint32_t flags, const char* set_id,
                                               const char* snapshot_id,
                                               const snapset_volume* v, uint32_t context) {
    I* in = detail::From(p);
    const char* op = "begin_prepare_snapshot";
    return detail::Guard(in->host, call, op, [&]() -> Status {
      SNAPSET_RETURN_IF_ERROR(detail::CheckFlags(op, flags, 0));
      SNAPSET_RETURN_IF_ERROR(detail::CheckVolume(op, v));
      SNAPSET_RETURN_IF_ERROR(detail::CheckId(op, "snapshot id", snapshot_id));
      return Transition(*in->provider, op, set_id,
                        {SNAPSET_STATE_IDLE, SNAPSET_STATE_PREPARING}, SNAPSET_STATE_PREPARING,
                        [&] {
                          return in->provider->BeginPrepareSnapshot(
                              Call(in->host, call), set_id, snapshot_id, VolumeRef(v), context);
                        });
    });
  }

  // The set events that differ only in method and states.
  template <Status (Provider::*Method)(const Call&, std::string_view), int32_t From,
            int32_t To>
  static snapset_status set_event(const char* op, snapset_provider* p, snapset_call* call,
                                  uint32_t flags, const char* set_id) {
    I* in = detail::From(p);
    return detail::Guard(in->host, call, op, [&]() -> Status {
      SNAPSET_RETURN_IF_ERROR(detail::CheckFlags(op, flags, 0));
      return Transition(*in->provider, op, set_id, {From}, To, [&] {
        return (in->provider.get()->*Method)(Call(in->host, call), set_id);
      });
    });
  }

  static snapset_status end_prepare(snapset_provider* p, snapset_call* c, uint32_t f,
                                    const char* s) {
    return set_event<&Provider::EndPrepareSnapshots, SNAPSET_STATE_PREPARING,
                     SNAPSET_STATE_PREPARED>("end_prepare_snapshots", p, c, f, s);
  }
  static snapset_status pre_commit(snapset_provider* p, snapset_call* c, uint32_t f,
                                   const char* s) {
    return set_event<&Provider::PreCommitSnapshots, SNAPSET_STATE_PREPARED,
                     SNAPSET_STATE_PRECOMMITTED>("pre_commit_snapshots", p, c, f, s);
  }
  static snapset_status commit(snapset_provider* p, snapset_call* c, uint32_t f,
                               const char* s) {
    return set_event<&Provider::CommitSnapshots, SNAPSET_STATE_PRECOMMITTED,
                     SNAPSET_STATE_COMMITTED>("commit_snapshots", p, c, f, s);
  }
  static snapset_status post_commit(snapset_provider* p, snapset_call* c, uint32_t f,
                                    const char* s) {
    return set_event<&Provider::PostCommitSnapshots, SNAPSET_STATE_COMMITTED,
                     SNAPSET_STATE_POSTCOMMITTED>("post_commit_snapshots", p, c, f, s);
  }
  static snapset_status pre_final(snapset_provider* p, snapset_call* c, uint32_t f,
                                  const char* s) {
    return set_event<&Provider::PreFinalCommitSnapshots, SNAPSET_STATE_POSTCOMMITTED,
                     SNAPSET_STATE_POSTCOMMITTED>("pre_final_commit_snapshots", p, c, f, s);
  }
  static snapset_status post_final(snapset_provider* p, snapset_call* c, uint32_t f,
                                   const char* s) {
    return set_event<&Provider::PostFinalCommitSnapshots, SNAPSET_STATE_POSTCOMMITTED,
                     SNAPSET_STATE_COMPLETE>("post_final_commit_snapshots", p, c, f, s);
  }

  static snapset_status abort(snapset_provider* p, snapset_call* call, uint32_t flags,
                              const char* set_id) {
    I* in = detail::From(p);
    const char* op = "abort_snapshots";
    return detail::Guard(in->host, call, op, [&]() -> Status {
      SNAPSET_RETURN_IF_ERROR(detail::CheckFlags(op, flags, 0));
      SNAPSET_RETURN_IF_ERROR(detail::CheckId(op, "set id", set_id));
      Provider& prov = *in->provider;
      int32_t before;
      {
        std::lock_guard<std::mutex> lock(prov.states_mu_);
        auto it = prov.states_.find(set_id);
        before = it == prov.states_.end() ? SNAPSET_STATE_IDLE : it->second;
        // Already aborted here: nothing left to undo.
        if (before == SNAPSET_STATE_ABORTED) return Status::Ok();
        if (before == SNAPSET_STATE_COMPLETE)
          return Status::BadState(std::string(op) + ": set " + set_id +
                                  " is complete; delete its snapshots instead");
        prov.states_[set_id] = SNAPSET_STATE_ABORTED;
      }
      // A set never seen here (Idle) still reaches the provider: this
      // instance's memory starts with its process, but a provider's
      // snapshots may outlive it, and the host's recovery after a crash
      // aborts sets the dead process prepared. Only the provider knows
      // whether anything of the set is left; one that knows nothing of it
      // answers OK, so abort stays idempotent.
      //
      // Once aborted, the set stays so: a late event (a begin_prepare or
      // commit still running) finds it aborted and a repeated abort is a
      // no-op; a new set id starts afresh. If the abort itself failed, the
      // old state comes back so that the host's retry reaches the provider
      // again.
      Status s = prov.AbortSnapshots(Call(in->host, call), set_id);
      if (!s.ok()) {
        std::lock_guard<std::mutex> lock(prov.states_mu_);
        if (before == SNAPSET_STATE_IDLE)
          prov.states_.erase(set_id);
        else
          prov.states_[set_id] = before;
      }
      return s;
    });
  }

  static snapset_status delete_snapshot(snapset_provider* p, snapset_call* call,
                                        uint32_t flags, const char* id) {
    I* in = detail::From(p);
    return detail::Guard(in->host, call, "delete_snapshot", [&]() -> Status {
      SNAPSET_RETURN_IF_ERROR(detail::CheckFlags("delete_snapshot", flags, 0));
      SNAPSET_RETURN_IF_ERROR(detail::CheckId("delete_snapshot", "snapshot id", id));
      return in->provider->DeleteSnapshot(Call(in->host, call), id);
    });
  }

  static snapset_status list_snapshots(snapset_provider* p, snapset_call* call,
                                       uint32_t flags, snapset_properties_sink sink,
                                       void* cookie) {
    I* in = detail::From(p);
    return detail::Guard(in->host, call, "list_snapshots", [&]() -> Status {
      SNAPSET_RETURN_IF_ERROR(detail::CheckFlags("list_snapshots", flags, 0));
      if (!sink) return Status::InvalidArgument("list_snapshots: sink is NULL");
      std::vector<SnapshotInfo> all;
      SNAPSET_RETURN_IF_ERROR(in->provider->ListSnapshots(Call(in->host, call), &all));
      for (const auto& info : all) detail::EmitProperties(info, sink, cookie);
      return Status::Ok();
    });
  }

  static snapset_status get_properties(snapset_provider* p, snapset_call* call, uint32_t flags,
                                       const char* id, snapset_properties_sink sink,
                                       void* cookie) {
    I* in = detail::From(p);
    const char* op = "get_snapshot_properties";
    return detail::Guard(in->host, call, op, [&]() -> Status {
      SNAPSET_RETURN_IF_ERROR(detail::CheckFlags(op, flags, 0));
      SNAPSET_RETURN_IF_ERROR(detail::CheckId(op, "snapshot id", id));
      if (!sink) return Status::InvalidArgument(std::string(op) + ": sink is NULL");
      SnapshotInfo info;
      SNAPSET_RETURN_IF_ERROR(in->provider->GetSnapshotProperties(Call(in->host, call), id, &info));
      detail::EmitProperties(info, sink, cookie);
      return Status::Ok();
    });
  }

  static snapset_status expose(snapset_provider* p, snapset_call* call, uint32_t flags,
                               const char* id, snapset_string_sink sink, void* cookie) {
    I* in = detail::From(p);
    return detail::Guard(in->host, call, "expose_snapshot", [&]() -> Status {
      SNAPSET_RETURN_IF_ERROR(detail::CheckFlags("expose_snapshot", flags, 0));
      SNAPSET_RETURN_IF_ERROR(detail::CheckId("expose_snapshot", "snapshot id", id));
      if (!sink) return Status::InvalidArgument("expose_snapshot: sink is NULL");
      std::string where;
      SNAPSET_RETURN_IF_ERROR(in->provider->ExposeSnapshot(Call(in->host, call), id, &where));
      sink(cookie, where.c_str());
      return Status::Ok();
    });
  }

  static snapset_status unexpose(snapset_provider* p, snapset_call* call, uint32_t flags,
                                 const char* id) {
    I* in = detail::From(p);
    return detail::Guard(in->host, call, "unexpose_snapshot", [&]() -> Status {
      SNAPSET_RETURN_IF_ERROR(detail::CheckFlags("unexpose_snapshot", flags, 0));
      SNAPSET_RETURN_IF_ERROR(detail::CheckId("unexpose_snapshot", "snapshot id", id));
      return in->provider->UnexposeSnapshot(Call(in->host, call), id);
    });
  }

  static snapset_status revert(snapset_provider* p, snapset_call* call, uint32_t flags,
                               const char* id) {
    I* in = detail::From(p);
    return detail::Guard(in->host, call, "revert_to_snapshot", [&]() -> Status {
      SNAPSET_RETURN_IF_ERROR(detail::CheckFlags("revert_to_snapshot", flags, 0));
      SNAPSET_RETURN_IF_ERROR(detail::CheckId("revert_to_snapshot", "snapshot id", id));
      return in->provider->RevertToSnapshot(Call(in->host, call), id);
    });
  }

  template <Status (Provider::*Method)(const Call&, const VolumeRef&)>
  static snapset_status volume_event(const char* op, snapset_provider* p, snapset_call* call,
                                     uint32_t flags, const snapset_volume* v) {
    I* in = detail::From(p);
    return detail::Guard(in->host, call, op, [&]() -> Status {
      SNAPSET_RETURN_IF_ERROR(detail::CheckFlags(op, flags, 0));
      SNAPSET_RETURN_IF_ERROR(detail::CheckVolume(op, v));
      return (in->provider.get()->*Method)(Call(in->host, call), VolumeRef(v));
    });
  }
  static snapset_status hold_writes(snapset_provider* p, snapset_call* c, uint32_t f,
                                    const snapset_volume* v) {
    return volume_event<&Provider::HoldWrites>("hold_writes", p, c, f, v);
  }
  static snapset_status release_writes(snapset_provider* p, snapset_call* c, uint32_t f,
                                       const snapset_volume* v) {
    return volume_event<&Provider::ReleaseWrites>("release_writes", p, c, f, v);
  }
  static snapset_status can_hold_writes(snapset_provider* p, snapset_call* c, uint32_t f,
                                        const snapset_volume* v) {
    return volume_event<&Provider::CanHoldWrites>("can_hold_writes", p, c, f, v);
  }
  static snapset_status list_objects(snapset_provider* p, snapset_call* call, uint32_t flags,
                                     snapset_object_sink sink, void* cookie) {
    I* in = detail::From(p);
    return detail::Guard(in->host, call, "list_objects", [&]() -> Status {
      SNAPSET_RETURN_IF_ERROR(detail::CheckFlags("list_objects", flags, 0));
      if (!sink) return Status::InvalidArgument("list_objects: sink is NULL");
      std::vector<ProviderObject> all;
      SNAPSET_RETURN_IF_ERROR(in->provider->ListObjects(Call(in->host, call), &all));
      for (const ProviderObject& o : all) {
        const snapset_provider_object c = ProviderObjectToAbi(o);
        sink(cookie, &c);
      }
      return Status::Ok();
    });
  }

  static snapset_status remove_object(snapset_provider* p, snapset_call* call, uint32_t flags,
                                      const snapset_provider_object* object) {
    I* in = detail::From(p);
    return detail::Guard(in->host, call, "remove_object", [&]() -> Status {
      SNAPSET_RETURN_IF_ERROR(detail::CheckFlags("remove_object", flags, 0));
      if (!object || !SNAPSET_HAS_MEMBER(object, snapset_provider_object, snapshot_id))
        return Status::InvalidArgument("remove_object: object is NULL or too small");
      return in->provider->RemoveObject(Call(in->host, call), ProviderObjectFromAbi(*object));
    });
  }

  static snapset_status changed_blocks(snapset_provider* p, snapset_call* call, uint32_t flags,
                                       const char* id, const char* base, uint64_t start,
                                       uint32_t max_ranges, uint64_t* volume_size,
                                       snapset_range_sink sink, void* cookie) {
    I* in = detail::From(p);
    return detail::Guard(in->host, call, "changed_blocks", [&]() -> Status {
      SNAPSET_RETURN_IF_ERROR(detail::CheckFlags("changed_blocks", flags, 0));
      SNAPSET_RETURN_IF_ERROR(detail::CheckId("changed_blocks", "snapshot id", id));
      if (base)
        SNAPSET_RETURN_IF_ERROR(detail::CheckId("changed_blocks", "base snapshot id", base));
      if (!sink || !volume_size)
        return Status::InvalidArgument("changed_blocks: sink or volume_size is NULL");
      if (max_ranges == 0) return Status::InvalidArgument("changed_blocks: max_ranges is 0");
      std::vector<ByteRange> ranges;
      uint64_t size = 0;
      SNAPSET_RETURN_IF_ERROR(in->provider->ChangedBlocks(
          Call(in->host, call), id, base ? std::string_view(base) : std::string_view(), start,
          max_ranges, &size, &ranges));
      *volume_size = size;
      uint32_t given = 0;
      for (const ByteRange& r : ranges) {
        uint64_t offset = r.offset, end = r.offset + r.length;
        if (end <= start || given == max_ranges) continue;
        if (offset < start) offset = start;
        sink(cookie, offset, end - offset);
        ++given;
      }
      return Status::Ok();
    });
  }

  static constexpr bool kChangedBlocks =
      !std::is_same_v<decltype(&P::ChangedBlocks),
                      Status (Provider::*)(const Call&, std::string_view, std::string_view,
                                           uint64_t, uint32_t, uint64_t*, std::vector<ByteRange>*)>;

  static constexpr bool kListsObjects =
      !std::is_same_v<decltype(&P::ListObjects),
                      Status (Provider::*)(const Call&, std::vector<ProviderObject>*)>;

  static constexpr bool kCanHoldWrites =
      !std::is_same_v<decltype(&P::CanHoldWrites),
                      Status (Provider::*)(const Call&, const VolumeRef&)>;
  // True when P overrides HoldWrites: &P::HoldWrites then names P's member.
  static constexpr bool kHoldsWrites =
      !std::is_same_v<decltype(&P::HoldWrites),
                      Status (Provider::*)(const Call&, const VolumeRef&)>;

  static const snapset_provider_ops* Ops() {
    static const snapset_provider_ops ops = {
        .abi_version = SNAPSET_ABI_VERSION,
        .struct_size = sizeof(snapset_provider_ops),
        .on_load = &on_load,
        .on_unload = &on_unload,
        .is_volume_supported = &is_volume_supported,
        .begin_prepare_snapshot = &begin_prepare_snapshot,
        .end_prepare_snapshots = &end_prepare,
        .pre_commit_snapshots = &pre_commit,
        .commit_snapshots = &commit,
        .post_commit_snapshots = &post_commit,
        .pre_final_commit_snapshots = &pre_final,
        .post_final_commit_snapshots = &post_final,
        .abort_snapshots = &abort,
        .delete_snapshot = &delete_snapshot,
        .list_snapshots = &list_snapshots,
        .get_snapshot_properties = &get_properties,
        .expose_snapshot = &expose,
        .unexpose_snapshot = &unexpose,
        .revert_to_snapshot = &revert,
        .hold_writes = kHoldsWrites ? &hold_writes : nullptr,
        .release_writes = kHoldsWrites ? &release_writes : nullptr,
        .can_hold_writes = kCanHoldWrites ? &can_hold_writes : nullptr,
        .list_objects = kListsObjects ? &list_objects : nullptr,
        .remove_object = kListsObjects ? &remove_object : nullptr,
        .changed_blocks = kChangedBlocks ? &changed_blocks : nullptr,
    };
    return &ops;
  }
};

}  // namespace snapset

// Exports ProviderClass as this library's provider. Use once per library.
#define SNAPSET_PROVIDER(ProviderClass)                                        \
  extern "C" SNAPSET_EXPORT const snapset_provider_ops* snapset_provider_entry( \
      void) {                                                                   \
    return ::snapset::detail_adapter<ProviderClass>::Ops();                     \
  }

#endif  // SNAPSET_PROVIDER_HPP
