// ControlServer: the daemon's control socket (protocol.hpp framing, ops in
// docs/software-cow.md). A Unix stream socket created 0600 in a directory
// created 0700 when missing; every connection is checked with SO_PEERCRED
// (root or the daemon's uid only) and served by a thread of its own, so a
// connection waiting for a hold's drain never blocks the others. Holds
// belong to their connection and end when it closes.
//
// Thread-safety: Start/Stop from one thread.
#ifndef SNAPSET_COW_DAEMON_CONTROL_SERVER_HPP
#define SNAPSET_COW_DAEMON_CONTROL_SERVER_HPP

#include <snapset/status.hpp>

#include <atomic>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "providers/software-cow/daemon/volume_registry.hpp"

namespace snapset::cow::daemon {

class ControlServer {
 public:
  ControlServer(VolumeRegistry* registry, std::string socket_path);
  ~ControlServer();

  // Binds and listens. A socket file left by a dead daemon is replaced;
  // one a live daemon answers on is AlreadyExists. Call before other
  // threads start (it sets the umask around bind).
  Status Listen();
  void Start();
  // Stops accepting, closes every connection (ending their holds), waits
  // for their threads, removes the socket file.
  void Stop();

 private:
  struct Conn {
    uint64_t id = 0;
    int fd = -1;
    std::thread thread;
    std::atomic<bool> done{false};
  };

  void AcceptLoop();
  void Serve(Conn* c);
  // One request line -> one reply line.
  std::string Handle(uint64_t conn, const std::string& line);
  void ReapLocked();

  VolumeRegistry* registry_;
  const std::string socket_path_;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};  // a pipe: Stop() wakes the accept loop
  std::thread acceptor_;
  std::mutex mu_;
  std::list<std::unique_ptr<Conn>> conns_;
  uint64_t next_id_ = 1;
  bool stopping_ = false;
};

}  // namespace snapset::cow::daemon

#endif  // SNAPSET_COW_DAEMON_CONTROL_SERVER_HPP
