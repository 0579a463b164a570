// SPDX-License-Identifier: Apache-2.0
//
// Deliberately broken providers, to prove that snapset-conformance catches
// what it claims to catch. One source, built once per defect: it loads a
// good provider (MUTANT_INNER, loop-clone or the iSCSI provider), forwards
// every call of the raw C ABI to it, and adds exactly one defect
// (MUTANT_DEFECT, below). MUTANT_DEFECT 0 adds none: that baseline must
// pass the suite, so a failure of a mutant is the defect's, not the shim's.
//
// The members-apart mutant takes each member of a set as an inner set of its
// own, so that it can cut them at different instants; their ids are derived
// from the outer one and mapped back in what the provider reports. Every
// other build forwards the set as it is.
#include <dlfcn.h>
#include <snapset/provider.h>
#include <time.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace {

enum Defect {
  kNone = 0,
  kIgnoresUnknownFlags = 1,   // accepts flag bits it does not know
  kLeaksAbortPrepared = 2,    // an abort once prepared undoes nothing
  kAbortsOnBadOrder = 3,      // abort() on an out-of-order event
  kCopyAfterRelease = 4,      // cuts in post-commit, after the hold is released
  kSlowCommit = 5,            // commit sleeps 2 s (honouring cancellation)
  kForgetsAfterReload = 6,    // lists only what this instance made
  kDeleteNotIdempotent = 7,   // a second delete answers OK
  kWrongCode = 8,             // a reused snapshot id gives INTERNAL
  kLogsSecret = 9,            // logs a password at load
  kIgnoresDeadline = 10,      // a commit near its deadline overruns it
  kLeaksAbortCommitted = 11,  // an abort after the cut undoes nothing
  kMembersApart = 12,         // cuts each member 300 ms after the previous
  kLeaksAfterFault = 13,      // after a failed call, abort undoes nothing
};
constexpr int kDefect = MUTANT_DEFECT;

struct OuterSet {
  int32_t state = SNAPSET_STATE_IDLE;
  std::vector<std::string> inner;  // one inner set per member
  bool failed = false;             // some call of this set failed
};

}  // namespace

struct snapset_provider {
  const snapset_host* host = nullptr;
  const snapset_provider_ops* ops = nullptr;
  snapset_provider* inner = nullptr;
  std::mutex mu;
  std::map<std::string, OuterSet> sets;
  std::map<std::string, std::string> outer_of;  // inner set id -> outer
  std::set<std::string> made, deleted;          // snapshot ids
};

namespace {

void* g_library = nullptr;
const snapset_provider_ops* InnerOps() {
  static std::once_flag once;
  static const snapset_provider_ops* ops = nullptr;
  std::call_once(once, [] {
    g_library = ::dlopen(MUTANT_INNER, RTLD_NOW | RTLD_LOCAL);
    if (!g_library) return;
    auto entry = reinterpret_cast<snapset_provider_entry_fn>(
        ::dlsym(g_library, SNAPSET_PROVIDER_ENTRY_SYMBOL));
    if (entry) ops = entry();
  });
  return ops;
}

uint32_t Flags(uint32_t flags) { return kDefect == kIgnoresUnknownFlags ? 0 : flags; }

snapset_status Checked(snapset_status rc) {
  if (kDefect == kAbortsOnBadOrder && rc == SNAPSET_E_BAD_STATE) std::abort();
  return rc;
}

void SetError(snapset_provider* p, snapset_call* call, const char* message) {
  p->host->set_error(call, message);
}

// The inner set of member i of `outer`: the outer set itself, or for
// members-apart the outer id with its last 4 hex digits replaced (a UUID).
std::string InnerId(const std::string& outer, size_t i) {
  if (kDefect != kMembersApart) return outer;
  char tail[8];
  std::snprintf(tail, sizeof tail, "%04zx", i);
  return outer.size() == 36 ? outer.substr(0, 32) + tail : outer + "-" + tail;
}

int64_t NowMonotonicNs() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

snapset_status OnLoad(const snapset_host* host, snapset_call* call, uint32_t flags,
                      const char* config, snapset_provider** out) {
  const snapset_provider_ops* ops = InnerOps();
  if (!ops) {
    host->set_error(call, "mutant: cannot load " MUTANT_INNER);
    return SNAPSET_E_INTERNAL;
  }
  auto* p = new snapset_provider;
  p->host = host;
  p->ops = ops;
  snapset_status rc = ops->on_load(host, call, Flags(flags), config, &p->inner);
  if (rc != SNAPSET_OK) {
    delete p;
    return rc;
  }
  if (kDefect == kLogsSecret)
    host->log(host->context, SNAPSET_LOG_INFO,
              "mutant: connecting with password hunter2-conformance");
  *out = p;
  return SNAPSET_OK;
}

void OnUnload(snapset_provider* p, uint32_t flags) {
  p->ops->on_unload(p->inner, flags);
  delete p;
}

snapset_status Supported(snapset_provider* p, snapset_call* call, uint32_t flags,
                         const snapset_volume* v, uint32_t context) {
  return p->ops->is_volume_supported(p->inner, call, Flags(flags), v, context);
}

snapset_status BeginPrepare(snapset_provider* p, snapset_call* call, uint32_t flags,
                            const char* set_id, const char* snapshot_id, const snapset_volume* v,
                            uint32_t context) {
  std::string inner;
  {
    std::lock_guard<std::mutex> lock(p->mu);
    OuterSet& set = p->sets[set_id];
    if (set.state != SNAPSET_STATE_IDLE && set.state != SNAPSET_STATE_PREPARING) {
      SetError(p, call, "mutant: begin_prepare_snapshot is out of order");
      return Checked(SNAPSET_E_BAD_STATE);
    }
    inner = InnerId(set_id, set.inner.size());
  }
  snapset_status rc = p->ops->begin_prepare_snapshot(p->inner, call, Flags(flags), inner.c_str(),
                                                     snapshot_id, v, context);
  std::lock_guard<std::mutex> lock(p->mu);
  OuterSet& set = p->sets[set_id];
  if (rc == SNAPSET_OK) {
    if (set.inner.empty() || set.inner.back() != inner) set.inner.push_back(inner);
    set.state = SNAPSET_STATE_PREPARING;
    p->outer_of[inner] = set_id;
    p->made.insert(snapshot_id);
  } else {
    set.failed = true;
  }
  if (kDefect == kWrongCode && rc == SNAPSET_E_ALREADY_EXISTS) return SNAPSET_E_INTERNAL;
  return Checked(rc);
}

using SetFn = snapset_status (*)(snapset_provider*, snapset_call*, uint32_t, const char*);

// Sends one event to every inner set of `set_id`, in member order.
snapset_status ForEachInner(snapset_provider* p, snapset_call* call, uint32_t flags,
                            const char* set_id, SetFn fn, int32_t from, int32_t to,
                            int pause_ms = 0) {
  std::vector<std::string> inner;
  {
    std::lock_guard<std::mutex> lock(p->mu);
    auto it = p->sets.find(set_id);
    if (it == p->sets.end() || it->second.state != from) {
      SetError(p, call, "mutant: event out of order for this set");
      return Checked(SNAPSET_E_BAD_STATE);
    }
    inner = it->second.inner;
  }
  snapset_status rc = SNAPSET_OK;
  for (size_t i = 0; i < inner.size() && rc == SNAPSET_OK; ++i) {
    if (i && pause_ms) std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms));
    if (fn) rc = fn(p->inner, call, Flags(flags), inner[i].c_str());
  }
  std::lock_guard<std::mutex> lock(p->mu);
  if (rc == SNAPSET_OK)
    p->sets[set_id].state = to;
  else
    p->sets[set_id].failed = true;
  return Checked(rc);
}

snapset_status EndPrepare(snapset_provider* p, snapset_call* c, uint32_t f, const char* s) {
  return ForEachInner(p, c, f, s, p->ops->end_prepare_snapshots, SNAPSET_STATE_PREPARING,
                      SNAPSET_STATE_PREPARED);
}
snapset_status PreCommit(snapset_provider* p, snapset_call* c, uint32_t f, const char* s) {
  return ForEachInner(p, c, f, s, p->ops->pre_commit_snapshots, SNAPSET_STATE_PREPARED,
                      SNAPSET_STATE_PRECOMMITTED);
}

snapset_status Commit(snapset_provider* p, snapset_call* c, uint32_t f, const char* s) {
  if (kDefect == kSlowCommit) {
    const int64_t deadline = p->host->deadline_ns(c);
    for (int i = 0; i < 200 && !p->host->is_cancelled(c); ++i) {
      if (deadline != INT64_MAX && NowMonotonicNs() + 20000000 > deadline) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  if (kDefect == kIgnoresDeadline) {
    const int64_t deadline = p->host->deadline_ns(c);
    if (deadline != INT64_MAX && deadline - NowMonotonicNs() < 2000000000)
      std::this_thread::sleep_for(
          std::chrono::nanoseconds(deadline - NowMonotonicNs() + 500000000));
  }
  // Not cut here: post-commit cuts, after the host released the writes.
  SetFn fn = kDefect == kCopyAfterRelease ? nullptr : p->ops->commit_snapshots;
  return ForEachInner(p, c, f, s, fn, SNAPSET_STATE_PRECOMMITTED, SNAPSET_STATE_COMMITTED,
                      kDefect == kMembersApart ? 300 : 0);
}

snapset_status PostCommit(snapset_provider* p, snapset_call* c, uint32_t f, const char* s) {
  if (kDefect == kCopyAfterRelease) {
    // Late enough that writes go on between the release and the cut, as
    // they would on a real host: a cut within the clocks' tolerance of the
    // release could pass for one inside the window.
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    {
      std::lock_guard<std::mutex> lock(p->mu);
      auto it = p->sets.find(s);
      if (it != p->sets.end() && it->second.state == SNAPSET_STATE_COMMITTED)
        it->second.state = SNAPSET_STATE_PRECOMMITTED;
    }
    snapset_status rc = ForEachInner(p, c, f, s, p->ops->commit_snapshots,
                                     SNAPSET_STATE_PRECOMMITTED, SNAPSET_STATE_COMMITTED);
    if (rc != SNAPSET_OK) return rc;
  }
  return ForEachInner(p, c, f, s, p->ops->post_commit_snapshots, SNAPSET_STATE_COMMITTED,
                      SNAPSET_STATE_POSTCOMMITTED);
}

snapset_status PreFinal(snapset_provider* p, snapset_call* c, uint32_t f, const char* s) {
  return ForEachInner(p, c, f, s, p->ops->pre_final_commit_snapshots, SNAPSET_STATE_POSTCOMMITTED,
                      SNAPSET_STATE_POSTCOMMITTED);
}
snapset_status PostFinal(snapset_provider* p, snapset_call* c, uint32_t f, const char* s) {
  return ForEachInner(p, c, f, s, p->ops->post_final_commit_snapshots, SNAPSET_STATE_POSTCOMMITTED,
                      SNAPSET_STATE_COMPLETE);
}

snapset_status Abort(snapset_provider* p, snapset_call* c, uint32_t flags, const char* set_id) {
  if (flags && kDefect != kIgnoresUnknownFlags) {
    SetError(p, c, "mutant: unknown flag bits");
    return SNAPSET_E_INVALID_ARGUMENT;
  }
  std::vector<std::string> inner;
  {
    std::lock_guard<std::mutex> lock(p->mu);
    auto it = p->sets.find(set_id);
    if (it == p->sets.end()) {
      // An earlier instance's set: its inner sets are derived from its id.
      for (size_t i = 0; i < (kDefect == kMembersApart ? 16 : 1); ++i)
        inner.push_back(InnerId(set_id, i));
    } else {
      OuterSet& set = it->second;
      if (set.state == SNAPSET_STATE_COMPLETE) {
        SetError(p, c, "mutant: the set is complete");
        return Checked(SNAPSET_E_BAD_STATE);
      }
      const bool leak =
          (kDefect == kLeaksAbortPrepared && set.state == SNAPSET_STATE_PREPARED) ||
          (kDefect == kLeaksAbortCommitted &&
           (set.state == SNAPSET_STATE_COMMITTED || set.state == SNAPSET_STATE_POSTCOMMITTED)) ||
          (kDefect == kLeaksAfterFault && set.failed);
      inner = set.inner;
      set.state = SNAPSET_STATE_ABORTED;
      if (leak) return SNAPSET_OK;
    }
  }
  for (const std::string& i : inner) {
    snapset_status rc = p->ops->abort_snapshots(p->inner, c, Flags(flags), i.c_str());
    if (rc != SNAPSET_OK && rc != SNAPSET_E_BAD_STATE) return rc;
  }
  return SNAPSET_OK;
}

snapset_status Delete(snapset_provider* p, snapset_call* c, uint32_t flags, const char* id) {
  if (kDefect == kDeleteNotIdempotent) {
    std::lock_guard<std::mutex> lock(p->mu);
    if (p->deleted.count(id)) return SNAPSET_OK;
  }
  snapset_status rc = p->ops->delete_snapshot(p->inner, c, Flags(flags), id);
  if (rc == SNAPSET_OK) {
    std::lock_guard<std::mutex> lock(p->mu);
    p->deleted.insert(id);
  }
  return rc;
}

// What the inner provider reports, with its set ids mapped back.
struct SinkCookie {
  snapset_provider* p;
  snapset_properties_sink sink;
  void* cookie;
  bool only_made;
};

void MapSink(void* cookie, const snapset_snapshot_properties* props) {
  auto* k = static_cast<SinkCookie*>(cookie);
  snapset_snapshot_properties copy = *props;
  std::string outer;
  {
    std::lock_guard<std::mutex> lock(k->p->mu);
    if (k->only_made && props->snapshot_id && !k->p->made.count(props->snapshot_id)) return;
    if (props->set_id) {
      auto it = k->p->outer_of.find(props->set_id);
      if (it != k->p->outer_of.end()) outer = it->second;
    }
  }
  if (!outer.empty()) copy.set_id = outer.c_str();
  k->sink(k->cookie, &copy);
}

snapset_status List(snapset_provider* p, snapset_call* c, uint32_t flags,
                    snapset_properties_sink sink, void* cookie) {
  SinkCookie k{p, sink, cookie, kDefect == kForgetsAfterReload};
  return p->ops->list_snapshots(p->inner, c, Flags(flags), &MapSink, &k);
}

snapset_status Properties(snapset_provider* p, snapset_call* c, uint32_t flags, const char* id,
                          snapset_properties_sink sink, void* cookie) {
  SinkCookie k{p, sink, cookie, false};
  return p->ops->get_snapshot_properties(p->inner, c, Flags(flags), id, &MapSink, &k);
}

snapset_status Expose(snapset_provider* p, snapset_call* c, uint32_t flags, const char* id,
                      snapset_string_sink sink, void* cookie) {
  return p->ops->expose_snapshot(p->inner, c, Flags(flags), id, sink, cookie);
}
snapset_status Unexpose(snapset_provider* p, snapset_call* c, uint32_t flags, const char* id) {
  return p->ops->unexpose_snapshot(p->inner, c, Flags(flags), id);
}

}  // namespace

extern "C" SNAPSET_EXPORT const snapset_provider_ops* snapset_provider_entry(void) {
  static const snapset_provider_ops ops = [] {
    snapset_provider_ops o{};
    o.abi_version = SNAPSET_ABI_MAKE_VERSION(1, 0);
    o.struct_size = offsetof(snapset_provider_ops, can_hold_writes);
    o.on_load = &OnLoad;
    o.on_unload = &OnUnload;
    o.is_volume_supported = &Supported;
    o.begin_prepare_snapshot = &BeginPrepare;
    o.end_prepare_snapshots = &EndPrepare;
    o.pre_commit_snapshots = &PreCommit;
    o.commit_snapshots = &Commit;
    o.post_commit_snapshots = &PostCommit;
    o.pre_final_commit_snapshots = &PreFinal;
    o.post_final_commit_snapshots = &PostFinal;
    o.abort_snapshots = &Abort;
    o.delete_snapshot = &Delete;
    o.list_snapshots = &List;
    o.get_snapshot_properties = &Properties;
    o.expose_snapshot = &Expose;
    o.unexpose_snapshot = &Unexpose;
    return o;
  }();
  return &ops;
}
