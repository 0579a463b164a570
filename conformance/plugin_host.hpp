// SPDX-License-Identifier: Apache-2.0
//
// The conformance suite's own host: it loads one provider library with
// dlopen, as the coordinator does, and calls its C table directly, so that
// a case can send what a coordinator never sends (unknown flags, events out
// of order, a host table of another minor version). Every call is recorded
// with its latency, code and message; every log line the provider writes is
// kept, so the suite can look for secrets in them.
//
// Thread-safe: cases call one instance from several threads (concurrent
// sets, a watchdog cancelling a commit).
#ifndef SNAPSET_CONFORMANCE_PLUGIN_HOST_HPP
#define SNAPSET_CONFORMANCE_PLUGIN_HOST_HPP

#include <snapset/provider.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <snapset/snapshot_info.hpp>
#include <snapset/status.hpp>
#include <string>
#include <vector>

namespace snapset::conformance {

using Clock = std::chrono::steady_clock;

// One answer of the provider: its code, the message it set, how long it took.
struct Answer {
  int32_t code = SNAPSET_OK;
  std::string message;
  double ms = 0;
  bool ok() const { return code == SNAPSET_OK; }
  // "bad-state: commit_snapshots is out of order ..." for reports.
  std::string Describe() const;
};

struct CallRecord {
  std::string op;
  int32_t code = 0;
  double ms = 0;
  bool message_set = false;
};

// Per call: flags, deadline and a cancellation flag a case may raise.
struct CallSettings {
  uint32_t flags = 0;
  Clock::time_point deadline = Clock::time_point::max();
  const std::atomic<bool>* cancelled = nullptr;
};

// The set events in the order of the happy path (DESIGN §3).
enum class Event {
  kEndPrepare,
  kPreCommit,
  kCommit,
  kPostCommit,
  kPreFinal,
  kPostFinal,
  kAbort,
};
const char* EventName(Event e);  // the ops member's name

// Which host table the provider is given: this SDK's, an older minor's
// (1.0: a table that ends after set_error) or a newer one (a member this SDK
// does not know, and a higher minor).
enum class HostFlavour { kCurrent, kOlderMinor, kNewerMinor };

class PluginHost {
 public:
  // dlopen()s `library` and checks its entry point and table (the ABI
  // cases read what was found from entry_found() and the table itself).
  // Errors: Config, saying what is wrong with the library.
  static Result<std::unique_ptr<PluginHost>> Open(const std::string& library);
  ~PluginHost();
  PluginHost(const PluginHost&) = delete;
  PluginHost& operator=(const PluginHost&) = delete;

  // The plugin's own table as it declared it (members beyond its
  // struct_size are NULL here).
  const snapset_provider_ops& ops() const { return ops_; }
  uint32_t plugin_abi_version() const { return plugin_version_; }
  uint32_t plugin_struct_size() const { return plugin_size_; }
  const std::string& library() const { return library_; }

  // on_load with `config_json`. Unload() calls on_unload (if loaded).
  Answer Load(const std::string& config_json, HostFlavour flavour = HostFlavour::kCurrent,
              uint32_t flags = 0);
  void Unload();
  bool loaded() const { return instance_ != nullptr; }

  Answer IsVolumeSupported(const snapset_volume* v, uint32_t context = 0,
                           const CallSettings& s = {});
  Answer BeginPrepare(const std::string& set_id, const std::string& snapshot_id,
                      const snapset_volume* v, uint32_t context = 0, const CallSettings& s = {});
  // A NULL optional pre/post final commit answers OK without a call, as the
  // coordinator treats it.
  Answer SetEvent(Event e, const std::string& set_id, const CallSettings& s = {});
  Answer Delete(const std::string& snapshot_id, const CallSettings& s = {});
  Answer List(std::vector<SnapshotInfo>* out, const CallSettings& s = {});
  Answer Properties(const std::string& snapshot_id, SnapshotInfo* out, int* sink_calls = nullptr,
                    const CallSettings& s = {});
  Answer Expose(const std::string& snapshot_id, std::string* exposed_as,
                const CallSettings& s = {});
  Answer Unexpose(const std::string& snapshot_id, const CallSettings& s = {});
  Answer Revert(const std::string& snapshot_id, const CallSettings& s = {});
  Answer CanHoldWrites(const snapset_volume* v, const CallSettings& s = {});
  Answer HoldWrites(const snapset_volume* v, const CallSettings& s = {});
  Answer ReleaseWrites(const snapset_volume* v, const CallSettings& s = {});
  Answer ListObjects(std::vector<std::string>* names, const CallSettings& s = {});

  // Everything recorded so far, and the log lines the provider wrote.
  std::vector<CallRecord> calls() const;
  std::vector<std::string> logs() const;
  // Every message the provider set (errors, and explain reasons).
  std::vector<std::string> messages() const;

  // What the provider's last set_error said, kept per call; public for the
  // C callbacks.
  struct CallState;
  struct HostContext;

 private:
  explicit PluginHost(std::string library);
  template <typename Fn>
  Answer Run(const char* op, const CallSettings& s, Fn&& fn);

  std::string library_;
  void* dl_ = nullptr;
  snapset_provider_ops ops_{};
  uint32_t plugin_version_ = 0, plugin_size_ = 0;
  std::unique_ptr<HostContext> context_;
  // Big enough for the newer-minor flavour's extra member.
  struct NewerHost {
    snapset_host base;
    void (*future_member)(void);
  } host_{};
  snapset_provider* instance_ = nullptr;
  mutable std::mutex mu_;
  std::vector<CallRecord> calls_;
  std::vector<std::string> messages_;
};

}  // namespace snapset::conformance

#endif  // SNAPSET_CONFORMANCE_PLUGIN_HOST_HPP
