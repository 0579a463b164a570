// SPDX-License-Identifier: Apache-2.0
#include "providers/iscsi/driver_library.hpp"

#include <dlfcn.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>

namespace snapset::iscsi {
namespace {

// --------------------------------------------------------------- trust

Status CheckOwnerAndMode(const std::string& path, const std::string& subject) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0)
    return Status::Config("cannot stat " + subject + ": " + std::strerror(errno));
  const uid_t me = ::geteuid();
  if (st.st_uid != 0 && st.st_uid != me)
    return Status::Config(subject + " is owned by uid " + std::to_string(st.st_uid) +
                          ", not by root or the current user (uid " + std::to_string(me) +
                          "); refusing to load it (chown it to root)");
  if (st.st_mode & (S_IWGRP | S_IWOTH))
    return Status::Config(subject + " is writable by " +
                          ((st.st_mode & S_IWOTH) ? "anyone" : "its group") +
                          "; refusing to load it (run: chmod go-w " + path + ")");
  return Status::Ok();
}

Status CheckTrustedLibrary(const std::string& path) {
  std::error_code ec;
  std::filesystem::path real = std::filesystem::canonical(path, ec);
  if (ec) return Status::Config("array driver library " + path + ": " + ec.message());
  if (!std::filesystem::is_regular_file(real, ec))
    return Status::Config("array driver library " + path + " is not a regular file");
  SNAPSET_RETURN_IF_ERROR(
      CheckOwnerAndMode(real.string(), "array driver library " + real.string()));
  return CheckOwnerAndMode(real.parent_path().string(), "directory " + real.parent_path().string() +
                                                            " holding array driver library " +
                                                            real.string());
}

// --------------------------------------------------------------- calls

// A call as the driver sees it, with room for the message it sets. The C
// struct comes first, so the host's set_error finds the message from the
// pointer the driver passes back.
struct HostCall {
  snapset_array_call c{};
  std::string error;
  explicit HostCall(const ArrayCall& call) {
    c.struct_size = sizeof c;
    c.options = (call.retry ? uint32_t(SNAPSET_ARRAY_CALL_RETRY) : 0u) |
                (call.in_window ? uint32_t(SNAPSET_ARRAY_CALL_IN_WINDOW) : 0u);
    c.deadline_ns =
        call.deadline == std::chrono::steady_clock::time_point::max()
            ? INT64_MAX
            : std::chrono::duration_cast<std::chrono::nanoseconds>(call.deadline.time_since_epoch())
                  .count();
  }
};

void HostSetError(const snapset_array_call* call, const char* message) {
  if (!call || !message) return;
  // The driver hands back the pointer the host gave it: the first member of
  // a HostCall.
  auto* host_call = reinterpret_cast<HostCall*>(const_cast<snapset_array_call*>(call));
  try {
    host_call->error = message;
  } catch (...) {
  }
}

std::string_view Str(const char* s) { return s ? std::string_view(s) : std::string_view(); }

std::vector<std::string> Strings(const char* const* v, uint32_t n) {
  std::vector<std::string> out;
  if (!v) return out;
  for (uint32_t i = 0; i < n; ++i) out.emplace_back(Str(v[i]));
  return out;
}

ArrayVolume VolumeFromAbi(const snapset_array_volume* v) {
  ArrayVolume out;
  out.id = std::string(Str(v->id));
  out.name = std::string(Str(v->name));
  out.naa = std::string(Str(v->naa));
  out.serial = std::string(Str(v->serial));
  out.capacity_bytes = v->capacity_bytes;
  out.block_size = v->block_size;
  out.source_id = std::string(Str(v->source_id));
  out.created_ns = v->created_ns;
  return out;
}

ArrayGroup GroupFromAbi(const snapset_array_group* g) {
  ArrayGroup out;
  out.id = std::string(Str(g->id));
  out.name = std::string(Str(g->name));
  out.member_ids = Strings(g->member_ids, g->member_count);
  return out;
}

ArrayExposure ExposureFromAbi(const snapset_array_exposure* e) {
  ArrayExposure out;
  out.id = std::string(Str(e->id));
  out.name = std::string(Str(e->name));
  out.target_iqn = std::string(Str(e->target_iqn));
  out.portal = std::string(Str(e->portal));
  out.initiator_iqn = std::string(Str(e->initiator_iqn));
  out.volume_ids = Strings(e->volume_ids, e->volume_count);
  if (e->luns)
    for (uint32_t i = 0; i < e->volume_count; ++i) out.luns.push_back(e->luns[i]);
  return out;
}

ArrayFence FenceFromAbi(const snapset_array_fence* f) {
  ArrayFence out;
  out.id = std::string(Str(f->id));
  out.name = std::string(Str(f->name));
  out.volume_ids = Strings(f->volume_ids, f->volume_count);
  out.remaining_ms = f->remaining_ms;
  return out;
}

template <typename T, auto Convert, typename C>
void Collect(void* cookie, const C* item) {
  if (!item) return;
  try {
    static_cast<std::vector<T>*>(cookie)->push_back(Convert(item));
  } catch (...) {
  }
}

std::vector<const char*> Pointers(const std::vector<std::string>& v) {
  std::vector<const char*> out;
  for (const std::string& s : v) out.push_back(s.c_str());
  return out;
}

// ------------------------------------------------------- a loaded driver

class LoadedDriver final : public ArrayDriver {
 public:
  LoadedDriver(std::shared_ptr<const DriverLibrary> library, DriverLog log)
      : library_(std::move(library)), ops_(library_->ops()), log_(std::move(log)) {
    host_.abi_version = SNAPSET_ARRAY_ABI_VERSION;
    host_.struct_size = sizeof host_;
    host_.context = reinterpret_cast<snapset_array_host_context*>(this);
    host_.log = &HostLogLine;
    host_.set_error = &HostSetError;
  }
  ~LoadedDriver() override {
    if (instance_) ops_.close(instance_, 0);
  }

  Status DoOpen(std::string_view config_json, const ArrayCall& call) {
    HostCall c(call);
    std::string json(config_json);
    snapset_array* out = nullptr;
    snapset_status rc = ops_.open(&host_, &c.c, 0, json.c_str(), &out);
    if (rc == SNAPSET_OK && !out)
      return Status::Internal(library_->path() + ": open returned OK but no instance");
    if (rc != SNAPSET_OK) return ToStatus("open", rc, c);
    instance_ = out;
    return Status::Ok();
  }

  Status Warm(const ArrayCall& call) override {
    if (!ops_.warm) return Status::Ok();
    HostCall c(call);
    return ToStatus("warm", ops_.warm(instance_, &c.c, 0), c);
  }
  Result<std::vector<ArrayVolume>> Inventory(const ArrayCall& call) override {
    std::vector<ArrayVolume> out;
    HostCall c(call);
    Status s = ToStatus(
        "list_volumes",
        ops_.list_volumes(instance_, &c.c, 0,
                          &Collect<ArrayVolume, VolumeFromAbi, snapset_array_volume>, &out),
        c);
    if (!s.ok()) return s;
    return out;
  }
  Result<std::vector<ArrayGroup>> Groups(const ArrayCall& call) override {
    std::vector<ArrayGroup> out;
    HostCall c(call);
    Status s =
        ToStatus("list_groups",
                 ops_.list_groups(instance_, &c.c, 0,
                                  &Collect<ArrayGroup, GroupFromAbi, snapset_array_group>, &out),
                 c);
    if (!s.ok()) return s;
    return out;
  }
  Result<ArrayGroup> CreateGroup(const std::string& name,
                                 const std::vector<std::string>& member_ids,
                                 const ArrayCall& call) override {
    std::vector<ArrayGroup> out;
    std::vector<const char*> ids = Pointers(member_ids);
    HostCall c(call);
    Status s = ToStatus(
        "create_group",
        ops_.create_group(instance_, &c.c, 0, name.c_str(), ids.data(), uint32_t(ids.size()),
                          &Collect<ArrayGroup, GroupFromAbi, snapset_array_group>, &out),
        c);
    if (!s.ok()) return s;
    if (out.size() != 1) return Broken("create_group", "groups", out.size(), 1);
    return std::move(out.front());
  }
  Status DeleteGroup(const std::string& group_id, const ArrayCall& call) override {
    HostCall c(call);
    return ToStatus("delete_group", ops_.delete_group(instance_, &c.c, 0, group_id.c_str()), c);
  }
  Result<std::vector<ArrayVolume>> SnapshotGroup(const SnapshotRequest& request,
                                                 const ArrayCall& call) override {
    std::vector<const char*> members = Pointers(request.group.member_ids);
    std::vector<const char*> names = Pointers(request.names);
    snapset_array_group group{};
    group.struct_size = sizeof group;
    group.member_count = uint32_t(members.size());
    group.id = request.group.id.c_str();
    group.name = request.group.name.c_str();
    group.member_ids = members.data();
    snapset_array_snapshot_request r{};
    r.struct_size = sizeof r;
    r.name_count = uint32_t(names.size());
    r.group = &group;
    r.names = names.empty() ? nullptr : names.data();
    r.fence_id = request.fence_id.empty() ? nullptr : request.fence_id.c_str();
    std::vector<ArrayVolume> out;
    out.reserve(members.size());
    HostCall c(call);
    Status s = ToStatus(
        "snapshot_group",
        ops_.snapshot_group(instance_, &c.c, 0, &r,
                            &Collect<ArrayVolume, VolumeFromAbi, snapset_array_volume>, &out),
        c);
    if (!s.ok()) return s;
    if (out.size() != members.size())
      return Broken("snapshot_group", "snapshots", out.size(), members.size());
    return out;
  }
  Status DeleteSnapshot(const std::string& snapshot_id, const ArrayCall& call) override {
    HostCall c(call);
    return ToStatus("delete_snapshot",
                    ops_.delete_snapshot(instance_, &c.c, 0, snapshot_id.c_str()), c);
  }
  Result<ArrayExposure> Expose(const ExposeRequest& request, const ArrayCall& call) override {
    std::vector<const char*> ids = Pointers(request.volume_ids);
    snapset_array_expose_request r{};
    r.struct_size = sizeof r;
    r.volume_count = uint32_t(ids.size());
    r.volume_ids = ids.data();
    r.initiator_iqn = request.initiator_iqn.c_str();
    r.chap_user = request.chap_user.empty() ? nullptr : request.chap_user.c_str();
    r.chap_secret = request.chap_user.empty() ? nullptr : request.chap_password.c_str();
    r.name = request.name.c_str();
    r.read_only = request.read_only ? 1 : 0;
    std::vector<ArrayExposure> out;
    HostCall c(call);
    Status s = ToStatus(
        "expose",
        ops_.expose(instance_, &c.c, 0, &r,
                    &Collect<ArrayExposure, ExposureFromAbi, snapset_array_exposure>, &out),
        c);
    if (!s.ok()) return s;
    if (out.size() != 1) return Broken("expose", "exposures", out.size(), 1);
    return std::move(out.front());
  }
  Status Unexpose(const std::string& exposure_id, const ArrayCall& call) override {
    HostCall c(call);
    return ToStatus("unexpose", ops_.unexpose(instance_, &c.c, 0, exposure_id.c_str()), c);
  }
  Result<std::vector<ArrayExposure>> Exposures(const ArrayCall& call) override {
    std::vector<ArrayExposure> out;
    HostCall c(call);
    Status s = ToStatus(
        "list_exposures",
        ops_.list_exposures(instance_, &c.c, 0,
                            &Collect<ArrayExposure, ExposureFromAbi, snapset_array_exposure>, &out),
        c);
    if (!s.ok()) return s;
    return out;
  }
  Status Settle(const ArrayCall& call) override {
    HostCall c(call);
    return ToStatus("settle", ops_.settle(instance_, &c.c, 0), c);
  }
  Status Revert(const std::string& volume_id, const std::string& snapshot_id,
                const ArrayCall& call) override {
    if (!ops_.revert) return ArrayDriver::Revert(volume_id, snapshot_id, call);
    HostCall c(call);
    return ToStatus("revert",
                    ops_.revert(instance_, &c.c, 0, volume_id.c_str(), snapshot_id.c_str()), c);
  }
  Result<ArrayFence> StartFence(const FenceRequest& request, const ArrayCall& call) override {
    if (!ops_.start_fence) return ArrayDriver::StartFence(request, call);
    std::vector<const char*> ids = Pointers(request.volume_ids);
    snapset_array_fence_request r{};
    r.struct_size = sizeof r;
    r.volume_count = uint32_t(ids.size());
    r.volume_ids = ids.data();
    r.name = request.name.c_str();
    r.timeout_ms = uint32_t(std::min<int64_t>(request.timeout.count(), UINT32_MAX));
    r.expires_realtime_ns = request.expires_realtime_ns;
    std::vector<ArrayFence> out;
    HostCall c(call);
    Status s =
        ToStatus("start_fence",
                 ops_.start_fence(instance_, &c.c, 0, &r,
                                  &Collect<ArrayFence, FenceFromAbi, snapset_array_fence>, &out),
                 c);
    if (!s.ok()) return s;
    if (out.size() != 1) return Broken("start_fence", "fences", out.size(), 1);
    return std::move(out.front());
  }
  Status LiftFence(const std::string& fence_id, const ArrayCall& call) override {
    if (!ops_.lift_fence) return ArrayDriver::LiftFence(fence_id, call);
    HostCall c(call);
    return ToStatus("lift_fence", ops_.lift_fence(instance_, &c.c, 0, fence_id.c_str()), c);
  }
  Result<std::vector<ArrayFence>> Fences(const ArrayCall& call) override {
    if (!ops_.list_fences) return ArrayDriver::Fences(call);
    std::vector<ArrayFence> out;
    HostCall c(call);
    Status s =
        ToStatus("list_fences",
                 ops_.list_fences(instance_, &c.c, 0,
                                  &Collect<ArrayFence, FenceFromAbi, snapset_array_fence>, &out),
                 c);
    if (!s.ok()) return s;
    return out;
  }
  bool offers_fences() const override { return ops_.start_fence != nullptr; }
  bool offers_revert() const override { return ops_.revert != nullptr; }
  ArrayCounters counters() const override {
    ArrayCounters n;
    if (!ops_.get_counters) return n;
    snapset_array_counters c{};
    c.struct_size = sizeof c;
    if (ops_.get_counters(instance_, 0, &c) == SNAPSET_OK) {
      n.requests = c.requests;
      n.logins = c.logins;
    }
    return n;
  }

 private:
  static void HostLogLine(snapset_array_host_context* context, int32_t level, const char* message) {
    auto* self = reinterpret_cast<LoadedDriver*>(context);
    if (!self || !message || !self->log_) return;
    try {
      self->log_(level, message);
    } catch (...) {
    }
  }

  // The driver's answer as a Status. The message is the driver's own: it
  // names the array and the call. One the driver left empty says so.
  Status ToStatus(const char* op, snapset_status rc, const HostCall& c) const {
    if (rc == SNAPSET_OK) return Status::Ok();
    const Code code = CodeFromAbi(rc);
    if (!c.error.empty()) return Status(code, c.error);
    return Status(code, std::string(op) + " failed with " + std::string(CodeName(code)) +
                            " and the driver gave no message (" + library_->path() + ")");
  }
  Status Broken(const char* op, const char* what, size_t got, size_t want) const {
    return Status::Internal(std::string(op) + " returned OK with " + std::to_string(got) + " " +
                            what + " instead of " + std::to_string(want) + " (array driver " +
                            library_->path() + ")");
  }

  std::shared_ptr<const DriverLibrary> library_;
  const snapset_array_driver_ops& ops_;
  DriverLog log_;
  snapset_array_host host_{};
  snapset_array* instance_ = nullptr;
};

}  // namespace

// ------------------------------------------------------------- library

Status NegotiateArrayAbi(const snapset_array_driver_ops* ops, const std::string& where,
                         snapset_array_driver_ops* out) {
  if (!ops) return Status::Config(where + ": snapset_array_driver_entry returned NULL");
  const uint32_t major = SNAPSET_ABI_MAJOR(ops->abi_version);
  if (major != SNAPSET_ARRAY_ABI_VERSION_MAJOR)
    return Status::Config(where + ": array driver ABI " + std::to_string(major) + "." +
                          std::to_string(SNAPSET_ABI_MINOR(ops->abi_version)) +
                          ", this host speaks " + std::to_string(SNAPSET_ARRAY_ABI_VERSION_MAJOR) +
                          ".x: rebuild the driver against this snapset's array.h");
  // Every 1.0 member up to get_counters is in the table of any 1.0 driver.
  constexpr size_t kMinimum = offsetof(snapset_array_driver_ops, get_counters) + sizeof(void*);
  if (ops->struct_size < kMinimum)
    return Status::Config(where + ": its ops table has struct_size " +
                          std::to_string(ops->struct_size) + ", smaller than ABI 1.0's " +
                          std::to_string(kMinimum) + ": not a snapset array driver table");
  *out = snapset_array_driver_ops{};
  std::memcpy(out, ops, std::min<size_t>(ops->struct_size, sizeof *out));
  struct Needed {
    const void* op;
    const char* name;
  };
  const Needed needed[] = {
      {(const void*)out->open, "open"},
      {(const void*)out->close, "close"},
      {(const void*)out->list_volumes, "list_volumes"},
      {(const void*)out->list_groups, "list_groups"},
      {(const void*)out->create_group, "create_group"},
      {(const void*)out->delete_group, "delete_group"},
      {(const void*)out->snapshot_group, "snapshot_group"},
      {(const void*)out->delete_snapshot, "delete_snapshot"},
      {(const void*)out->expose, "expose"},
      {(const void*)out->unexpose, "unexpose"},
      {(const void*)out->list_exposures, "list_exposures"},
      {(const void*)out->settle, "settle"},
  };
  for (const Needed& n : needed)
    if (!n.op)
      return Status::Config(where + ": the mandatory op " + n.name +
                            " is NULL (array.h lists which ops may be NULL)");
  const int fences =
      (out->start_fence != nullptr) + (out->lift_fence != nullptr) + (out->list_fences != nullptr);
  if (fences != 0 && fences != 3)
    return Status::Config(where +
                          ": start_fence, lift_fence and list_fences must be all set or all "
                          "NULL; " +
                          std::to_string(fences) + " of them are set");
  return Status::Ok();
}

Result<std::shared_ptr<const DriverLibrary>> DriverLibrary::Load(const std::string& path) {
  SNAPSET_RETURN_IF_ERROR(CheckTrustedLibrary(path));
  std::shared_ptr<DriverLibrary> lib(new DriverLibrary());
  lib->path_ = path;
  dlerror();
  // RTLD_NODELETE: a driver's code is never unmapped, even when its last
  // instance is gone. Threads it started (libcurl's resolver, a vendor's
  // own) may outlive the instance, and unmapping code a thread still runs
  // is a crash.
  lib->handle_ = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
  if (!lib->handle_) {
    const char* why = dlerror();
    return Status::Config("cannot load array driver library " + path + ": " +
                          (why ? why : "unknown dlopen error"));
  }
  void* sym = ::dlsym(lib->handle_, SNAPSET_ARRAY_DRIVER_ENTRY_SYMBOL);
  if (!sym)
    return Status::Config("array driver library " + path +
                          " has no entry point " SNAPSET_ARRAY_DRIVER_ENTRY_SYMBOL
                          " (export it with SNAPSET_ARRAY_DRIVER(YourClass))");
  auto entry = reinterpret_cast<snapset_array_driver_entry_fn>(sym);
  const snapset_array_driver_ops* ops = entry();
  SNAPSET_RETURN_IF_ERROR(NegotiateArrayAbi(ops, "array driver library " + path, &lib->ops_));
  lib->abi_version_ = ops->abi_version;
  return std::shared_ptr<const DriverLibrary>(std::move(lib));
}

DriverLibrary::~DriverLibrary() {
  if (handle_) ::dlclose(handle_);
}

Result<std::unique_ptr<ArrayDriver>> DriverLibrary::Open(std::string_view config_json,
                                                         const ArrayCall& call,
                                                         DriverLog log) const {
  auto driver = std::make_unique<LoadedDriver>(shared_from_this(), std::move(log));
  SNAPSET_RETURN_IF_ERROR(driver->DoOpen(config_json, call));
  return std::unique_ptr<ArrayDriver>(std::move(driver));
}

}  // namespace snapset::iscsi
