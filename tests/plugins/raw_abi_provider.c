/* A provider written in plain C against provider.h, built several times with
 * different ABI declarations to test the host's version negotiation:
 *   RAW_ABI_MAJOR / RAW_ABI_MINOR  the version the table claims
 *   RAW_SHORT_TABLE                struct_size ends after abort_snapshots, as
 *                                  a plugin of an older minor would be
 *   RAW_FUTURE_MEMBER              the table has one member more than 1.0,
 *                                  as a plugin of a newer minor would
 *   RAW_NO_ENTRY                   the entry point is missing
 * Every event succeeds; unknown flag bits are rejected as provider.h asks. */
#include <snapset/provider.h>

#include <stdlib.h>
#include <string.h>

#ifndef RAW_ABI_MAJOR
#define RAW_ABI_MAJOR SNAPSET_ABI_VERSION_MAJOR
#endif
#ifndef RAW_ABI_MINOR
#define RAW_ABI_MINOR SNAPSET_ABI_VERSION_MINOR
#endif

struct snapset_provider {
  const snapset_host *host;
};

static snapset_status reject_flags(const snapset_provider *p, snapset_call *call,
                                   uint32_t flags) {
  if (flags == 0) return SNAPSET_OK;
  if (SNAPSET_HAS_MEMBER(p->host, snapset_host, set_error))
    p->host->set_error(call, "raw provider: unknown flag bits");
  return SNAPSET_E_INVALID_ARGUMENT;
}

static snapset_status raw_on_load(const snapset_host *host, snapset_call *call, uint32_t flags,
                                  const char *config, snapset_provider **out) {
  (void)call;
  (void)config;
  if (flags) return SNAPSET_E_INVALID_ARGUMENT;
  snapset_provider *p = calloc(1, sizeof *p);
  if (!p) return SNAPSET_E_INTERNAL;
  p->host = host;
  *out = p;
  return SNAPSET_OK;
}

static void raw_on_unload(snapset_provider *p, uint32_t flags) {
  (void)flags;
  free(p);
}

static snapset_status raw_supported(snapset_provider *p, snapset_call *call, uint32_t flags,
                                    const snapset_volume *v, uint32_t context) {
  (void)context;
  snapset_status rc = reject_flags(p, call, flags);
  if (rc != SNAPSET_OK) return rc;
  if (v->kind != SNAPSET_VOLUME_COW) {
    p->host->set_error(call, "raw provider only takes cow: volumes");
    return SNAPSET_E_VOLUME_NOT_SUPPORTED;
  }
  return SNAPSET_OK;
}

static snapset_status raw_begin(snapset_provider *p, snapset_call *call, uint32_t flags,
                                const char *set, const char *snap, const snapset_volume *v,
                                uint32_t context) {
  (void)set;
  (void)snap;
  (void)v;
  (void)context;
  return reject_flags(p, call, flags);
}

static snapset_status raw_set_event(snapset_provider *p, snapset_call *call, uint32_t flags,
                                    const char *set) {
  (void)set;
  return reject_flags(p, call, flags);
}

static snapset_status raw_delete(snapset_provider *p, snapset_call *call, uint32_t flags,
                                 const char *id) {
  (void)id;
  snapset_status rc = reject_flags(p, call, flags);
  if (rc != SNAPSET_OK) return rc;
  p->host->set_error(call, "raw provider keeps no snapshots");
  return SNAPSET_E_NOT_FOUND;
}

static snapset_status raw_list(snapset_provider *p, snapset_call *call, uint32_t flags,
                               snapset_properties_sink sink, void *cookie) {
  snapset_status rc = reject_flags(p, call, flags);
  if (rc != SNAPSET_OK) return rc;
  snapset_snapshot_properties props;
  memset(&props, 0, sizeof props);
  props.struct_size = sizeof props;
  props.state = SNAPSET_STATE_COMPLETE;
  props.snapshot_id = "00000000-0000-4000-8000-000000000001";
  props.set_id = "00000000-0000-4000-8000-000000000002";
  props.original_volume = "cow:raw";
  sink(cookie, &props);
  return SNAPSET_OK;
}

#ifdef RAW_FUTURE_MEMBER
/* What a table of a later minor version looks like to this host. */
typedef struct {
  snapset_provider_ops v1_0;
  snapset_status (*future_operation)(snapset_provider *, snapset_call *, uint32_t);
} raw_ops_table;
#else
typedef struct {
  snapset_provider_ops v1_0;
} raw_ops_table;
#endif

static const raw_ops_table raw_ops = {
    .v1_0 =
        {
            .abi_version = SNAPSET_ABI_MAKE_VERSION(RAW_ABI_MAJOR, RAW_ABI_MINOR),
#ifdef RAW_SHORT_TABLE
            .struct_size = offsetof(snapset_provider_ops, delete_snapshot),
#else
            .struct_size = sizeof(raw_ops_table),
#endif
            .on_load = raw_on_load,
            .on_unload = raw_on_unload,
            .is_volume_supported = raw_supported,
            .begin_prepare_snapshot = raw_begin,
            .end_prepare_snapshots = raw_set_event,
            .pre_commit_snapshots = raw_set_event,
            .commit_snapshots = raw_set_event,
            .post_commit_snapshots = raw_set_event,
            .abort_snapshots = raw_set_event,
            .delete_snapshot = raw_delete,
            .list_snapshots = raw_list,
        },
};

#ifndef RAW_NO_ENTRY
SNAPSET_EXPORT const snapset_provider_ops *snapset_provider_entry(void) {
  return &raw_ops.v1_0;
}
#else
/* Exported under a wrong name, as a vendor typo would. */
SNAPSET_EXPORT const snapset_provider_ops *snapset_provider_entrypoint(void) {
  return &raw_ops.v1_0;
}
#endif
