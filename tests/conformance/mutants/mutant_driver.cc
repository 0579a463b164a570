// SPDX-License-Identifier: Apache-2.0
//
// Deliberately broken array drivers, the array-level half of the mutation
// proof (mutant_provider.cc is the provider-level half): a shim on the raw
// C ABI of include/snapset/array.h that dlopens the bundled Swordfish
// driver (MUTANT_INNER_DRIVER), forwards every member of its table, and adds
// exactly one defect (MUTANT_DEFECT). MUTANT_DEFECT 0 adds none: the
// baseline that must pass, so that a mutant's failure is its defect's.
// The suite hosts it with --fixture mock-swordfish --driver PATH, through
// the real iSCSI provider.
//
//  12 members-at-different-instants: snapshot_group cuts each member alone,
//     300 ms apart, instead of the whole group at one instant. array.h has
//     no per-volume snapshot, and the mock lets a volume be in one group
//     only, so the shim deletes the set's group and, member by member, makes
//     a group of that member alone, snapshots it (under the name the host
//     asked for) and deletes it. The host gets the snapshots it asked for,
//     in member order, each from another instant: the defect the issue
//     quotes from a shipping CSI driver. (The set's group being gone, the
//     host's later delete_group of it is the idempotent OK.)
//     -> consistency.write-order-under-load
//  13 leaks-after-rest-fault: a delete of a group or a snapshot that the
//     array failed is reported OK, not retried, so a REST fault leaves the
//     object on the array. -> faults.post-commit, faults.delete
//  14 no-revert: offers no revert, as a vendor's driver may. Not a defect
//     the suite catches (revert is optional) but one the host must meet
//     all or none: tests/iscsi/provider_revert_test.cc hosts it beside the
//     Swordfish driver.
#include <dlfcn.h>
#include <snapset/array.h>
#include <time.h>

#include <string>
#include <vector>

#ifndef MUTANT_DEFECT
#error "MUTANT_DEFECT=<n> selects the defect (0: none)"
#endif
#ifndef MUTANT_INNER_DRIVER
#error "MUTANT_INNER_DRIVER names the array driver library the shim forwards to"
#endif

// The instance the host sees. The host never calls one instance from two
// threads at once (array.h), so it needs no lock.
struct snapset_array {
  const snapset_array_host* host = nullptr;
  snapset_array* inner = nullptr;
};

namespace {

constexpr int kDefect = MUTANT_DEFECT;
constexpr int kMembersApart = 12;
constexpr int kLeaksAfterFault = 13;
constexpr int kNoRevert = 14;

const snapset_array_driver_ops* g_inner = nullptr;
std::string g_load_error;

#define INNER(member)                                                                         \
  (g_inner && SNAPSET_HAS_MEMBER(g_inner, snapset_array_driver_ops, member) ? g_inner->member \
                                                                            : nullptr)

void LoadInner() {
  // RTLD_NODELETE, as the iSCSI provider loads drivers: libcurl's threads
  // may outlive an instance.
  void* handle = ::dlopen(MUTANT_INNER_DRIVER, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
  if (!handle) {
    const char* why = ::dlerror();
    g_load_error = std::string("mutant driver: cannot load ") + MUTANT_INNER_DRIVER + ": " +
                   (why ? why : "unknown dlopen error");
    return;
  }
  auto entry = reinterpret_cast<snapset_array_driver_entry_fn>(
      ::dlsym(handle, SNAPSET_ARRAY_DRIVER_ENTRY_SYMBOL));
  if (!entry) {
    g_load_error = std::string("mutant driver: ") + MUTANT_INNER_DRIVER + " has no " +
                   SNAPSET_ARRAY_DRIVER_ENTRY_SYMBOL;
    return;
  }
  g_inner = entry();
}

void SetError(const snapset_array_host* host, const snapset_array_call* call,
              const std::string& message) {
  if (host && SNAPSET_HAS_MEMBER(host, snapset_array_host, set_error) && host->set_error)
    host->set_error(call, message.c_str());
}

void SleepMs(int ms) {
  timespec ts{time_t(ms / 1000), long(ms % 1000) * 1000000};
  while (::nanosleep(&ts, &ts) != 0) {
  }
}

// --------------------------------------------------------------- forwarding

snapset_status Open(const snapset_array_host* host, const snapset_array_call* call, uint32_t flags,
                    const char* config_json, snapset_array** out) {
  if (!INNER(open)) {
    SetError(host, call, g_load_error.empty() ? "mutant driver: no inner driver" : g_load_error);
    return SNAPSET_E_UNAVAILABLE;
  }
  if (!out) return INNER(open)(host, call, flags, config_json, out);
  auto* a = new snapset_array;
  a->host = host;
  snapset_status s = INNER(open)(host, call, flags, config_json, &a->inner);
  if (s != SNAPSET_OK) {
    delete a;
    return s;
  }
  *out = a;
  return SNAPSET_OK;
}

void Close(snapset_array* a, uint32_t flags) {
  if (!a) return;
  if (INNER(close)) INNER(close)(a->inner, flags);
  delete a;
}

snapset_status Warm(snapset_array* a, const snapset_array_call* c, uint32_t f) {
  return INNER(warm)(a->inner, c, f);
}

snapset_status ListVolumes(snapset_array* a, const snapset_array_call* c, uint32_t f,
                           snapset_array_volume_sink sink, void* cookie) {
  return INNER(list_volumes)(a->inner, c, f, sink, cookie);
}

snapset_status ListGroups(snapset_array* a, const snapset_array_call* c, uint32_t f,
                          snapset_array_group_sink sink, void* cookie) {
  return INNER(list_groups)(a->inner, c, f, sink, cookie);
}

snapset_status CreateGroup(snapset_array* a, const snapset_array_call* c, uint32_t f,
                           const char* name, const char* const* member_ids, uint32_t member_count,
                           snapset_array_group_sink sink, void* cookie) {
  return INNER(create_group)(a->inner, c, f, name, member_ids, member_count, sink, cookie);
}

// Defect 13: what the array refused to delete is reported deleted.
snapset_status Leaky(snapset_status s) {
  return kDefect == kLeaksAfterFault && s != SNAPSET_OK ? SNAPSET_OK : s;
}

snapset_status DeleteGroup(snapset_array* a, const snapset_array_call* c, uint32_t f,
                           const char* group_id) {
  return Leaky(INNER(delete_group)(a->inner, c, f, group_id));
}

snapset_status DeleteSnapshot(snapset_array* a, const snapset_array_call* c, uint32_t f,
                              const char* snapshot_id) {
  return Leaky(INNER(delete_snapshot)(a->inner, c, f, snapshot_id));
}

// The id of the group create_group made.
void KeepGroupId(void* cookie, const snapset_array_group* group) {
  if (group && group->id) *static_cast<std::string*>(cookie) = group->id;
}

// Defect 12: each member cut alone, 300 ms after the one before.
snapset_status SnapshotMembersApart(snapset_array* a, const snapset_array_call* c, uint32_t f,
                                    const snapset_array_snapshot_request* request,
                                    snapset_array_volume_sink sink, void* cookie) {
  const snapset_array_group* group = request->group;
  if (snapset_status s = INNER(delete_group)(a->inner, c, 0, group->id); s != SNAPSET_OK) return s;
  for (uint32_t i = 0; i < group->member_count; ++i) {
    if (i) SleepMs(300);
    const std::string name =
        std::string(group->name ? group->name : "mutant") + "-m" + std::to_string(i);
    std::string temp_id;
    snapset_status s = INNER(create_group)(a->inner, c, 0, name.c_str(), &group->member_ids[i], 1,
                                           &KeepGroupId, &temp_id);
    if (s != SNAPSET_OK) return s;
    const char* const one_member[] = {group->member_ids[i]};
    const snapset_array_group alone{sizeof(snapset_array_group), 1, temp_id.c_str(), name.c_str(),
                                    one_member};
    snapset_array_snapshot_request one = *request;
    one.group = &alone;
    one.name_count = request->name_count ? 1 : 0;
    one.names = request->name_count ? &request->names[i] : nullptr;
    s = INNER(snapshot_group)(a->inner, c, f, &one, sink, cookie);
    const snapset_status deleted = INNER(delete_group)(a->inner, c, 0, temp_id.c_str());
    if (s != SNAPSET_OK) return s;
    if (deleted != SNAPSET_OK) return deleted;
  }
  return SNAPSET_OK;
}

snapset_status SnapshotGroup(snapset_array* a, const snapset_array_call* c, uint32_t f,
                             const snapset_array_snapshot_request* request,
                             snapset_array_volume_sink sink, void* cookie) {
  if (kDefect == kMembersApart && request && request->group && request->group->member_count > 1 &&
      f == 0)
    return SnapshotMembersApart(a, c, f, request, sink, cookie);
  return INNER(snapshot_group)(a->inner, c, f, request, sink, cookie);
}

snapset_status Expose(snapset_array* a, const snapset_array_call* c, uint32_t f,
                      const snapset_array_expose_request* request, snapset_array_exposure_sink sink,
                      void* cookie) {
  return INNER(expose)(a->inner, c, f, request, sink, cookie);
}

snapset_status Unexpose(snapset_array* a, const snapset_array_call* c, uint32_t f,
                        const char* exposure_id) {
  return INNER(unexpose)(a->inner, c, f, exposure_id);
}

snapset_status ListExposures(snapset_array* a, const snapset_array_call* c, uint32_t f,
                             snapset_array_exposure_sink sink, void* cookie) {
  return INNER(list_exposures)(a->inner, c, f, sink, cookie);
}

snapset_status Settle(snapset_array* a, const snapset_array_call* c, uint32_t f) {
  return INNER(settle)(a->inner, c, f);
}

snapset_status Revert(snapset_array* a, const snapset_array_call* c, uint32_t f,
                      const char* volume_id, const char* snapshot_id) {
  return INNER(revert)(a->inner, c, f, volume_id, snapshot_id);
}

snapset_status StartFence(snapset_array* a, const snapset_array_call* c, uint32_t f,
                          const snapset_array_fence_request* request, snapset_array_fence_sink sink,
                          void* cookie) {
  return INNER(start_fence)(a->inner, c, f, request, sink, cookie);
}

snapset_status LiftFence(snapset_array* a, const snapset_array_call* c, uint32_t f,
                         const char* fence_id) {
  return INNER(lift_fence)(a->inner, c, f, fence_id);
}

snapset_status ListFences(snapset_array* a, const snapset_array_call* c, uint32_t f,
                          snapset_array_fence_sink sink, void* cookie) {
  return INNER(list_fences)(a->inner, c, f, sink, cookie);
}

snapset_status GetCounters(snapset_array* a, uint32_t f, snapset_array_counters* out) {
  return INNER(get_counters)(a->inner, f, out);
}

// The shim offers exactly the members the inner driver offers.
template <typename F>
F IfInner(F inner_member, F shim) {
  return inner_member ? shim : nullptr;
}

snapset_array_driver_ops MakeOps() {
  LoadInner();
  return snapset_array_driver_ops{
      .abi_version = SNAPSET_ARRAY_ABI_VERSION,
      .struct_size = sizeof(snapset_array_driver_ops),
      .open = &Open,
      .close = &Close,
      .warm = IfInner(INNER(warm), &Warm),
      .list_volumes = IfInner(INNER(list_volumes), &ListVolumes),
      .list_groups = IfInner(INNER(list_groups), &ListGroups),
      .create_group = IfInner(INNER(create_group), &CreateGroup),
      .delete_group = IfInner(INNER(delete_group), &DeleteGroup),
      .snapshot_group = IfInner(INNER(snapshot_group), &SnapshotGroup),
      .delete_snapshot = IfInner(INNER(delete_snapshot), &DeleteSnapshot),
      .expose = IfInner(INNER(expose), &Expose),
      .unexpose = IfInner(INNER(unexpose), &Unexpose),
      .list_exposures = IfInner(INNER(list_exposures), &ListExposures),
      .settle = IfInner(INNER(settle), &Settle),
      .revert = kDefect == kNoRevert ? nullptr : IfInner(INNER(revert), &Revert),
      .start_fence = IfInner(INNER(start_fence), &StartFence),
      .lift_fence = IfInner(INNER(lift_fence), &LiftFence),
      .list_fences = IfInner(INNER(list_fences), &ListFences),
      .get_counters = IfInner(INNER(get_counters), &GetCounters),
  };
}

}  // namespace

// Loads the inner driver once, to offer the members it offers; when it
// cannot be loaded, open() says why.
extern "C" SNAPSET_EXPORT const snapset_array_driver_ops* snapset_array_driver_entry(void) {
  static const snapset_array_driver_ops ops = MakeOps();
  return &ops;
}
