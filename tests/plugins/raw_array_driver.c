/* SPDX-License-Identifier: Apache-2.0 */
/* An array driver written in plain C against array.h: an array in memory
 * with two volumes, built several times with different ABI declarations to
 * test the host's negotiation:
 *   RAW_ARRAY_MAJOR / RAW_ARRAY_MINOR  the version the table claims
 *   RAW_ARRAY_FUTURE_MEMBER            one member more than 1.0, as a driver
 *                                      of a newer minor would have
 *   RAW_ARRAY_SHORT_TABLE              struct_size ends after settle: smaller
 *                                      than any 1.x table
 *   RAW_ARRAY_NO_SETTLE                a mandatory op is NULL
 *   RAW_ARRAY_HALF_FENCES              start_fence without its two partners
 *   RAW_ARRAY_FENCES                   offers fences (in memory)
 * By default every optional op (warm, revert, fences, get_counters) is NULL.
 * Unknown flag bits are rejected as array.h asks; every error has a message.
 * config_json may be {"fail_open": true} to test a refused open. */
#include <snapset/array.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef RAW_ARRAY_MAJOR
#define RAW_ARRAY_MAJOR SNAPSET_ARRAY_ABI_VERSION_MAJOR
#endif
#ifndef RAW_ARRAY_MINOR
#define RAW_ARRAY_MINOR SNAPSET_ARRAY_ABI_VERSION_MINOR
#endif

#define MAX_OBJECTS 64
#define NAME_LEN 96

typedef struct {
  int used;
  char id[NAME_LEN];
  char name[NAME_LEN];
  char source[NAME_LEN]; /* "" for a volume */
} raw_volume;

typedef struct {
  int used;
  char id[NAME_LEN];
  char name[NAME_LEN];
  uint32_t count;
  char members[2][NAME_LEN];
} raw_group;

struct snapset_array {
  const snapset_array_host *host;
  raw_volume volumes[MAX_OBJECTS];
  raw_group groups[8];
  int next_id;
  int fence_up;
  char fence_name[NAME_LEN];
};

static snapset_status fail(snapset_array *a, const snapset_array_call *call, snapset_status rc,
                           const char *message) {
  if (a && SNAPSET_HAS_MEMBER(a->host, snapset_array_host, set_error))
    a->host->set_error(call, message);
  return rc;
}

#define CHECK_FLAGS(a, call, flags) \
  if (flags) return fail(a, call, SNAPSET_E_INVALID_ARGUMENT, "raw array: unknown flag bits")

/* The slot of the new volume, or -1 when the array is full. */
static int add_volume(snapset_array *a, const char *id, const char *name, const char *source) {
  for (int i = 0; i < MAX_OBJECTS; ++i) {
    if (a->volumes[i].used) continue;
    a->volumes[i].used = 1;
    snprintf(a->volumes[i].id, NAME_LEN, "%s", id);
    snprintf(a->volumes[i].name, NAME_LEN, "%s", name);
    snprintf(a->volumes[i].source, NAME_LEN, "%s", source ? source : "");
    return i;
  }
  return -1;
}

static snapset_status raw_open(const snapset_array_host *host, const snapset_array_call *call,
                               uint32_t flags, const char *config, snapset_array **out) {
  if (flags) {
    host->set_error(call, "raw array: unknown flag bits");
    return SNAPSET_E_INVALID_ARGUMENT;
  }
  if (config && strstr(config, "\"fail_open\": true")) {
    host->set_error(call, "raw array: fail_open: the config asks open to fail");
    return SNAPSET_E_INVALID_ARGUMENT;
  }
  snapset_array *a = calloc(1, sizeof *a);
  if (!a) return SNAPSET_E_INTERNAL;
  a->host = host;
  add_volume(a, "v1", "vol-one", NULL);
  add_volume(a, "v2", "vol-two", NULL);
  *out = a;
  return SNAPSET_OK;
}

static void raw_close(snapset_array *a, uint32_t flags) {
  (void)flags;
  free(a);
}

static void send_volume(snapset_array_volume_sink sink, void *cookie, const raw_volume *v,
                        int index) {
  char naa[33];
  snprintf(naa, sizeof naa, "600a0b80%024d", index);
  snapset_array_volume out;
  memset(&out, 0, sizeof out);
  out.struct_size = sizeof out;
  out.block_size = 512;
  out.id = v->id;
  out.name = v->name;
  out.naa = naa;
  out.capacity_bytes = 1u << 20;
  out.source_id = v->source[0] ? v->source : NULL;
  sink(cookie, &out);
}

static snapset_status raw_list_volumes(snapset_array *a, const snapset_array_call *call,
                                       uint32_t flags, snapset_array_volume_sink sink,
                                       void *cookie) {
  CHECK_FLAGS(a, call, flags);
  for (int i = 0; i < MAX_OBJECTS; ++i)
    if (a->volumes[i].used) send_volume(sink, cookie, &a->volumes[i], i);
  return SNAPSET_OK;
}

static void send_group(snapset_array_group_sink sink, void *cookie, const raw_group *g) {
  const char *members[2] = {g->members[0], g->members[1]};
  snapset_array_group out;
  memset(&out, 0, sizeof out);
  out.struct_size = sizeof out;
  out.member_count = g->count;
  out.id = g->id;
  out.name = g->name;
  out.member_ids = members;
  sink(cookie, &out);
}

static snapset_status raw_list_groups(snapset_array *a, const snapset_array_call *call,
                                      uint32_t flags, snapset_array_group_sink sink,
                                      void *cookie) {
  CHECK_FLAGS(a, call, flags);
  for (int i = 0; i < 8; ++i)
    if (a->groups[i].used) send_group(sink, cookie, &a->groups[i]);
  return SNAPSET_OK;
}

static snapset_status raw_create_group(snapset_array *a, const snapset_array_call *call,
                                       uint32_t flags, const char *name,
                                       const char *const *members, uint32_t count,
                                       snapset_array_group_sink sink, void *cookie) {
  CHECK_FLAGS(a, call, flags);
  if (count > 2) return fail(a, call, SNAPSET_E_MAX_VOLUMES, "raw array: at most 2 members");
  for (int i = 0; i < 8; ++i)
    if (a->groups[i].used && strcmp(a->groups[i].name, name) == 0)
      return fail(a, call, SNAPSET_E_ALREADY_EXISTS, "raw array: group name taken");
  for (int i = 0; i < 8; ++i) {
    raw_group *g = &a->groups[i];
    if (g->used) continue;
    g->used = 1;
    snprintf(g->id, NAME_LEN, "g%d", ++a->next_id);
    snprintf(g->name, NAME_LEN, "%s", name);
    g->count = count;
    for (uint32_t m = 0; m < count; ++m) snprintf(g->members[m], NAME_LEN, "%s", members[m]);
    send_group(sink, cookie, g);
    return SNAPSET_OK;
  }
  return fail(a, call, SNAPSET_E_INSUFFICIENT_STORAGE, "raw array: no room for a group");
}

static snapset_status raw_delete_group(snapset_array *a, const snapset_array_call *call,
                                       uint32_t flags, const char *id) {
  CHECK_FLAGS(a, call, flags);
  for (int i = 0; i < 8; ++i)
    if (a->groups[i].used && strcmp(a->groups[i].id, id) == 0) a->groups[i].used = 0;
  return SNAPSET_OK;
}

static snapset_status raw_snapshot_group(snapset_array *a, const snapset_array_call *call,
                                         uint32_t flags,
                                         const snapset_array_snapshot_request *request,
                                         snapset_array_volume_sink sink, void *cookie) {
  CHECK_FLAGS(a, call, flags);
  const snapset_array_group *g = request->group;
  int made[2];
  if (g->member_count > 2) return fail(a, call, SNAPSET_E_MAX_VOLUMES, "raw array: 2 members");
  for (uint32_t m = 0; m < g->member_count; ++m) {
    char id[NAME_LEN], name[NAME_LEN];
    snprintf(id, sizeof id, "s%d", ++a->next_id);
    snprintf(name, sizeof name, "%s", request->name_count ? request->names[m] : id);
    made[m] = add_volume(a, id, name, g->member_ids[m]);
    if (made[m] < 0) {
      for (uint32_t k = 0; k < m; ++k) a->volumes[made[k]].used = 0;
      return fail(a, call, SNAPSET_E_INSUFFICIENT_STORAGE, "raw array: full");
    }
  }
  for (uint32_t m = 0; m < g->member_count; ++m)
    send_volume(sink, cookie, &a->volumes[made[m]], made[m]);
  return SNAPSET_OK;
}

static snapset_status raw_delete_snapshot(snapset_array *a, const snapset_array_call *call,
                                          uint32_t flags, const char *id) {
  CHECK_FLAGS(a, call, flags);
  for (int i = 0; i < MAX_OBJECTS; ++i)
    if (a->volumes[i].used && a->volumes[i].source[0] && strcmp(a->volumes[i].id, id) == 0)
      a->volumes[i].used = 0;
  return SNAPSET_OK;
}

static snapset_status raw_expose(snapset_array *a, const snapset_array_call *call,
                                 uint32_t flags, const snapset_array_expose_request *request,
                                 snapset_array_exposure_sink sink, void *cookie) {
  (void)request, (void)sink, (void)cookie;
  CHECK_FLAGS(a, call, flags);
  return fail(a, call, SNAPSET_E_UNAVAILABLE, "raw array: has no iSCSI target to expose on");
}

static snapset_status raw_unexpose(snapset_array *a, const snapset_array_call *call,
                                   uint32_t flags, const char *id) {
  (void)id;
  CHECK_FLAGS(a, call, flags);
  return SNAPSET_OK;
}

static snapset_status raw_list_exposures(snapset_array *a, const snapset_array_call *call,
                                         uint32_t flags, snapset_array_exposure_sink sink,
                                         void *cookie) {
  (void)sink, (void)cookie;
  CHECK_FLAGS(a, call, flags);
  return SNAPSET_OK;
}

#ifndef RAW_ARRAY_NO_SETTLE
static snapset_status raw_settle(snapset_array *a, const snapset_array_call *call,
                                 uint32_t flags) {
  CHECK_FLAGS(a, call, flags);
  return SNAPSET_OK;
}
#endif

#if defined(RAW_ARRAY_FENCES) || defined(RAW_ARRAY_HALF_FENCES)
static void send_fence(snapset_array *a, snapset_array_fence_sink sink, void *cookie) {
  snapset_array_fence out;
  memset(&out, 0, sizeof out);
  out.struct_size = sizeof out;
  out.id = "f1";
  out.name = a->fence_name;
  out.remaining_ms = -1;
  sink(cookie, &out);
}

static snapset_status raw_start_fence(snapset_array *a, const snapset_array_call *call,
                                      uint32_t flags, const snapset_array_fence_request *request,
                                      snapset_array_fence_sink sink, void *cookie) {
  CHECK_FLAGS(a, call, flags);
  if (a->fence_up) return fail(a, call, SNAPSET_E_BAD_STATE, "raw array: a fence is up");
  a->fence_up = 1;
  snprintf(a->fence_name, NAME_LEN, "%s", request->name);
  send_fence(a, sink, cookie);
  return SNAPSET_OK;
}
#endif

#ifdef RAW_ARRAY_FENCES
static snapset_status raw_lift_fence(snapset_array *a, const snapset_array_call *call,
                                     uint32_t flags, const char *id) {
  (void)id;
  CHECK_FLAGS(a, call, flags);
  a->fence_up = 0;
  return SNAPSET_OK;
}

static snapset_status raw_list_fences(snapset_array *a, const snapset_array_call *call,
                                      uint32_t flags, snapset_array_fence_sink sink,
                                      void *cookie) {
  CHECK_FLAGS(a, call, flags);
  if (a->fence_up) send_fence(a, sink, cookie);
  return SNAPSET_OK;
}
#endif

/* A table as a driver of a newer minor has it: 1.0 plus one member. */
typedef struct {
  snapset_array_driver_ops v1_0;
  void *future_member;
} raw_future_ops;

static const raw_future_ops raw_ops = {
    .v1_0 =
        {
            .abi_version = SNAPSET_ABI_MAKE_VERSION(RAW_ARRAY_MAJOR, RAW_ARRAY_MINOR),
#if defined(RAW_ARRAY_FUTURE_MEMBER)
            .struct_size = sizeof(raw_future_ops),
#elif defined(RAW_ARRAY_SHORT_TABLE)
            .struct_size = offsetof(snapset_array_driver_ops, revert),
#else
            .struct_size = sizeof(snapset_array_driver_ops),
#endif
            .open = raw_open,
            .close = raw_close,
            .list_volumes = raw_list_volumes,
            .list_groups = raw_list_groups,
            .create_group = raw_create_group,
            .delete_group = raw_delete_group,
            .snapshot_group = raw_snapshot_group,
            .delete_snapshot = raw_delete_snapshot,
            .expose = raw_expose,
            .unexpose = raw_unexpose,
            .list_exposures = raw_list_exposures,
#ifndef RAW_ARRAY_NO_SETTLE
            .settle = raw_settle,
#endif
#if defined(RAW_ARRAY_FENCES) || defined(RAW_ARRAY_HALF_FENCES)
            .start_fence = raw_start_fence,
#endif
#ifdef RAW_ARRAY_FENCES
            .lift_fence = raw_lift_fence,
            .list_fences = raw_list_fences,
#endif
        },
    /* A host of 1.0 must never call this. */
    .future_member = (void *)1,
};

SNAPSET_EXPORT const snapset_array_driver_ops *snapset_array_driver_entry(void) {
  return &raw_ops.v1_0;
}
