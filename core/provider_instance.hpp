// ProviderInstance: one registration's plugin, loaded and ready for calls.
//
// Load() dlopen()s the library (RTLD_NOW | RTLD_LOCAL), looks up the one
// entry point, negotiates the ABI version, copies the plugin's ops table into
// a host-sized table (members beyond the plugin's struct_size stay NULL), and
// calls on_load with the registration's config. Every other method is one
// provider call: it builds the call context (flags, deadline, cancellation
// flag, error message slot), calls through the C table and turns the code and
// message into a Status. Optional operations the plugin left NULL answer
// NotImplemented (management) or OK (pre/post final commit).
//
// Thread-safety: methods may be called concurrently; the provider is
// responsible for its own state (provider.h).
#ifndef SNAPSET_CORE_PROVIDER_INSTANCE_HPP
#define SNAPSET_CORE_PROVIDER_INSTANCE_HPP

#include <snapset/provider.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <snapset/provider_object.hpp>
#include <snapset/snapshot_info.hpp>
#include <snapset/status.hpp>
#include <string>
#include <vector>

#include "core/host_log.hpp"
#include "core/provider_registration.hpp"
#include "core/volume.hpp"

namespace snapset {

// Oldest plugin major version this host still speaks.
inline constexpr uint32_t kOldestSupportedAbiMajor = 1;

struct CallOptions {
  uint32_t flags = 0;
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  const std::atomic<bool>* cancelled = nullptr;  // may be null
};

// Checks a plugin's table against this host's ABI and copies it into *out
// (zero-filled beyond the plugin's struct_size). `library` names the file in
// messages. Errors are Config.
Status NegotiateAbi(const snapset_provider_ops* plugin, const std::string& library,
                    snapset_provider_ops* out);

class ProviderInstance {
 public:
  // `log` must outlive the instance.
  static Result<std::unique_ptr<ProviderInstance>> Load(const ProviderRegistration& reg,
                                                        HostLog* log);
  ~ProviderInstance();
  ProviderInstance(const ProviderInstance&) = delete;
  ProviderInstance& operator=(const ProviderInstance&) = delete;

  const ProviderRegistration& registration() const { return reg_; }
  const std::string& id() const { return reg_.id; }
  const std::string& name() const { return reg_.name; }
  ProviderType type() const { return reg_.type; }
  int priority() const { return reg_.priority; }
  uint32_t plugin_abi_version() const { return ops_.abi_version; }
  uint32_t plugin_ops_size() const { return plugin_ops_size_; }

  // A provider that hung in a call is abandoned and unhealthy for the rest of
  // the process: it is not asked again, and it is never unloaded (a thread
  // may still run its code).
  void MarkUnhealthy(const std::string& why);
  bool unhealthy() const { return unhealthy_.load(std::memory_order_acquire); }
  std::string unhealthy_reason() const;

  // On OK, *why (if given) receives the message the provider set, if any:
  // why it supports the volume.
  Status IsVolumeSupported(const Volume& v, uint32_t context, const CallOptions& o = {},
                           std::string* why = nullptr);
  Status BeginPrepareSnapshot(const std::string& set_id, const std::string& snapshot_id,
                              const Volume& v, uint32_t context, const CallOptions& o = {});
  Status EndPrepareSnapshots(const std::string& set_id, const CallOptions& o = {});
  Status PreCommitSnapshots(const std::string& set_id, const CallOptions& o = {});
  Status CommitSnapshots(const std::string& set_id, const CallOptions& o = {});
  Status PostCommitSnapshots(const std::string& set_id, const CallOptions& o = {});
  Status PreFinalCommitSnapshots(const std::string& set_id, const CallOptions& o = {});
  Status PostFinalCommitSnapshots(const std::string& set_id, const CallOptions& o = {});
  Status AbortSnapshots(const std::string& set_id, const CallOptions& o = {});
  Status DeleteSnapshot(const std::string& snapshot_id, const CallOptions& o = {});
  Result<std::vector<SnapshotInfo>> ListSnapshots(const CallOptions& o = {});
  Result<SnapshotInfo> GetSnapshotProperties(const std::string& snapshot_id,
                                             const CallOptions& o = {});
  Result<std::string> ExposeSnapshot(const std::string& snapshot_id, const CallOptions& o = {});
  Status UnexposeSnapshot(const std::string& snapshot_id, const CallOptions& o = {});
  Status RevertToSnapshot(const std::string& snapshot_id, const CallOptions& o = {});

  // Write holds the provider offers for volumes it alone can hold.
  bool can_hold_writes() const { return ops_.hold_writes && ops_.release_writes; }
  // revert_to_snapshot is offered (a snapshot may still say NO_REVERT).
  bool offers_revert() const { return ops_.revert_to_snapshot != nullptr; }
  // Planning: how the provider holds `v`'s writes -- the name it gives the
  // hold ("array-fence"; "write-gate" for a provider of ABI 1.0, or one
  // that names none) -- or VolumeNotSupported when it cannot hold this one.
  Result<std::string> CanHoldWrites(const Volume& v, const CallOptions& o = {});
  Status HoldWrites(const Volume& v, const CallOptions& o = {});
  Status ReleaseWrites(const Volume& v, const CallOptions& o = {});

  // Objects the provider made for snapset besides snapshots (1.2); a
  // provider without list_objects has none the host can see: NotImplemented.
  bool lists_objects() const { return ops_.list_objects && ops_.remove_object; }

  // Changed blocks (ABI 1.3): one page of at most max_ranges ranges of
  // `snapshot_id` from start_offset on, against `base_snapshot_id` ("" :
  // allocated ranges). NotImplemented when the provider does not offer it.
  struct ChangedPage {
    uint64_t volume_size = 0;
    std::vector<ByteRange> ranges;
  };
  bool offers_changed_blocks() const { return ops_.changed_blocks != nullptr; }
  Result<ChangedPage> ChangedBlocks(const std::string& snapshot_id,
                                    const std::string& base_snapshot_id, uint64_t start_offset,
                                    uint32_t max_ranges, const CallOptions& o = {});
  Result<std::vector<ProviderObject>> ListObjects(const CallOptions& o = {});
  Status RemoveObject(const ProviderObject& object, const CallOptions& o = {});

  struct HostContext;  // what snapset_host.context points to

 private:
  ProviderInstance(ProviderRegistration reg, HostLog* log);
  Status SetEvent(const char* op,
                  snapset_status (*fn)(snapset_provider*, snapset_call*, uint32_t, const char*),
                  const std::string& set_id, const CallOptions& o, bool optional_ok);

  ProviderRegistration reg_;
  std::unique_ptr<HostContext> host_context_;
  snapset_host host_{};
  void* dl_ = nullptr;
  snapset_provider_ops ops_{};
  uint32_t plugin_ops_size_ = 0;
  snapset_provider* instance_ = nullptr;
  std::atomic<bool> unhealthy_{false};
  mutable std::mutex unhealthy_mu_;
  std::string unhealthy_reason_;
};

}  // namespace snapset

#endif  // SNAPSET_CORE_PROVIDER_INSTANCE_HPP
