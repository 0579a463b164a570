// Which configured array holds a volume: the iSCSI provider's answer to
// is_volume_supported, by SCSI identity (the NAA of VPD page 0x83), never by
// name (DESIGN.md §6).
//
// Each array's inventory (ArrayDriver::Inventory) is cached. A lookup
// searches the caches first; on a miss it refreshes every array once (in
// parallel, one thread per array, each bounded by the refresh timeout) and
// searches again. So a volume created since the last refresh is found at
// the cost of one inventory per array, and no call refreshes an array
// twice. An array whose refresh fails keeps its previous inventory and does
// not hide matches on the others; it is named, with its error, when the
// volume is found nowhere. A cached inventory answers without contacting
// the array: a volume found in the cache of an array that has since gone
// away is still "supported", and the snapshot flow reports the array down.
//
// Volumes only: an NAA the array lists as a snapshot (a replica with a
// source volume) is not matched. A snapshot LUN is not a source for a new
// snapshot here (arrays differ on snapshots of snapshots, and the set would
// depend on the replica outliving its source); the reason says which
// snapshot of which volume it is, so `snapset providers explain` is clear.
//
// Volumes of one snapshot set may live on several arrays: each lookup is
// for one volume and names its array.
//
// Thread-safety: every public method may be called from any thread at any
// time (the host may call is_volume_supported concurrently). One mutex
// guards the caches and is held across a refresh, so concurrent misses
// refresh once, not once each. The dialects are called only with that mutex
// held, but they are not thread-safe (ArrayDriver): give the matcher
// dialect objects of its own (one REST session each), not the ones the
// snapshot flow uses from other threads.
#ifndef SNAPSET_PROVIDERS_ISCSI_VOLUME_MATCHER_HPP
#define SNAPSET_PROVIDERS_ISCSI_VOLUME_MATCHER_HPP

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <snapset/array.hpp>
#include <snapset/status.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace snapset::iscsi {

// One configured array, as the matcher sees it. The dialect is not owned
// and must outlive the matcher.
struct NamedDialect {
  std::string name;
  ArrayDriver* dialect = nullptr;
};

struct VolumeMatch {
  std::string array;   // the configured name of the array that holds it
  ArrayVolume volume;  // as its inventory lists it
  // For `snapset providers explain`, e.g. `array "a" holds NAA 6001405... as
  // volume "db" (/redfish/v1/Storage/array/Volumes/3)`.
  std::string reason;
};

class VolumeMatcher {
 public:
  static constexpr std::chrono::milliseconds kDefaultRefreshTimeout{10000};

  // REQUIRES: names unique, dialects non-null (ParseProviderConfig makes
  // sure of the names).
  explicit VolumeMatcher(std::vector<NamedDialect> arrays,
                         std::chrono::milliseconds refresh_timeout = kDefaultRefreshTimeout);
  VolumeMatcher(const VolumeMatcher&) = delete;
  VolumeMatcher& operator=(const VolumeMatcher&) = delete;

  // The array and volume whose NAA is `naa` (hex, any case, with or without
  // a "naa." prefix). Errors, each with a message fit for `providers
  // explain`:
  //   InvalidArgument     `naa` is not 16 or 32 hex digits;
  //   VolumeNotSupported  every array was asked and none holds it as a
  //                       volume (the message names each array and what it
  //                       holds), or the NAA is a snapshot's;
  //   Unavailable         no array that answered holds it, and some array
  //                       could not be asked (named, with why): it may be
  //                       there;
  //   BadState            two arrays hold it (one array configured twice).
  Result<VolumeMatch> Find(std::string_view naa);

  // Drops an array's cached inventory (the snapshot flow calls it when the
  // array says a matched volume is gone); the next lookup refreshes it.
  void Forget(const std::string& array);

  // How many times the array's inventory was asked for, failures included
  // (tests and benchmarks count REST work with it); -1 for an unknown name.
  int refreshes(const std::string& array) const;

 private:
  struct Cache {
    NamedDialect array;
    bool loaded = false;  // inventory holds a successful answer
    std::vector<ArrayVolume> inventory;
    Status last_error;  // of the latest refresh; OK if it worked
    int refreshes = 0;
  };
  struct Hit {
    const Cache* cache;
    const ArrayVolume* volume;
  };

  // REQUIRES: mu_ held.
  std::vector<Hit> Search(const std::string& naa) const;
  void RefreshAll();
  Result<VolumeMatch> Answer(const std::string& naa, const std::vector<Hit>& hits) const;
  std::string LookedAt() const;

  const std::chrono::milliseconds refresh_timeout_;
  mutable std::mutex mu_;
  std::vector<Cache> caches_;  // guarded by mu_; one per array, in configured order
};

// `naa` as VPD 0x83 reports it in snapset_volume: lower-case hex, no
// prefix; "" when it is not 16 or 32 hex digits.
std::string NormalizeNaa(std::string_view naa);

}  // namespace snapset::iscsi

#endif  // SNAPSET_PROVIDERS_ISCSI_VOLUME_MATCHER_HPP
