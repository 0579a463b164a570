// CowdClient: talks to snapset-cowd over its control socket.
//
// The protocol (docs/software-cow.md has every request and reply): one JSON
// object per line over a Unix stream socket. A request is
//   {"op": "snapshot.create", "volume": "db", "id": "..."}
// and its reply either {"ok": true, ...} or
//   {"ok": false, "code": "not-found", "message": "..."}
// where `code` is a snapset::CodeName. The daemon accepts a connection only
// from its own uid or root (SO_PEERCRED) and creates the socket 0600.
//
// A write hold belongs to the connection that took it: it ends at
// writes.release, at its timeout, or when that connection closes (so a
// coordinator that dies never leaves a volume's writes stopped).
//
// Used by the software-cow provider plugin, `snapset cow`, and tests.
//
// Thread-safety: one CowdClient is one connection; calls on it are
// serialized by an internal mutex. Use one client per concurrent hold.
#ifndef SNAPSET_COW_COWD_CLIENT_HPP
#define SNAPSET_COW_COWD_CLIENT_HPP

#include <snapset/status.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace snapset::cow {

// The default control socket and FUSE mount of a system-wide daemon.
constexpr const char* kDefaultSocket = "/run/snapset/cowd.sock";
constexpr const char* kDefaultMount = "/run/snapset/cow";
constexpr const char* kDefaultStateDir = "/var/lib/snapset/cow";
// The FUSE subtype: the daemon's mount shows in /proc/self/mountinfo with
// file system type "fuse.snapset-cowd".
constexpr const char* kFuseType = "fuse.snapset-cowd";

struct DaemonInfo {
  std::string version;
  int64_t pid = 0;
  std::string mount;      // FUSE mount point
  std::string state_dir;
};

struct CowSnapshot {
  std::string id;
  uint64_t epoch = 0;
  int64_t created_unix_ns = 0;
  bool valid = true;
  std::string invalid_reason;
  std::string path;  // <mount>/<volume>/snapshots/<id>
};

struct CowOverflowEvent {
  std::string snapshot_id;
  int64_t when_unix_ns = 0;
  std::string reason;
};

struct CowVolumeStatus {
  std::string name;
  std::string origin_path;    // the backing origin file or device
  std::string diff_path;      // diff area file 0
  std::string served_origin;  // <mount>/<name>/origin, what a loop device uses
  uint64_t size_bytes = 0;
  uint32_t chunk_size = 0;
  uint64_t diff_bytes_max = 0;
  uint64_t diff_bytes_used = 0;
  uint64_t chunks_copied = 0;
  uint64_t snapshots = 0;
  uint64_t snapshots_deleted_by_overflow = 0;
  bool writes_held = false;
  std::vector<CowOverflowEvent> overflow_events;
};

struct CreateVolumeRequest {
  std::string name;
  uint64_t size_bytes = 0;     // new origin of this size, or 0 with origin
  std::string origin;          // adopt this file or block device
  uint32_t chunk_size = 0;     // 0: the default (64 KiB)
  uint64_t diff_max_bytes = 0; // 0: a quarter of the origin, at least 64 MiB
};

struct ChangedRun {
  uint64_t first_chunk = 0;
  uint64_t chunk_count = 0;
};

class CowdClient {
 public:
  // Connects; every later call is bounded by `timeout` (a hung daemon gives
  // Unavailable, never a hang). Unavailable when nobody listens on the
  // socket, with a message saying how to start snapset-cowd.
  static Result<std::unique_ptr<CowdClient>> Connect(
      const std::string& socket_path,
      std::chrono::milliseconds timeout = std::chrono::seconds(30));
  ~CowdClient();

  Result<DaemonInfo> Info();

  Result<CowVolumeStatus> CreateVolume(const CreateVolumeRequest& request);
  // Deletes the volume, its snapshots and its diff area (and the origin
  // file when the daemon created it). BadState while the origin is open.
  Status DeleteVolume(const std::string& name);
  Result<std::vector<CowVolumeStatus>> ListVolumes();
  Result<CowVolumeStatus> GetVolume(const std::string& name);

  // `id` empty: the daemon picks one. Idempotent: creating an id that
  // exists returns AlreadyExists.
  Result<CowSnapshot> CreateSnapshot(const std::string& volume, const std::string& id);
  Status DeleteSnapshot(const std::string& volume, const std::string& id);
  Result<std::vector<CowSnapshot>> ListSnapshots(const std::string& volume);

  // Stops new writes to the volume's origin (they wait; reads go on) and
  // returns once writes in flight have finished. The hold ends at
  // ReleaseWrites, after `max_hold`, or when this connection closes.
  // BadState if this or another connection already holds it.
  Status HoldWrites(const std::string& volume, std::chrono::milliseconds max_hold);
  Status ReleaseWrites(const std::string& volume);

  // BadState while the origin is open (unmount and detach it first).
  Status Revert(const std::string& volume, const std::string& snapshot_id);
  // `to_id` empty: against the current origin.
  Result<std::vector<ChangedRun>> ChangedChunks(const std::string& volume,
                                                const std::string& from_id,
                                                const std::string& to_id);

 private:
  CowdClient(int fd, std::chrono::milliseconds timeout, std::string socket_path);
  struct Reply;
  Result<std::string> Call(const std::string& request_json);
  std::mutex mu_;
  int fd_;
  std::chrono::milliseconds timeout_;
  std::string socket_path_;
  std::string buffer_;
};

}  // namespace snapset::cow

#endif  // SNAPSET_COW_COWD_CLIENT_HPP
