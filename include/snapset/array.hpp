// SPDX-License-Identifier: Apache-2.0
// snapset array-driver SDK for C++: write an array driver as one class,
// export it with one macro.
//
//   class MyArray : public snapset::ArrayDriver {
//    public:
//     using ArrayDriver::ArrayDriver;
//     snapset::Status Open(std::string_view config_json) override;
//     snapset::Result<std::vector<snapset::ArrayVolume>> Inventory(
//         const snapset::ArrayCall& call) override;
//     ...
//   };
//   SNAPSET_ARRAY_DRIVER(MyArray)
//
// What this header does for you:
//   - fills array.h's ops table and exports snapset_array_driver_entry;
//   - rejects unknown flag bits with SNAPSET_E_INVALID_ARGUMENT;
//   - turns C arguments into C++ values and C++ results into sink calls;
//   - catches every exception and returns SNAPSET_E_INTERNAL with its text,
//     so none crosses the C ABI;
//   - offers the fence operations only when the class overrides StartFence
//     (override StartFence, LiftFence and Fences together), and revert only
//     when it overrides Revert.
//
// The same ArrayDriver interface is what the iSCSI provider sees of a
// loaded driver, so a driver's methods mean exactly what array.h says of
// the operation they implement; read the rules at the top of array.h.
//
// Thread-safety: the host never calls one object from two threads at once.
// Header-only: a driver links nothing of snapset.
#ifndef SNAPSET_ARRAY_HPP
#define SNAPSET_ARRAY_HPP

#include <snapset/array.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <memory>
#include <snapset/status.hpp>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace snapset {

// How one call may spend its time (array.h snapset_array_call).
struct ArrayCall {
  // Nothing is sent, and nothing is waited for, past this instant.
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  // May resend after 429 / 503 and after a transport failure of a request
  // that changes nothing (SNAPSET_ARRAY_CALL_RETRY).
  bool retry = true;
  // Inside the commit window (SNAPSET_ARRAY_CALL_IN_WINDOW): one request
  // and its job's polls, no blocking logging; a deadline passed is
  // HoldWritesTimeout.
  bool in_window = false;

  bool expired() const { return std::chrono::steady_clock::now() >= deadline; }
  // The status for "the deadline passed before the array answered", by the
  // rule of array.h: HoldWritesTimeout inside the window, else Unavailable.
  Status DeadlinePassed(std::string message) const {
    return in_window ? Status::HoldWritesTimeout(std::move(message))
                     : Status::Unavailable(std::move(message));
  }
};

// A volume or snapshot as the array lists it.
struct ArrayVolume {
  std::string id;  // the array's handle for it
  std::string name;
  std::string naa;     // lower-case hex as VPD 0x83 reports it
  std::string serial;  // VPD 0x80, trimmed; "" if none
  uint64_t capacity_bytes = 0;
  uint32_t block_size = 0;
  std::string source_id;   // a snapshot's source volume id; "" for a volume
  int64_t created_ns = 0;  // CLOCK_REALTIME; 0 if unknown
  bool is_snapshot() const { return !source_id.empty(); }
};

struct ArrayGroup {
  std::string id;
  std::string name;
  std::vector<std::string> member_ids;  // in the array's order
};

struct SnapshotRequest {
  ArrayGroup group;
  std::vector<std::string> names;  // empty, or one per member in member order
  std::string fence_id;            // "" unless taken under a fence
};

struct ExposeRequest {
  std::vector<std::string> volume_ids;  // mapped as LUNs in this order
  std::string initiator_iqn;
  std::string chap_user;  // empty: no CHAP
  std::string chap_password;
  bool read_only = true;
  std::string name;
};

struct ArrayExposure {
  std::string id;
  std::string name;
  std::string target_iqn;
  std::string portal;  // host:port
  std::string initiator_iqn;
  std::vector<std::string> volume_ids;  // one per LUN
  std::vector<int> luns;                // volume_ids[i] is LUN luns[i]
  // iscsi://portal/target_iqn/luns[i], or "" when i is out of range.
  std::string Url(size_t i) const {
    if (i >= luns.size()) return "";
    return "iscsi://" + portal + "/" + target_iqn + "/" + std::to_string(luns[i]);
  }
};

struct FenceRequest {
  std::vector<std::string> volume_ids;
  std::string name;
  std::chrono::milliseconds timeout{0};  // the array lifts the fence after this
  // The same end as a time (CLOCK_REALTIME ns; 0: not given, as from a
  // host of array ABI 1.0): no write may be held past it, also when the
  // request reaches the array late (array.h expires_realtime_ns).
  int64_t expires_realtime_ns = 0;
};

struct ArrayFence {
  std::string id;
  std::string name;
  std::vector<std::string> volume_ids;
  int64_t remaining_ms = -1;  // -1: unknown
};

struct ArrayCounters {
  uint64_t requests = 0;  // log-ins and polls included
  uint64_t logins = 0;
};

// The host's services (array.h snapset_array_host). Cheap to copy.
class ArrayHost {
 public:
  explicit ArrayHost(const snapset_array_host* host = nullptr) : host_(host) {}
  // Never blocks. Inside the window, log nothing that matters: it may be
  // dropped.
  void Log(int32_t level, std::string_view message) const {
    if (!host_ || !SNAPSET_HAS_MEMBER(host_, snapset_array_host, log) || !host_->log) return;
    std::string text(message);
    host_->log(host_->context, level, text.c_str());
  }
  void Warning(std::string_view m) const { Log(SNAPSET_LOG_WARNING, m); }
  void Info(std::string_view m) const { Log(SNAPSET_LOG_INFO, m); }
  void Debug(std::string_view m) const { Log(SNAPSET_LOG_DEBUG, m); }
  const snapset_array_host* raw() const { return host_; }

 private:
  const snapset_array_host* host_;
};

// One array, as a driver sees it and as the iSCSI provider uses it. The
// optional operations' defaults return NotImplemented.
class ArrayDriver {
 public:
  explicit ArrayDriver(const ArrayHost& host = ArrayHost()) : host_(host) {}
  virtual ~ArrayDriver() = default;
  ArrayDriver(const ArrayDriver&) = delete;
  ArrayDriver& operator=(const ArrayDriver&) = delete;

  // The array's config (array.h open). Check all of it here.
  virtual Status Open(std::string_view config_json) {
    (void)config_json;
    return Status::Ok();
  }
  virtual Status Warm(const ArrayCall&) { return Status::Ok(); }

  virtual Result<std::vector<ArrayVolume>> Inventory(const ArrayCall& call) = 0;
  virtual Result<std::vector<ArrayGroup>> Groups(const ArrayCall& call) = 0;
  virtual Result<ArrayGroup> CreateGroup(const std::string& name,
                                         const std::vector<std::string>& member_ids,
                                         const ArrayCall& call) = 0;
  virtual Status DeleteGroup(const std::string& group_id, const ArrayCall& call) = 0;
  // The commit. The snapshots in the group's member order.
  virtual Result<std::vector<ArrayVolume>> SnapshotGroup(const SnapshotRequest& request,
                                                         const ArrayCall& call) = 0;
  virtual Status DeleteSnapshot(const std::string& snapshot_id, const ArrayCall& call) = 0;
  virtual Result<ArrayExposure> Expose(const ExposeRequest& request, const ArrayCall& call) = 0;
  virtual Status Unexpose(const std::string& exposure_id, const ArrayCall& call) = 0;
  virtual Result<std::vector<ArrayExposure>> Exposures(const ArrayCall& call) = 0;
  virtual Status Settle(const ArrayCall& call) = 0;

  virtual Status Revert(const std::string& volume_id, const std::string& snapshot_id,
                        const ArrayCall&) {
    (void)volume_id, (void)snapshot_id;
    return Status::NotImplemented("this array driver cannot revert a volume");
  }

  // Fences (optional, all three together).
  virtual Result<ArrayFence> StartFence(const FenceRequest&, const ArrayCall&) {
    return Status::NotImplemented("this array driver has no write fences");
  }
  virtual Status LiftFence(const std::string& fence_id, const ArrayCall&) {
    (void)fence_id;
    return Status::NotImplemented("this array driver has no write fences");
  }
  virtual Result<std::vector<ArrayFence>> Fences(const ArrayCall&) {
    return Status::NotImplemented("this array driver has no write fences");
  }
  // Whether StartFence and friends work. A driver built on this header gets
  // it right without overriding; the host's view of a loaded driver
  // overrides it.
  virtual bool offers_fences() const { return false; }
  virtual bool offers_revert() const { return false; }

  virtual ArrayCounters counters() const { return {}; }

 protected:
  const ArrayHost& host() const { return host_; }

 private:
  ArrayHost host_;
};

namespace array_detail {

inline std::string_view Str(const char* s) { return s ? std::string_view(s) : std::string_view(); }

inline ArrayCall CallFromAbi(const snapset_array_call* c) {
  ArrayCall call;
  if (!c) return call;
  call.retry = (c->options & SNAPSET_ARRAY_CALL_RETRY) != 0;
  call.in_window = (c->options & SNAPSET_ARRAY_CALL_IN_WINDOW) != 0;
  if (c->deadline_ns != INT64_MAX)
    call.deadline = std::chrono::steady_clock::time_point(std::chrono::nanoseconds(c->deadline_ns));
  return call;
}

inline std::vector<std::string> Strings(const char* const* v, uint32_t n) {
  std::vector<std::string> out;
  if (!v) return out;
  out.reserve(n);
  for (uint32_t i = 0; i < n; ++i) out.emplace_back(Str(v[i]));
  return out;
}

// NUL-terminated pointers into `v`, valid while `v` lives.
inline std::vector<const char*> Pointers(const std::vector<std::string>& v) {
  std::vector<const char*> out;
  out.reserve(v.size());
  for (const std::string& s : v) out.push_back(s.c_str());
  return out;
}

inline const char* OrNull(const std::string& s) { return s.empty() ? nullptr : s.c_str(); }

inline void SendVolume(snapset_array_volume_sink sink, void* cookie, const ArrayVolume& v) {
  snapset_array_volume c{};
  c.struct_size = sizeof c;
  c.block_size = v.block_size;
  c.id = v.id.c_str();
  c.name = v.name.c_str();
  c.naa = v.naa.c_str();
  c.serial = OrNull(v.serial);
  c.capacity_bytes = v.capacity_bytes;
  c.source_id = OrNull(v.source_id);
  c.created_ns = v.created_ns;
  sink(cookie, &c);
}

inline void SendGroup(snapset_array_group_sink sink, void* cookie, const ArrayGroup& g) {
  std::vector<const char*> members = Pointers(g.member_ids);
  snapset_array_group c{};
  c.struct_size = sizeof c;
  c.member_count = uint32_t(members.size());
  c.id = g.id.c_str();
  c.name = g.name.c_str();
  c.member_ids = members.data();
  sink(cookie, &c);
}

inline void SendExposure(snapset_array_exposure_sink sink, void* cookie, const ArrayExposure& e) {
  std::vector<const char*> ids = Pointers(e.volume_ids);
  std::vector<int32_t> luns(e.luns.begin(), e.luns.end());
  luns.resize(ids.size(), -1);
  snapset_array_exposure c{};
  c.struct_size = sizeof c;
  c.volume_count = uint32_t(ids.size());
  c.id = e.id.c_str();
  c.name = e.name.c_str();
  c.target_iqn = e.target_iqn.c_str();
  c.portal = e.portal.c_str();
  c.initiator_iqn = OrNull(e.initiator_iqn);
  c.volume_ids = ids.data();
  c.luns = luns.data();
  sink(cookie, &c);
}

inline void SendFence(snapset_array_fence_sink sink, void* cookie, const ArrayFence& f) {
  std::vector<const char*> ids = Pointers(f.volume_ids);
  snapset_array_fence c{};
  c.struct_size = sizeof c;
  c.volume_count = uint32_t(ids.size());
  c.id = f.id.c_str();
  c.name = f.name.c_str();
  c.volume_ids = ids.data();
  c.remaining_ms = f.remaining_ms;
  sink(cookie, &c);
}

// One open instance: the driver object and the host table it was given.
struct Instance {
  const snapset_array_host* host;
  std::unique_ptr<ArrayDriver> driver;
};

inline void SetError(const snapset_array_host* host, const snapset_array_call* call,
                     const std::string& message) {
  if (host && SNAPSET_HAS_MEMBER(host, snapset_array_host, set_error) && host->set_error)
    host->set_error(call, message.c_str());
}

// Runs fn, turning a non-OK Status into its code and message and any
// exception into SNAPSET_E_INTERNAL. Nothing escapes.
template <typename Fn>
snapset_status Guard(const snapset_array_host* host, const snapset_array_call* call, const char* op,
                     Fn&& fn) noexcept {
  try {
    Status s = fn();
    if (s.ok()) return SNAPSET_OK;
    SetError(host, call, s.message());
    return s.code() == Code::kConfig ? SNAPSET_E_INVALID_ARGUMENT : snapset_status(s.code());
  } catch (const std::exception& e) {
    try {
      SetError(host, call, std::string(op) + ": array driver threw an exception: " + e.what());
    } catch (...) {
    }
  } catch (...) {
    try {
      SetError(host, call, std::string(op) + ": array driver threw a non-standard exception");
    } catch (...) {
    }
  }
  return SNAPSET_E_INTERNAL;
}

inline Status CheckFlags(const char* op, uint32_t flags) {
  if (flags == 0) return Status::Ok();
  char buf[160];
  std::snprintf(buf, sizeof buf, "%s: unknown flag bits 0x%x (array ABI 1.0 defines none)", op,
                flags);
  return Status::InvalidArgument(buf);
}

inline Status NeedArg(const char* op, const void* p, const char* what) {
  if (p) return Status::Ok();
  return Status::InvalidArgument(std::string(op) + ": " + what + " is NULL");
}

inline Status CheckStruct(const char* op, const void* p, uint32_t struct_size, size_t known,
                          const char* what) {
  if (!p) return Status::InvalidArgument(std::string(op) + ": " + what + " is NULL");
  // A host of ABI 1.0 knows every member of 1.0: anything smaller is not a
  // host's struct at all.
  if (struct_size < known)
    return Status::InvalidArgument(std::string(op) + ": " + what + " has struct_size " +
                                   std::to_string(struct_size) + ", smaller than ABI 1.0's " +
                                   std::to_string(known));
  return Status::Ok();
}

template <typename D>
struct Adapter {
  static_assert(std::is_base_of_v<ArrayDriver, D>, "D must derive from snapset::ArrayDriver");

  static ArrayDriver& Of(snapset_array* a) { return *reinterpret_cast<Instance*>(a)->driver; }
  static const snapset_array_host* HostOf(snapset_array* a) {
    return a ? reinterpret_cast<Instance*>(a)->host : nullptr;
  }

  // Runs fn(driver, call) for an instance, after the common checks.
  template <typename Fn>
  static snapset_status Run(const char* op, snapset_array* a, const snapset_array_call* c,
                            uint32_t flags, Fn&& fn) noexcept {
    return Guard(HostOf(a), c, op, [&]() -> Status {
      if (Status s = NeedArg(op, a, "the instance"); !s.ok()) return s;
      if (Status s =
              CheckStruct(op, c, c ? c->struct_size : 0, sizeof(snapset_array_call), "the call");
          !s.ok())
        return s;
      if (Status s = CheckFlags(op, flags); !s.ok()) return s;
      return fn(Of(a), CallFromAbi(c));
    });
  }

  static snapset_status open(const snapset_array_host* host, const snapset_array_call* call,
                             uint32_t flags, const char* config_json, snapset_array** out) {
    return Guard(host, call, "open", [&]() -> Status {
      if (Status s = NeedArg("open", out, "out"); !s.ok()) return s;
      *out = nullptr;
      if (Status s = CheckFlags("open", flags); !s.ok()) return s;
      auto instance = std::make_unique<Instance>();
      instance->host = host;
      instance->driver = std::make_unique<D>(ArrayHost(host));
      Status s = instance->driver->Open(config_json ? config_json : "{}");
      if (!s.ok()) return s;
      *out = reinterpret_cast<snapset_array*>(instance.release());
      return Status::Ok();
    });
  }
  static void close(snapset_array* a, uint32_t) {
    try {
      delete reinterpret_cast<Instance*>(a);
    } catch (...) {
    }
  }
  static snapset_status warm(snapset_array* a, const snapset_array_call* c, uint32_t f) {
    return Run("warm", a, c, f, [](ArrayDriver& d, const ArrayCall& call) { return d.Warm(call); });
  }
  static snapset_status list_volumes(snapset_array* a, const snapset_array_call* c, uint32_t f,
                                     snapset_array_volume_sink sink, void* cookie) {
    return Run("list_volumes", a, c, f, [&](ArrayDriver& d, const ArrayCall& call) -> Status {
      if (Status s = NeedArg("list_volumes", (const void*)sink, "sink"); !s.ok()) return s;
      Result<std::vector<ArrayVolume>> r = d.Inventory(call);
      if (!r.ok()) return r.status();
      for (const ArrayVolume& v : *r) SendVolume(sink, cookie, v);
      return Status::Ok();
    });
  }
  static snapset_status list_groups(snapset_array* a, const snapset_array_call* c, uint32_t f,
                                    snapset_array_group_sink sink, void* cookie) {
    return Run("list_groups", a, c, f, [&](ArrayDriver& d, const ArrayCall& call) -> Status {
      if (Status s = NeedArg("list_groups", (const void*)sink, "sink"); !s.ok()) return s;
      Result<std::vector<ArrayGroup>> r = d.Groups(call);
      if (!r.ok()) return r.status();
      for (const ArrayGroup& g : *r) SendGroup(sink, cookie, g);
      return Status::Ok();
    });
  }
  static snapset_status create_group(snapset_array* a, const snapset_array_call* c, uint32_t f,
                                     const char* name, const char* const* members, uint32_t count,
                                     snapset_array_group_sink sink, void* cookie) {
    return Run("create_group", a, c, f, [&](ArrayDriver& d, const ArrayCall& call) -> Status {
      if (Status s = NeedArg("create_group", name, "name"); !s.ok()) return s;
      if (Status s = NeedArg("create_group", (const void*)sink, "sink"); !s.ok()) return s;
      if (count > 0 && !members) return Status::InvalidArgument("create_group: member_ids is NULL");
      Result<ArrayGroup> r = d.CreateGroup(name, Strings(members, count), call);
      if (!r.ok()) return r.status();
      SendGroup(sink, cookie, *r);
      return Status::Ok();
    });
  }
  static snapset_status delete_group(snapset_array* a, const snapset_array_call* c, uint32_t f,
                                     const char* id) {
    return Run("delete_group", a, c, f, [&](ArrayDriver& d, const ArrayCall& call) -> Status {
      if (Status s = NeedArg("delete_group", id, "group_id"); !s.ok()) return s;
      return d.DeleteGroup(id, call);
    });
  }
  static snapset_status snapshot_group(snapset_array* a, const snapset_array_call* c, uint32_t f,
                                       const snapset_array_snapshot_request* r,
                                       snapset_array_volume_sink sink, void* cookie) {
    return Run("snapshot_group", a, c, f, [&](ArrayDriver& d, const ArrayCall& call) -> Status {
      if (Status s = CheckStruct("snapshot_group", r, r ? r->struct_size : 0,
                                 sizeof(snapset_array_snapshot_request), "the request");
          !s.ok())
        return s;
      if (Status s = CheckStruct("snapshot_group", r->group, r->group ? r->group->struct_size : 0,
                                 sizeof(snapset_array_group), "the group");
          !s.ok())
        return s;
      if (Status s = NeedArg("snapshot_group", (const void*)sink, "sink"); !s.ok()) return s;
      SnapshotRequest request;
      request.group.id = std::string(Str(r->group->id));
      request.group.name = std::string(Str(r->group->name));
      request.group.member_ids = Strings(r->group->member_ids, r->group->member_count);
      if (r->name_count != 0 && r->name_count != r->group->member_count)
        return Status::InvalidArgument("snapshot_group: " + std::to_string(r->name_count) +
                                       " names for " + std::to_string(r->group->member_count) +
                                       " members");
      request.names = Strings(r->names, r->name_count);
      request.fence_id = std::string(Str(r->fence_id));
      Result<std::vector<ArrayVolume>> out = d.SnapshotGroup(request, call);
      if (!out.ok()) return out.status();
      for (const ArrayVolume& v : *out) SendVolume(sink, cookie, v);
      return Status::Ok();
    });
  }
  static snapset_status delete_snapshot(snapset_array* a, const snapset_array_call* c, uint32_t f,
                                        const char* id) {
    return Run("delete_snapshot", a, c, f, [&](ArrayDriver& d, const ArrayCall& call) -> Status {
      if (Status s = NeedArg("delete_snapshot", id, "snapshot_id"); !s.ok()) return s;
      return d.DeleteSnapshot(id, call);
    });
  }
  static snapset_status expose(snapset_array* a, const snapset_array_call* c, uint32_t f,
                               const snapset_array_expose_request* r,
                               snapset_array_exposure_sink sink, void* cookie) {
    return Run("expose", a, c, f, [&](ArrayDriver& d, const ArrayCall& call) -> Status {
      if (Status s = CheckStruct("expose", r, r ? r->struct_size : 0,
                                 sizeof(snapset_array_expose_request), "the request");
          !s.ok())
        return s;
      if (Status s = NeedArg("expose", (const void*)sink, "sink"); !s.ok()) return s;
      ExposeRequest request;
      request.volume_ids = Strings(r->volume_ids, r->volume_count);
      request.initiator_iqn = std::string(Str(r->initiator_iqn));
      request.chap_user = std::string(Str(r->chap_user));
      request.chap_password = std::string(Str(r->chap_secret));
      request.read_only = r->read_only != 0;
      request.name = std::string(Str(r->name));
      Result<ArrayExposure> out = d.Expose(request, call);
      if (!out.ok()) return out.status();
      SendExposure(sink, cookie, *out);
      return Status::Ok();
    });
  }
  static snapset_status unexpose(snapset_array* a, const snapset_array_call* c, uint32_t f,
                                 const char* id) {
    return Run("unexpose", a, c, f, [&](ArrayDriver& d, const ArrayCall& call) -> Status {
      if (Status s = NeedArg("unexpose", id, "exposure_id"); !s.ok()) return s;
      return d.Unexpose(id, call);
    });
  }
  static snapset_status list_exposures(snapset_array* a, const snapset_array_call* c, uint32_t f,
                                       snapset_array_exposure_sink sink, void* cookie) {
    return Run("list_exposures", a, c, f, [&](ArrayDriver& d, const ArrayCall& call) -> Status {
      if (Status s = NeedArg("list_exposures", (const void*)sink, "sink"); !s.ok()) return s;
      Result<std::vector<ArrayExposure>> r = d.Exposures(call);
      if (!r.ok()) return r.status();
      for (const ArrayExposure& e : *r) SendExposure(sink, cookie, e);
      return Status::Ok();
    });
  }
  static snapset_status settle(snapset_array* a, const snapset_array_call* c, uint32_t f) {
    return Run("settle", a, c, f,
               [](ArrayDriver& d, const ArrayCall& call) { return d.Settle(call); });
  }
  static snapset_status revert(snapset_array* a, const snapset_array_call* c, uint32_t f,
                               const char* volume_id, const char* snapshot_id) {
    return Run("revert", a, c, f, [&](ArrayDriver& d, const ArrayCall& call) -> Status {
      if (Status s = NeedArg("revert", volume_id, "volume_id"); !s.ok()) return s;
      if (Status s = NeedArg("revert", snapshot_id, "snapshot_id"); !s.ok()) return s;
      return d.Revert(volume_id, snapshot_id, call);
    });
  }
  static snapset_status start_fence(snapset_array* a, const snapset_array_call* c, uint32_t f,
                                    const snapset_array_fence_request* r,
                                    snapset_array_fence_sink sink, void* cookie) {
    return Run("start_fence", a, c, f, [&](ArrayDriver& d, const ArrayCall& call) -> Status {
      if (Status s = CheckStruct("start_fence", r, r ? r->struct_size : 0,
                                 offsetof(snapset_array_fence_request, expires_realtime_ns),
                                 "the request");
          !s.ok())
        return s;
      if (Status s = NeedArg("start_fence", (const void*)sink, "sink"); !s.ok()) return s;
      if (r->timeout_ms == 0) return Status::InvalidArgument("start_fence: timeout_ms is 0");
      FenceRequest request;
      request.volume_ids = Strings(r->volume_ids, r->volume_count);
      request.name = std::string(Str(r->name));
      request.timeout = std::chrono::milliseconds(r->timeout_ms);
      if (SNAPSET_HAS_MEMBER(r, snapset_array_fence_request, expires_realtime_ns))
        request.expires_realtime_ns = r->expires_realtime_ns;
      Result<ArrayFence> out = d.StartFence(request, call);
      if (!out.ok()) return out.status();
      SendFence(sink, cookie, *out);
      return Status::Ok();
    });
  }
  static snapset_status lift_fence(snapset_array* a, const snapset_array_call* c, uint32_t f,
                                   const char* id) {
    return Run("lift_fence", a, c, f, [&](ArrayDriver& d, const ArrayCall& call) -> Status {
      if (Status s = NeedArg("lift_fence", id, "fence_id"); !s.ok()) return s;
      return d.LiftFence(id, call);
    });
  }
  static snapset_status list_fences(snapset_array* a, const snapset_array_call* c, uint32_t f,
                                    snapset_array_fence_sink sink, void* cookie) {
    return Run("list_fences", a, c, f, [&](ArrayDriver& d, const ArrayCall& call) -> Status {
      if (Status s = NeedArg("list_fences", (const void*)sink, "sink"); !s.ok()) return s;
      Result<std::vector<ArrayFence>> r = d.Fences(call);
      if (!r.ok()) return r.status();
      for (const ArrayFence& fence : *r) SendFence(sink, cookie, fence);
      return Status::Ok();
    });
  }
  static snapset_status get_counters(snapset_array* a, uint32_t flags,
                                     snapset_array_counters* out) {
    return Guard(HostOf(a), nullptr, "get_counters", [&]() -> Status {
      if (Status s = NeedArg("get_counters", a, "the instance"); !s.ok()) return s;
      if (Status s = NeedArg("get_counters", out, "out"); !s.ok()) return s;
      if (Status s = CheckFlags("get_counters", flags); !s.ok()) return s;
      ArrayCounters n = Of(a).counters();
      if (SNAPSET_HAS_MEMBER(out, snapset_array_counters, requests)) out->requests = n.requests;
      if (SNAPSET_HAS_MEMBER(out, snapset_array_counters, logins)) out->logins = n.logins;
      return Status::Ok();
    });
  }

  // True when D overrides the optional member: &D::M then names D's own.
  static constexpr bool kFences =
      !std::is_same_v<decltype(&D::StartFence),
                      Result<ArrayFence> (ArrayDriver::*)(const FenceRequest&, const ArrayCall&)>;
  static constexpr bool kRevert =
      !std::is_same_v<decltype(&D::Revert),
                      Status (ArrayDriver::*)(const std::string&, const std::string&,
                                              const ArrayCall&)>;

  static const snapset_array_driver_ops* Ops() {
    static const snapset_array_driver_ops ops = {
        .abi_version = SNAPSET_ARRAY_ABI_VERSION,
        .struct_size = sizeof(snapset_array_driver_ops),
        .open = &open,
        .close = &close,
        .warm = &warm,
        .list_volumes = &list_volumes,
        .list_groups = &list_groups,
        .create_group = &create_group,
        .delete_group = &delete_group,
        .snapshot_group = &snapshot_group,
        .delete_snapshot = &delete_snapshot,
        .expose = &expose,
        .unexpose = &unexpose,
        .list_exposures = &list_exposures,
        .settle = &settle,
        .revert = kRevert ? &revert : nullptr,
        .start_fence = kFences ? &start_fence : nullptr,
        .lift_fence = kFences ? &lift_fence : nullptr,
        .list_fences = kFences ? &list_fences : nullptr,
        .get_counters = &get_counters,
    };
    return &ops;
  }
};

}  // namespace array_detail

}  // namespace snapset

// Exports DriverClass as this library's array driver. Use once per library.
#define SNAPSET_ARRAY_DRIVER(DriverClass)                                                      \
  extern "C" SNAPSET_EXPORT const snapset_array_driver_ops* snapset_array_driver_entry(void) { \
    return ::snapset::array_detail::Adapter<DriverClass>::Ops();                               \
  }

#endif  // SNAPSET_ARRAY_HPP
