/*
 * snapset provider ABI: the C interface between the snapset coordinator (the
 * "host") and a snapshot provider plugin.
 *
 * A provider is a shared library that exports exactly one symbol,
 * snapset_provider_entry (see SNAPSET_PROVIDER_ENTRY_SYMBOL), which returns a
 * pointer to a static, immutable table of operations (snapset_provider_ops).
 * The host dlopen()s the library, looks the symbol up with dlsym(), checks the
 * table's ABI version and size, then calls on_load() once per registration.
 * Every other call receives the opaque instance on_load() created.
 *
 * Compatibility promise to vendors:
 *   - The major version changes only when a released member changes meaning.
 *     The host refuses a plugin whose major version it does not speak.
 *   - The minor version grows when members are added, always at the END of a
 *     struct. Every growable struct starts with a struct_size (and the ops and
 *     host tables also with abi_version), so either side can tell which members
 *     the other knows. A host and a plugin of different minor versions
 *     interoperate: the host treats members beyond the plugin's struct_size as
 *     NULL, a plugin must not read host members beyond the host's struct_size.
 *   - Sizes are pinned with static asserts at the end of this file.
 *
 * Errors: every operation returns a snapset_status. On failure the provider
 * explains what went wrong in one sentence with host->set_error(call, msg).
 * The codes each operation may return are listed with it; SNAPSET_E_INTERNAL
 * and SNAPSET_E_INVALID_ARGUMENT may be returned by any of them.
 *
 * Flags: every operation takes a flags word. A provider MUST reject bits it
 * does not know with SNAPSET_E_INVALID_ARGUMENT, so that flags can be added
 * later without old plugins silently ignoring them. ABI 1.0 defines no flags;
 * all flags words are 0.
 *
 * Threads: the host may call operations for different snapshot sets
 * concurrently, and calls of one phase of one set (for instance
 * begin_prepare_snapshot for several volumes) concurrently. A provider must be
 * thread-safe with respect to its instance. No C++ exception may leave any of
 * these functions (provider.hpp guarantees this for providers built on it).
 *
 * I/O: see each event. In short: commit_snapshots runs while writes to the
 * volumes of the set are held; it must not do I/O to those volumes and must
 * not block (no blocking logging, no locks held by slow paths); it should
 * return within one second and must return before host->deadline_ns(call).
 *
 * Ownership: every pointer the host passes is owned by the host and valid only
 * for the duration of the call. Strings are NUL-terminated UTF-8. Data the
 * provider hands back (snapshot properties, exposure paths) is passed to a
 * host callback during the call; the host copies it before the callback
 * returns, so the provider may free it afterwards.
 *
 * This header includes only <stdint.h> and <stddef.h>.
 */
#ifndef SNAPSET_PROVIDER_H
#define SNAPSET_PROVIDER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- versions */

#define SNAPSET_ABI_VERSION_MAJOR 1
#define SNAPSET_ABI_VERSION_MINOR 3
#define SNAPSET_ABI_MAKE_VERSION(major, minor) \
  ((uint32_t)(((uint32_t)(major) << 16) | ((uint32_t)(minor)&0xffffu)))
#define SNAPSET_ABI_VERSION \
  SNAPSET_ABI_MAKE_VERSION(SNAPSET_ABI_VERSION_MAJOR, SNAPSET_ABI_VERSION_MINOR)
#define SNAPSET_ABI_MAJOR(v) ((uint32_t)(v) >> 16)
#define SNAPSET_ABI_MINOR(v) ((uint32_t)(v)&0xffffu)

/* The one symbol a provider library exports. */
#define SNAPSET_PROVIDER_ENTRY_SYMBOL "snapset_provider_entry"

#if defined(__GNUC__)
#define SNAPSET_EXPORT __attribute__((visibility("default")))
#else
#define SNAPSET_EXPORT
#endif

/* True when *ptr, a struct whose struct_size says how much of it the other
 * side knows, is large enough to hold `member`. Read a member the other side
 * may not know only after this check. */
#define SNAPSET_HAS_MEMBER(ptr, type, member) \
  ((ptr)->struct_size >= offsetof(type, member) + sizeof((ptr)->member))

/* ------------------------------------------------------------ status codes */

/* Meanings follow VSS and CSI. Values are stable; new codes are added at the
 * end. A host that receives a code it does not know treats it as INTERNAL. */
typedef int32_t snapset_status;
enum {
  SNAPSET_OK = 0,
  SNAPSET_E_INVALID_ARGUMENT = 1,     /* caller error: bad id, flags, struct */
  SNAPSET_E_NOT_FOUND = 2,            /* no such snapshot, set or volume */
  SNAPSET_E_ALREADY_EXISTS = 3,       /* an object with this id exists */
  SNAPSET_E_VOLUME_NOT_SUPPORTED = 4, /* this provider cannot snapshot it */
  SNAPSET_E_PROVIDER_VETO = 5,        /* provider refuses now, see message */
  SNAPSET_E_BAD_STATE = 6,            /* event out of order for this set */
  SNAPSET_E_HOLD_WRITES_TIMEOUT = 7,  /* the commit window's deadline passed */
  SNAPSET_E_WRITER_TIMEOUT = 8,       /* a writer did not answer in time */
  SNAPSET_E_WRITER_FAILED = 9,        /* a writer reported failure */
  SNAPSET_E_INSUFFICIENT_STORAGE = 10,/* no room for the snapshot */
  SNAPSET_E_MAX_SNAPSHOTS = 11,       /* per-volume snapshot limit reached */
  SNAPSET_E_MAX_VOLUMES = 12,         /* per-set volume limit reached */
  SNAPSET_E_UNAVAILABLE = 13,         /* transient: retry later may succeed */
  SNAPSET_E_INTERNAL = 14,            /* a bug or an unexpected failure */
  SNAPSET_E_NOT_IMPLEMENTED = 15      /* optional operation not offered */
};

/* ----------------------------------------------------- opaque handles */

/* One loaded registration of a provider; created by on_load. */
typedef struct snapset_provider snapset_provider;
/* One operation in progress; identifies the call to the host callbacks. */
typedef struct snapset_call snapset_call;
/* The host's own context for callbacks not tied to a call (logging). */
typedef struct snapset_host_context snapset_host_context;

/* ------------------------------------------------------------ host table */

enum {
  SNAPSET_LOG_ERROR = 0,
  SNAPSET_LOG_WARNING = 1,
  SNAPSET_LOG_INFO = 2,
  SNAPSET_LOG_DEBUG = 3
};

/* Services the host offers a provider. Passed to on_load; valid until
 * on_unload returns. All callbacks are thread-safe. */
typedef struct snapset_host {
  uint32_t abi_version; /* SNAPSET_ABI_VERSION the host was built with */
  uint32_t struct_size; /* sizeof(snapset_host) as the host knows it */
  snapset_host_context *context;

  /* 1.0 */

  /* Records a log line. Never blocks and never fails: when the host's log
   * queue is full the line is dropped and counted. Safe inside
   * commit_snapshots and from any thread the provider owns. */
  void (*log)(snapset_host_context *context, int32_t level,
              const char *message);

  /* Absolute deadline of the current call, in nanoseconds of
   * CLOCK_MONOTONIC. Inside commit_snapshots it is the end of the commit
   * window. INT64_MAX when the call has no deadline. */
  int64_t (*deadline_ns)(snapset_call *call);

  /* Non-zero once the host has given up on this call (the window expired
   * or the user cancelled). Long operations should poll it and return
   * SNAPSET_E_HOLD_WRITES_TIMEOUT or SNAPSET_E_UNAVAILABLE promptly. */
  int32_t (*is_cancelled)(snapset_call *call);

  /* Sets the message that explains a non-OK return of this call. The last
   * message set wins; the host copies it. A message set by an
   * is_volume_supported that returns OK says why the provider supports the
   * volume (e.g. which array holds it); `snapset providers explain` shows it.
   * Any other OK return ignores it. */
  void (*set_error)(snapset_call *call, const char *message);
} snapset_host;

/* ----------------------------------------------------------- volumes */

enum {
  SNAPSET_VOLUME_FILESYSTEM = 1, /* a mounted filesystem (mount_point set) */
  SNAPSET_VOLUME_BLOCK = 2,      /* a kernel block device, not mounted */
  SNAPSET_VOLUME_ISCSI = 3,      /* iscsi://host:port/iqn/lun, userspace */
  SNAPSET_VOLUME_COW = 4         /* cow:NAME, a software-cow volume */
};

/* SPC-4 designation descriptor association and type values for VPD 0x83. */
enum {
  SNAPSET_DESIGNATOR_ASSOC_LOGICAL_UNIT = 0,
  SNAPSET_DESIGNATOR_TYPE_VENDOR_SPECIFIC = 0,
  SNAPSET_DESIGNATOR_TYPE_T10_VENDOR_ID = 1,
  SNAPSET_DESIGNATOR_TYPE_EUI64 = 2,
  SNAPSET_DESIGNATOR_TYPE_NAA = 3,
  SNAPSET_DESIGNATOR_TYPE_SCSI_NAME = 8
};

/* One logical-unit designator from INQUIRY VPD page 0x83. */
typedef struct snapset_designator {
  uint8_t type;        /* SNAPSET_DESIGNATOR_TYPE_* */
  uint8_t code_set;    /* 1 binary, 2 ASCII, 3 UTF-8 */
  uint8_t association; /* always SNAPSET_DESIGNATOR_ASSOC_LOGICAL_UNIT */
  uint8_t reserved;
  uint32_t length;      /* bytes in value */
  const uint8_t *value; /* raw designator bytes as on the wire */
} snapset_designator;

/* What the host knows of a volume. Members that do not apply are NULL / 0. */
typedef struct snapset_volume {
  uint32_t struct_size;
  uint32_t kind;           /* SNAPSET_VOLUME_* */
  const char *name;        /* canonical name: mount point, device, URL, cow: */
  const char *device_path; /* /dev/..., iscsi://..., cow:NAME; NULL if none */
  uint64_t size_bytes;
  uint32_t block_size;     /* logical block size in bytes */
  uint32_t designator_count;
  const char *mount_point; /* NULL unless mounted */
  const char *filesystem;  /* e.g. "ext4"; NULL unless mounted */
  /* Preferred identity: hex of the NAA designator's bytes (lower case, e.g.
   * "6001405..."), NULL when the volume has no NAA designator. */
  const char *naa;
  const char *serial; /* VPD 0x80 unit serial number, trimmed; NULL if none */
  const snapset_designator *designators; /* designator_count entries */
} snapset_volume;

/* ---------------------------------------------------------- snapshots */

/* Snapshot and context attributes (bit set). */
enum {
  SNAPSET_ATTR_PERSISTENT = 1u << 0,        /* survives the requestor */
  SNAPSET_ATTR_AUTO_RELEASE = 1u << 1,      /* deleted when requestor ends */
  SNAPSET_ATTR_NO_WRITERS = 1u << 2,        /* taken without writers */
  SNAPSET_ATTR_HARDWARE_ASSISTED = 1u << 3, /* cut by an array */
  SNAPSET_ATTR_READ_ONLY = 1u << 4,
  SNAPSET_ATTR_EXPOSED = 1u << 5,
  SNAPSET_ATTR_CRASH_CONSISTENT = 1u << 6,  /* writes could not be held */
  /* Added after 1.2, with no version change (no layout changed): set by a
   * provider that offers revert_to_snapshot but cannot revert THIS snapshot
   * (say, an array whose driver has no revert), so that the host refuses a
   * set's revert before any volume changes. A provider that does not know
   * the bit never sets it, which means "revert as offered". */
  SNAPSET_ATTR_NO_REVERT = 1u << 7,
  /* 1.3: the provider still holds the snapshot but can no longer give back
   * its contents (a software provider's diff area lost data it needed);
   * snapset_snapshot_properties.invalid_reason says why. The host marks the
   * snapshot lost in its catalog. */
  SNAPSET_ATTR_INVALID = 1u << 8
};

/* Per-set provider state machine (DESIGN §3). */
enum {
  SNAPSET_STATE_IDLE = 0,
  SNAPSET_STATE_PREPARING = 1,
  SNAPSET_STATE_PREPARED = 2,
  SNAPSET_STATE_PRECOMMITTED = 3,
  SNAPSET_STATE_COMMITTED = 4,
  SNAPSET_STATE_POSTCOMMITTED = 5,
  SNAPSET_STATE_COMPLETE = 6,
  SNAPSET_STATE_ABORTED = 7
};

typedef struct snapset_snapshot_properties {
  uint32_t struct_size;
  int32_t state;               /* SNAPSET_STATE_* */
  const char *snapshot_id;     /* UUID, lower case */
  const char *set_id;          /* UUID of the set it was created in */
  const char *original_volume; /* snapset_volume.name at creation */
  const char *provider_id;     /* ignored from providers: the host fills in
                                  the id of the registration that answered */
  int64_t creation_time_ns;    /* CLOCK_REALTIME, nanoseconds since epoch */
  uint32_t attributes;         /* SNAPSET_ATTR_* */
  uint32_t reserved;
  const char *exposed_as;      /* path or URL while exposed, else NULL */
  /* Identity of the snapshot's own device (e.g. the array replica's NAA),
   * NULL if it has none. */
  const char *snapshot_device;
  /* ---- 1.3 ---- */
  /* With SNAPSET_ATTR_INVALID: why the snapshot cannot be read, one
   * sentence; else NULL. */
  const char *invalid_reason;
} snapset_snapshot_properties;

/* Receives one byte range from changed_blocks (1.3). */
typedef void (*snapset_range_sink)(void *cookie, uint64_t offset,
                                   uint64_t length);

/* Receives snapshot properties from list_snapshots / get_snapshot_properties.
 * The host copies what it needs before returning. */
typedef void (*snapset_properties_sink)(void *cookie,
                                        const snapset_snapshot_properties *p);
/* Receives one string result (the exposure path or URL). */
typedef void (*snapset_string_sink)(void *cookie, const char *value);

/* 1.2: an object a provider made for snapset on its storage, other than a
 * snapshot (list_snapshots lists those): a consistency group, a write
 * fence, an exposure. Names are the provider's memory: the object's name
 * says which set or snapshot it was made for. */
typedef struct snapset_provider_object {
  uint32_t struct_size;
  uint32_t reserved;
  const char *kind;        /* short noun: "group", "fence", "exposure" */
  const char *name;        /* its name where it lives */
  const char *location;    /* where it lives: "array a1", a daemon's socket */
  const char *set_id;      /* the set it was made for, or NULL */
  const char *snapshot_id; /* the snapshot it was made for, or NULL */
} snapset_provider_object;

typedef void (*snapset_object_sink)(void *cookie, const snapset_provider_object *object);

/* ------------------------------------------------------------ ops table */

typedef struct snapset_provider_ops {
  uint32_t abi_version; /* SNAPSET_ABI_VERSION the plugin was built with */
  uint32_t struct_size; /* sizeof(snapset_provider_ops) the plugin knows */

  /* ---- 1.0 ---- */

  /* Creates an instance for one registration. config_json is the
   * registration's "config" object as JSON text ("{}" if absent). The host
   * table stays valid until on_unload returns. May do I/O.
   * Returns: OK, INVALID_ARGUMENT (bad config), UNAVAILABLE. */
  snapset_status (*on_load)(const snapset_host *host, snapset_call *call,
                            uint32_t flags, const char *config_json,
                            snapset_provider **out_instance);

  /* Destroys the instance. Called once, after every other call returned.
   * Must not fail. */
  void (*on_unload)(snapset_provider *instance, uint32_t flags);

  /* Planning: can this provider snapshot the whole volume (all its LUNs)?
   * context is a set of SNAPSET_ATTR_* the requestor asked for. May do I/O.
   * Returns: OK (supported), VOLUME_NOT_SUPPORTED (with the reason as the
   * message), UNAVAILABLE. */
  snapset_status (*is_volume_supported)(snapset_provider *instance,
                                        snapset_call *call, uint32_t flags,
                                        const snapset_volume *volume,
                                        uint32_t context);

  /* Once per volume of the set; state Idle/Preparing -> Preparing. Long work
   * should start asynchronously and be awaited in end_prepare_snapshots.
   * Returns: OK, VOLUME_NOT_SUPPORTED, MAX_SNAPSHOTS, INSUFFICIENT_STORAGE,
   * ALREADY_EXISTS (snapshot id reused), PROVIDER_VETO, BAD_STATE,
   * UNAVAILABLE. */
  snapset_status (*begin_prepare_snapshot)(snapset_provider *instance,
                                           snapset_call *call, uint32_t flags,
                                           const char *set_id,
                                           const char *snapshot_id,
                                           const snapset_volume *volume,
                                           uint32_t context);

  /* Rendezvous after the last begin_prepare; may block until preparation is
   * done. Preparing -> Prepared. Returns: OK, PROVIDER_VETO,
   * INSUFFICIENT_STORAGE, BAD_STATE, UNAVAILABLE. */
  snapset_status (*end_prepare_snapshots)(snapset_provider *instance,
                                          snapset_call *call, uint32_t flags,
                                          const char *set_id);

  /* Writers are frozen; writes are about to be held. Warm up whatever commit
   * needs (sessions, connections). Brief I/O allowed.
   * Prepared -> PreCommitted. Returns: OK, PROVIDER_VETO, BAD_STATE,
   * UNAVAILABLE. */
  snapset_status (*pre_commit_snapshots)(snapset_provider *instance,
                                         snapset_call *call, uint32_t flags,
                                         const char *set_id);

  /* Inside the commit window, writes held: cut the point-in-time copy. No
   * I/O to the held volumes, no blocking calls, target under 1 s, never past
   * host->deadline_ns(call). PreCommitted -> Committed.
   * Returns: OK, HOLD_WRITES_TIMEOUT, PROVIDER_VETO, BAD_STATE,
   * UNAVAILABLE. */
  snapset_status (*commit_snapshots)(snapset_provider *instance,
                                     snapset_call *call, uint32_t flags,
                                     const char *set_id);

  /* Writes released, writers still frozen. Resolve snapshot identities.
   * Committed -> PostCommitted. Returns: OK, BAD_STATE, UNAVAILABLE. */
  snapset_status (*post_commit_snapshots)(snapset_provider *instance,
                                          snapset_call *call, uint32_t flags,
                                          const char *set_id);

  /* After writers thaw. Optional (NULL = nothing to do).
   * pre_final_commit: PostCommitted -> PostCommitted;
   * post_final_commit: PostCommitted -> Complete.
   * Returns: OK, BAD_STATE, UNAVAILABLE. */
  snapset_status (*pre_final_commit_snapshots)(snapset_provider *instance,
                                               snapset_call *call,
                                               uint32_t flags,
                                               const char *set_id);
  snapset_status (*post_final_commit_snapshots)(snapset_provider *instance,
                                                snapset_call *call,
                                                uint32_t flags,
                                                const char *set_id);

  /* Undo everything this set created, from any state before Complete.
   * Idempotent: aborting an unknown or already aborted set returns OK.
   * "Unknown" means unknown to the provider, not to this instance: after a
   * crash the host's next start aborts the sets the dead process left
   * unfinished, with a new instance, so a provider whose snapshots outlive
   * the process must undo what an earlier instance prepared.
   * Returns: OK, BAD_STATE (set already complete, also when an earlier
   * instance completed it; the host then deletes its snapshots),
   * UNAVAILABLE. */
  snapset_status (*abort_snapshots)(snapset_provider *instance,
                                    snapset_call *call, uint32_t flags,
                                    const char *set_id);

  /* Management. Returns: OK, NOT_FOUND, BAD_STATE (e.g. exposed),
   * UNAVAILABLE. */
  snapset_status (*delete_snapshot)(snapset_provider *instance,
                                    snapset_call *call, uint32_t flags,
                                    const char *snapshot_id);

  /* Calls sink once per snapshot this instance holds. Returns: OK,
   * UNAVAILABLE. */
  snapset_status (*list_snapshots)(snapset_provider *instance,
                                   snapset_call *call, uint32_t flags,
                                   snapset_properties_sink sink, void *cookie);

  /* Calls sink exactly once on OK. Returns: OK, NOT_FOUND, UNAVAILABLE. */
  snapset_status (*get_snapshot_properties)(snapset_provider *instance,
                                            snapset_call *call, uint32_t flags,
                                            const char *snapshot_id,
                                            snapset_properties_sink sink,
                                            void *cookie);

  /* Makes a snapshot readable on this host; calls sink once with the path or
   * URL on OK. Optional. Returns: OK, NOT_FOUND, BAD_STATE, UNAVAILABLE. */
  snapset_status (*expose_snapshot)(snapset_provider *instance,
                                    snapset_call *call, uint32_t flags,
                                    const char *snapshot_id,
                                    snapset_string_sink sink, void *cookie);
  snapset_status (*unexpose_snapshot)(snapset_provider *instance,
                                      snapset_call *call, uint32_t flags,
                                      const char *snapshot_id);

  /* Restores the original volume from a snapshot. Optional (NULL).
   * Returns: OK, NOT_FOUND, BAD_STATE, UNAVAILABLE. */
  snapset_status (*revert_to_snapshot)(snapset_provider *instance,
                                       snapset_call *call, uint32_t flags,
                                       const char *snapshot_id);

  /* Holding writes on volumes only the provider can hold (optional; NULL
   * means it cannot). The host holds a filesystem with FIFREEZE itself; for
   * a volume that is not a mounted filesystem -- a software-cow volume, whose
   * daemon has a write gate, or an array LUN with a write fence -- it asks
   * the provider that takes it. hold_writes runs at the start of the commit
   * window, after FIFREEZE of any filesystem stacked above (top-down): it
   * must stop new writes, wait for those in flight, and return before
   * host->deadline_ns(call). release_writes runs when the window ends, before
   * the thaw of the filesystems above (bottom-up); it must be idempotent and
   * fast: the host's watchdog calls it at the deadline. Because the host
   * cannot release a provider's hold if the host process dies, the provider
   * must release on its own when its hold outlives the deadline or its host.
   * Returns: OK, VOLUME_NOT_SUPPORTED (cannot hold this volume),
   * HOLD_WRITES_TIMEOUT, UNAVAILABLE. */
  snapset_status (*hold_writes)(snapset_provider *instance, snapset_call *call,
                                uint32_t flags, const snapset_volume *volume);
  snapset_status (*release_writes)(snapset_provider *instance,
                                   snapset_call *call, uint32_t flags,
                                   const snapset_volume *volume);

  /* ---- 1.1 ---- */

  /* Planning, for a provider with hold_writes: can it hold this volume's
   * writes? Optional; NULL means every volume it takes. OK, with a short
   * name of the hold as the message (host->set_error: "array-fence",
   * "write-gate"), which the plan shows; VOLUME_NOT_SUPPORTED with why, and
   * the host then plans the volume without a provider's hold (frozen above,
   * or crash-consistent). May do I/O. Returns: OK, VOLUME_NOT_SUPPORTED,
   * UNAVAILABLE. */
  snapset_status (*can_hold_writes)(snapset_provider *instance, snapset_call *call,
                                    uint32_t flags, const snapset_volume *volume);

  /* ---- 1.2 ---- */

  /* Finding what snapset left behind (optional: both, or neither).
   * list_objects calls sink once per object the provider made for snapset
   * besides snapshots -- on every array or daemon it manages, not only this
   * instance's -- with the set or snapshot its name says it was made for.
   * The host compares them with its catalog: an object of a set that is
   * neither being created nor abort-incomplete, or of a snapshot that no
   * complete set holds, is an orphan, which `snapset list --verify` shows
   * and `snapset orphans --remove` removes with remove_object. remove_object
   * receives an object as list_objects gave it, and is idempotent: one that
   * is gone already is OK. list_objects returns OK, UNAVAILABLE;
   * remove_object OK, BAD_STATE (in use: the message says by what),
   * UNAVAILABLE. */
  snapset_status (*list_objects)(snapset_provider *instance, snapset_call *call,
                                 uint32_t flags, snapset_object_sink sink,
                                 void *cookie);
  snapset_status (*remove_object)(snapset_provider *instance,
                                  snapset_call *call, uint32_t flags,
                                  const snapset_provider_object *object);

  /* ---- 1.3 ---- */

  /* Changed blocks, for incremental backup (optional; NULL: not offered,
   * and the host says so). The byte ranges of snapshot_id whose contents
   * may differ from base_snapshot_id's (an older snapshot of the same
   * volume), or, with base_snapshot_id NULL, that may hold data at all
   * (allocated). In the shape of Kubernetes' SnapshotMetadata: ranges are
   * sorted, do not overlap, end within the volume and lie at or after
   * start_offset (one that begins before it is cut there); at most
   * max_ranges (>= 1) are given, one sink call each. Fewer than max_ranges
   * means there are no more; otherwise the host asks again from the end of
   * the last one. *volume_size receives the snapshot's size in bytes. A
   * range may be larger than what changed (the provider's tracking
   * granularity), never smaller: every byte that differs lies in a range.
   * Returns: OK, NOT_FOUND (either snapshot), INVALID_ARGUMENT (the base is
   * not older, or of another volume), BAD_STATE (a snapshot that cannot be
   * read), UNAVAILABLE. */
  snapset_status (*changed_blocks)(snapset_provider *instance,
                                   snapset_call *call, uint32_t flags,
                                   const char *snapshot_id,
                                   const char *base_snapshot_id,
                                   uint64_t start_offset, uint32_t max_ranges,
                                   uint64_t *volume_size,
                                   snapset_range_sink sink, void *cookie);

  /* ---- new members are added below, grouped by the minor version ---- */
} snapset_provider_ops;

/* The entry point every provider library exports. Returns a table with
 * static storage duration; never NULL. Must not do I/O. */
typedef const snapset_provider_ops *(*snapset_provider_entry_fn)(void);

/* Sizes pinned for ABI 1.3 on LP64 (1.0 ended before can_hold_writes, 1.1
 * before list_objects, 1.2 before changed_blocks; 1.3 also grew the
 * snapshot properties). A change here breaks every plugin. */
#if defined(__LP64__)
#ifdef __cplusplus
#define SNAPSET_STATIC_ASSERT static_assert
#else
#define SNAPSET_STATIC_ASSERT _Static_assert
#endif
SNAPSET_STATIC_ASSERT(sizeof(snapset_host) == 48, "snapset_host 1.0 layout");
SNAPSET_STATIC_ASSERT(sizeof(snapset_designator) == 16,
                      "snapset_designator layout");
SNAPSET_STATIC_ASSERT(sizeof(snapset_volume) == 80,
                      "snapset_volume 1.0 layout");
SNAPSET_STATIC_ASSERT(sizeof(snapset_snapshot_properties) == 80,
                      "snapset_snapshot_properties 1.3 layout");
SNAPSET_STATIC_ASSERT(offsetof(snapset_snapshot_properties, invalid_reason) == 72,
                      "1.3 members follow every 1.0 member");
SNAPSET_STATIC_ASSERT(sizeof(snapset_provider_object) == 48,
                      "snapset_provider_object 1.2 layout");
SNAPSET_STATIC_ASSERT(sizeof(snapset_provider_ops) == 8 + 23 * 8,
                      "snapset_provider_ops 1.3 layout");
SNAPSET_STATIC_ASSERT(offsetof(snapset_provider_ops, can_hold_writes) == 8 + 19 * 8,
                      "1.1 members follow every 1.0 member");
SNAPSET_STATIC_ASSERT(offsetof(snapset_provider_ops, list_objects) == 8 + 20 * 8,
                      "1.2 members follow every 1.1 member");
SNAPSET_STATIC_ASSERT(offsetof(snapset_provider_ops, changed_blocks) == 8 + 22 * 8,
                      "1.3 members follow every 1.2 member");
SNAPSET_STATIC_ASSERT(offsetof(snapset_provider_ops, on_load) == 8,
                      "ops table starts with abi_version, struct_size");
#endif

#ifdef __cplusplus
}
#endif

#endif /* SNAPSET_PROVIDER_H */
