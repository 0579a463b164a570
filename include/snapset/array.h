/* SPDX-License-Identifier: Apache-2.0 */
/*
 * snapset array-driver ABI: the C interface between the iSCSI provider (the
 * "host" of a driver) and an array driver, the code a storage vendor writes
 * to support an iSCSI array with its own management API.
 *
 * The division of work is VSS's hardware-provider model. The driver does
 * LUN-level operations on one array: list its volumes and snapshots, make
 * and delete consistency groups, cut one group snapshot, delete a snapshot,
 * expose LUNs to an initiator, and (optionally) fence writes. The iSCSI
 * provider does everything else: matching host volumes by NAA, grouping a
 * set by array, the commit window, rollback by name, checking exposed LUNs
 * on the wire, crash recovery, and the reasons `snapset providers explain`
 * gives.
 *
 * A driver is a shared library that exports exactly one symbol,
 * snapset_array_driver_entry (SNAPSET_ARRAY_DRIVER_ENTRY_SYMBOL), returning a
 * static, immutable table of operations (snapset_array_driver_ops). The host
 * dlopen()s it, checks the table's version and size, and opens one instance
 * per use of an array with open().
 *
 * Compatibility promise, the same as provider.h's:
 *   - the major version changes only when a released member changes meaning;
 *     the host refuses a driver whose major version it does not speak;
 *   - the minor version grows when members are added, always at the END of a
 *     struct; every growable struct starts with struct_size, so either side
 *     can tell which members the other knows (SNAPSET_HAS_MEMBER). The host
 *     treats ops beyond the driver's struct_size as NULL; a driver must not
 *     read members of host structs beyond their struct_size;
 *   - sizes are pinned with static asserts at the end of this file.
 *
 * Errors: every operation returns a snapset_status (provider.h's one enum).
 * On failure the driver says what went wrong in one sentence with
 * host->set_error(call, message): which call, what the array said, what to
 * do. A message never contains a password, token or CHAP secret. The codes
 * each operation may return are listed with it; INVALID_ARGUMENT and
 * INTERNAL may come from any of them. No C++ exception may leave a driver
 * (array.hpp guarantees it for drivers built on it).
 *
 * Flags: every operation takes a flags word and MUST reject bits it does not
 * know with SNAPSET_E_INVALID_ARGUMENT. ABI 1.0 defines no flags.
 *
 * Time: every operation that talks to the array takes a snapset_array_call
 * with an absolute deadline (CLOCK_MONOTONIC) and whether it may retry.
 * Nothing is sent, and nothing is waited for, past the deadline.
 *
 * Threads: the host never calls one instance from two threads at once. It
 * opens an instance per concurrent use (one per array and set, one for
 * management calls), so a driver needs no locks of its own, but instances
 * of one library may run in parallel and must not share mutable state
 * without locking.
 *
 * Ownership: every pointer the host passes is owned by the host and valid for
 * the call only. Strings are NUL-terminated UTF-8. Results go to a sink the
 * host passes, during the call; the host copies them before the sink
 * returns.
 *
 * The rules a vendor cannot guess, which the host relies on:
 *
 *   Names are the driver's memory on the array. The host names every object
 *   it asks for (a group, each snapshot of a group snapshot, an exposure, a
 *   fence) with a name derived from the set or snapshot id. The driver must
 *   store that name on the array -- as the object's name, or in a label or
 *   description when the array chooses names itself -- and report it in
 *   every listing. After a lost reply, a 500 that left some snapshots behind,
 *   or a host that died, the host finds its objects again only by name.
 *
 *   Deletes are idempotent. Deleting a group, snapshot, exposure or fence
 *   that does not exist (any more) is SNAPSET_OK.
 *
 *   SNAPSET_E_HOLD_WRITES_TIMEOUT means "the commit window's deadline passed":
 *   only snapshot_group and start_fence return it, only when the call has
 *   SNAPSET_ARRAY_CALL_IN_WINDOW, and only when the deadline passed before
 *   the array answered. Every other call whose deadline passes returns
 *   SNAPSET_E_UNAVAILABLE. Either way, an operation the array may still be
 *   running (a request sent whose answer never came, an asynchronous job
 *   still polled) is remembered, so that settle() can wait for it.
 *
 *   A 409 (conflict) while deleting -- the array has a job running on the
 *   object, or it is still exposed -- is SNAPSET_E_BAD_STATE, never OK: the
 *   object is still there. An abort calls settle() before it deletes
 *   anything; a delete that still fails makes the abort fail, which the
 *   host records (the set is "abort-incomplete", with the driver's message
 *   naming the object), and every later command retries it.
 *
 *   A name already taken (create_group, the names of snapshot_group,
 *   expose, start_fence) is SNAPSET_E_ALREADY_EXISTS, with nothing made.
 *
 *   The array refusing the credentials is SNAPSET_E_INVALID_ARGUMENT, with a
 *   message naming the config field that gave them.
 *
 * This header includes only provider.h (for the status codes, log levels and
 * export macros), <stdint.h> and <stddef.h>.
 */
#ifndef SNAPSET_ARRAY_H
#define SNAPSET_ARRAY_H

#include <snapset/provider.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- versions */

#define SNAPSET_ARRAY_ABI_VERSION_MAJOR 1
#define SNAPSET_ARRAY_ABI_VERSION_MINOR 1
#define SNAPSET_ARRAY_ABI_VERSION \
  SNAPSET_ABI_MAKE_VERSION(SNAPSET_ARRAY_ABI_VERSION_MAJOR, SNAPSET_ARRAY_ABI_VERSION_MINOR)

/* The one symbol a driver library exports. */
#define SNAPSET_ARRAY_DRIVER_ENTRY_SYMBOL "snapset_array_driver_entry"

/* ------------------------------------------------------- opaque handles */

/* One open instance of a driver, talking to one array; made by open(). */
typedef struct snapset_array snapset_array;
/* The host's own context for log(). */
typedef struct snapset_array_host_context snapset_array_host_context;

/* ---------------------------------------------------------------- calls */

/* snapset_array_call.options */
enum {
  /* The driver may resend after 429 / 503 (honouring Retry-After) and after
   * a transport failure of a request that changes nothing, as long as the
   * deadline allows. Without it: one attempt, whatever it gives. */
  SNAPSET_ARRAY_CALL_RETRY = 1u << 0,
  /* The call runs inside the commit window, writes held: no logging that
   * may block, no request but the one the operation needs (and the polls of
   * its job), and a deadline passed is SNAPSET_E_HOLD_WRITES_TIMEOUT. */
  SNAPSET_ARRAY_CALL_IN_WINDOW = 1u << 1
};

/* One operation in progress. Made by the host, read-only to the driver. */
typedef struct snapset_array_call {
  uint32_t struct_size; /* sizeof(snapset_array_call) as the host knows it */
  uint32_t options;     /* SNAPSET_ARRAY_CALL_* */
  /* Absolute deadline, nanoseconds of CLOCK_MONOTONIC; INT64_MAX: none. */
  int64_t deadline_ns;
} snapset_array_call;

/* ------------------------------------------------------------ host table */

/* Services the host offers a driver. Passed to open(); valid until close()
 * returns. All callbacks are thread-safe. */
typedef struct snapset_array_host {
  uint32_t abi_version; /* SNAPSET_ARRAY_ABI_VERSION the host was built with */
  uint32_t struct_size; /* sizeof(snapset_array_host) as the host knows it */
  snapset_array_host_context *context;

  /* 1.0 */

  /* Records a log line (SNAPSET_LOG_* level). Never blocks, never fails. */
  void (*log)(snapset_array_host_context *context, int32_t level, const char *message);

  /* Sets the message that explains a non-OK return of `call`; the last one
   * set wins, and the host copies it. */
  void (*set_error)(const snapset_array_call *call, const char *message);
} snapset_array_host;

/* ---------------------------------------------------------- array objects */

/* A volume or a snapshot, as the array lists it. */
typedef struct snapset_array_volume {
  uint32_t struct_size;
  uint32_t block_size;      /* logical block size in bytes; 0 if unknown */
  const char *id;           /* the array's handle for it, used in every call */
  const char *name;         /* its name (for a snapshot: the name it was given) */
  const char *naa;          /* NAA as VPD 0x83 reports it, lower-case hex */
  const char *serial;       /* VPD 0x80 unit serial number, trimmed; NULL: none */
  uint64_t capacity_bytes;
  const char *source_id;    /* a snapshot's source volume id; NULL for a volume */
  int64_t created_ns;       /* CLOCK_REALTIME ns since the epoch; 0: unknown */
} snapset_array_volume;

/* A consistency group: volumes the array snapshots at one instant. */
typedef struct snapset_array_group {
  uint32_t struct_size;
  uint32_t member_count;
  const char *id;
  const char *name;
  const char *const *member_ids; /* member_count volume ids, the array's order */
} snapset_array_group;

/* What snapshot_group is asked to do. */
typedef struct snapset_array_snapshot_request {
  uint32_t struct_size;
  uint32_t name_count;           /* 0 (the array names them) or member_count */
  const snapset_array_group *group;
  /* One name per member, in member order: the snapshot of member i is
   * named names[i]. */
  const char *const *names;
  /* The fence this set holds on the members (start_fence), or NULL. A
   * two-phase array commits the snapshot it started with the fence. */
  const char *fence_id;
} snapset_array_snapshot_request;

/* What expose is asked to do: map volumes as LUNs of one target, for one
 * initiator. */
typedef struct snapset_array_expose_request {
  uint32_t struct_size;
  uint32_t volume_count;
  const char *const *volume_ids; /* mapped as LUNs in this order */
  const char *initiator_iqn;
  const char *chap_user;   /* NULL: no CHAP */
  const char *chap_secret; /* secret: never log it */
  const char *name;        /* the exposure's name (see "Names" above) */
  uint32_t read_only;      /* non-zero: the initiator may not write */
  uint32_t reserved;
} snapset_array_expose_request;

/* One exposure: a target on the array mapping volumes to an initiator. */
typedef struct snapset_array_exposure {
  uint32_t struct_size;
  uint32_t volume_count;
  const char *id;
  const char *name;
  const char *target_iqn;
  const char *portal;            /* host:port the target listens on */
  const char *initiator_iqn;     /* who may log in; NULL if unknown */
  const char *const *volume_ids; /* volume_count ids; volume_ids[i] is LUN luns[i] */
  const int32_t *luns;
} snapset_array_exposure;

/* What start_fence is asked to do: hold every write to these volumes until
 * lift_fence, and lift the fence by itself after timeout_ms whatever the
 * host does (the host may die). */
typedef struct snapset_array_fence_request {
  uint32_t struct_size;
  uint32_t volume_count;
  const char *const *volume_ids;
  const char *name;
  uint32_t timeout_ms; /* > 0: the array lifts the fence this long after it starts */
  uint32_t reserved;
  /* 1.1: the same end as a time, CLOCK_REALTIME nanoseconds since the epoch
   * (0: not given): no write may be held past it, also when the request
   * reaches the array late. A driver whose array takes an absolute end
   * sends this one; else it sends timeout_ms, less the time the request
   * waited, and answers HOLD_WRITES_TIMEOUT, with no fence made, when the
   * end has passed before the request could be sent. */
  int64_t expires_realtime_ns;
} snapset_array_fence_request;

/* A fence that is up. */
typedef struct snapset_array_fence {
  uint32_t struct_size;
  uint32_t volume_count;
  const char *id;
  const char *name;
  const char *const *volume_ids;
  int64_t remaining_ms; /* until the array lifts it by itself; -1: unknown */
} snapset_array_fence;

/* Counters a driver keeps, for tests and benchmarks. */
typedef struct snapset_array_counters {
  uint32_t struct_size; /* set by the host: how much of this it knows */
  uint32_t reserved;
  uint64_t requests;    /* requests sent to the array, log-ins and polls included */
  uint64_t logins;
} snapset_array_counters;

typedef void (*snapset_array_volume_sink)(void *cookie, const snapset_array_volume *volume);
typedef void (*snapset_array_group_sink)(void *cookie, const snapset_array_group *group);
typedef void (*snapset_array_exposure_sink)(void *cookie,
                                            const snapset_array_exposure *exposure);
typedef void (*snapset_array_fence_sink)(void *cookie, const snapset_array_fence *fence);

/* ------------------------------------------------------------ ops table */

typedef struct snapset_array_driver_ops {
  uint32_t abi_version; /* SNAPSET_ARRAY_ABI_VERSION the driver was built with */
  uint32_t struct_size; /* sizeof(snapset_array_driver_ops) the driver knows */

  /* ---- 1.0 ---- */

  /* Opens an instance for one array. config_json is the array's entry of
   * the iSCSI provider's config, without the keys the provider owns (name,
   * driver, portals, chap_file): everything else is the driver's, and a key
   * it does not know is an error naming the key. May check the config fully
   * and need not talk to the array. Returns: OK, INVALID_ARGUMENT (bad
   * config: the message names the field), UNAVAILABLE. */
  snapset_status (*open)(const snapset_array_host *host, const snapset_array_call *call,
                         uint32_t flags, const char *config_json, snapset_array **out);

  /* Closes the instance (log out, best effort, briefly). Called once, after
   * every other call returned. Must not fail. */
  void (*close)(snapset_array *array, uint32_t flags);

  /* Optional (NULL: nothing to warm). Logs in and opens the connection, so
   * that the next call pays neither a log-in nor a handshake: the host calls
   * it just before the commit window. Returns: OK, UNAVAILABLE. */
  snapset_status (*warm)(snapset_array *array, const snapset_array_call *call, uint32_t flags);

  /* Inventory: calls sink once per volume and once per snapshot of the
   * array. Returns: OK, UNAVAILABLE. */
  snapset_status (*list_volumes)(snapset_array *array, const snapset_array_call *call,
                                 uint32_t flags, snapset_array_volume_sink sink, void *cookie);

  /* Calls sink once per consistency group. Returns: OK, UNAVAILABLE. */
  snapset_status (*list_groups)(snapset_array *array, const snapset_array_call *call,
                                uint32_t flags, snapset_array_group_sink sink, void *cookie);

  /* Makes a group named `name` of these volumes; calls sink once with it.
   * Returns: OK, NOT_FOUND (a member), ALREADY_EXISTS (the name), BAD_STATE
   * (a member cannot join a group now), UNAVAILABLE. */
  snapset_status (*create_group)(snapset_array *array, const snapset_array_call *call,
                                 uint32_t flags, const char *name,
                                 const char *const *member_ids, uint32_t member_count,
                                 snapset_array_group_sink sink, void *cookie);

  /* Deletes the group (not its volumes, not their snapshots). Idempotent.
   * Returns: OK, BAD_STATE (409: a job still runs on it), UNAVAILABLE. */
  snapset_status (*delete_group)(snapset_array *array, const snapset_array_call *call,
                                 uint32_t flags, const char *group_id);

  /* THE COMMIT: one request that snapshots every member of the group at one
   * instant, plus the polls of its job if the array answers asynchronously.
   * Calls sink once per snapshot, in the group's member order. A name
   * already taken fails the call with nothing made. Inside the window the
   * call has SNAPSET_ARRAY_CALL_IN_WINDOW and no RETRY. Returns: OK,
   * HOLD_WRITES_TIMEOUT, ALREADY_EXISTS, NOT_FOUND (the group is gone),
   * INSUFFICIENT_STORAGE, MAX_SNAPSHOTS, BAD_STATE, UNAVAILABLE. */
  snapset_status (*snapshot_group)(snapset_array *array, const snapset_array_call *call,
                                   uint32_t flags,
                                   const snapset_array_snapshot_request *request,
                                   snapset_array_volume_sink sink, void *cookie);

  /* Deletes a snapshot. Idempotent. Returns: OK, BAD_STATE (409: exposed,
   * or a job runs on it), UNAVAILABLE. */
  snapset_status (*delete_snapshot)(snapset_array *array, const snapset_array_call *call,
                                    uint32_t flags, const char *snapshot_id);

  /* Maps volumes to an initiator; calls sink once with the exposure.
   * Returns: OK, NOT_FOUND (a volume), ALREADY_EXISTS (the name),
   * UNAVAILABLE. */
  snapset_status (*expose)(snapset_array *array, const snapset_array_call *call, uint32_t flags,
                           const snapset_array_expose_request *request,
                           snapset_array_exposure_sink sink, void *cookie);

  /* Removes an exposure. Idempotent. Returns: OK, BAD_STATE, UNAVAILABLE. */
  snapset_status (*unexpose)(snapset_array *array, const snapset_array_call *call,
                             uint32_t flags, const char *exposure_id);

  /* Calls sink once per exposure of the array (made by anyone: the host
   * finds its own by name). Returns: OK, UNAVAILABLE. */
  snapset_status (*list_exposures)(snapset_array *array, const snapset_array_call *call,
                                   uint32_t flags, snapset_array_exposure_sink sink,
                                   void *cookie);

  /* Waits, within the call's deadline, for every operation this instance
   * started that was still running when an earlier call's deadline passed.
   * The host calls it before cleaning up, so that a snapshot finishing late
   * is found and deleted, not leaked. Returns: OK (nothing still running),
   * UNAVAILABLE (something still runs at the deadline). */
  snapset_status (*settle)(snapset_array *array, const snapset_array_call *call,
                           uint32_t flags);

  /* Optional (NULL: not offered). Restores volume_id's data from one of its
   * snapshots. Returns: OK, NOT_FOUND, BAD_STATE (e.g. the volume is in
   * use), UNAVAILABLE. */
  snapset_status (*revert)(snapset_array *array, const snapset_array_call *call, uint32_t flags,
                           const char *volume_id, const char *snapshot_id);

  /* Optional write fences, for arrays that can hold writes on their LUNs
   * (all three NULL, or none). start_fence holds every write to the volumes
   * -- a write in flight completes, a new one waits -- and calls sink once
   * with the fence, before it returns; the array lifts the fence by itself
   * after request->timeout_ms. lift_fence releases the writes; idempotent
   * (a fence already lifted or expired is OK) and fast: the host calls it at
   * the window's deadline. list_fences calls sink once per fence up.
   * start_fence returns: OK, HOLD_WRITES_TIMEOUT, ALREADY_EXISTS, NOT_FOUND,
   * BAD_STATE (a volume already fenced), UNAVAILABLE. lift_fence and
   * list_fences return: OK, UNAVAILABLE. */
  snapset_status (*start_fence)(snapset_array *array, const snapset_array_call *call,
                                uint32_t flags, const snapset_array_fence_request *request,
                                snapset_array_fence_sink sink, void *cookie);
  snapset_status (*lift_fence)(snapset_array *array, const snapset_array_call *call,
                               uint32_t flags, const char *fence_id);
  snapset_status (*list_fences)(snapset_array *array, const snapset_array_call *call,
                                uint32_t flags, snapset_array_fence_sink sink, void *cookie);

  /* Optional. Fills the members of *out that out->struct_size covers. Makes
   * no request. Returns: OK. */
  snapset_status (*get_counters)(snapset_array *array, uint32_t flags,
                                 snapset_array_counters *out);

  /* ---- new members are added below, grouped by the minor version ---- */
} snapset_array_driver_ops;

/* The entry point every driver library exports. Returns a table with static
 * storage duration; never NULL. Must not do I/O. */
typedef const snapset_array_driver_ops *(*snapset_array_driver_entry_fn)(void);

/* Sizes pinned for array ABI 1.1 on LP64 (1.0's fence request ended before
 * expires_realtime_ns). A change here breaks every driver. */
#if defined(__LP64__)
SNAPSET_STATIC_ASSERT(sizeof(snapset_array_call) == 16, "snapset_array_call 1.0 layout");
SNAPSET_STATIC_ASSERT(sizeof(snapset_array_host) == 32, "snapset_array_host 1.0 layout");
SNAPSET_STATIC_ASSERT(sizeof(snapset_array_volume) == 64, "snapset_array_volume 1.0 layout");
SNAPSET_STATIC_ASSERT(sizeof(snapset_array_group) == 32, "snapset_array_group 1.0 layout");
SNAPSET_STATIC_ASSERT(sizeof(snapset_array_snapshot_request) == 32,
                      "snapset_array_snapshot_request 1.0 layout");
SNAPSET_STATIC_ASSERT(sizeof(snapset_array_expose_request) == 56,
                      "snapset_array_expose_request 1.0 layout");
SNAPSET_STATIC_ASSERT(sizeof(snapset_array_exposure) == 64,
                      "snapset_array_exposure 1.0 layout");
SNAPSET_STATIC_ASSERT(sizeof(snapset_array_fence_request) == 40,
                      "snapset_array_fence_request 1.1 layout");
SNAPSET_STATIC_ASSERT(offsetof(snapset_array_fence_request, expires_realtime_ns) == 32,
                      "1.1 members of the fence request follow every 1.0 member");
SNAPSET_STATIC_ASSERT(sizeof(snapset_array_fence) == 40, "snapset_array_fence 1.0 layout");
SNAPSET_STATIC_ASSERT(sizeof(snapset_array_counters) == 24,
                      "snapset_array_counters 1.0 layout");
SNAPSET_STATIC_ASSERT(sizeof(snapset_array_driver_ops) == 8 + 18 * 8,
                      "snapset_array_driver_ops 1.0 layout");
SNAPSET_STATIC_ASSERT(offsetof(snapset_array_driver_ops, open) == 8,
                      "ops table starts with abi_version, struct_size");
#endif

#ifdef __cplusplus
}
#endif

#endif /* SNAPSET_ARRAY_H */
