// The mock array's own tgtd: started in the foreground with its own control
// number, its own IPC socket in the state directory and its own loopback
// portal, so several arrays run side by side and next to a system tgtd.
//
// tgtd ignores SIGTERM; Stop() deletes every target this object created and
// then the system, and reaps the daemon. It is also tied to this process with
// PR_SET_PDEATHSIG, so a kill -9 of the array takes it down too.
//
// Not thread-safe: the caller serialises every call (the array holds one lock
// around each operation).
#ifndef SNAPSET_PROVIDERS_MOCK_ARRAY_TGT_DAEMON_HPP
#define SNAPSET_PROVIDERS_MOCK_ARRAY_TGT_DAEMON_HPP

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <snapset/status.hpp>
#include <string>
#include <vector>

namespace snapset::mock {

class TgtDaemon {
 public:
  // Starts tgtd with a portal on host:port; port 0 picks a free one.
  // REQUIRES: called before any other thread exists (it sets
  // TGT_IPC_SOCKET in this process's environment for tgtadm).
  static Result<std::unique_ptr<TgtDaemon>> Start(const std::string& state_dir,
                                                  const std::string& host, int port);
  ~TgtDaemon();
  TgtDaemon(const TgtDaemon&) = delete;
  TgtDaemon& operator=(const TgtDaemon&) = delete;

  // One LUN of a target: its backing file, its block size, the NAA-6 of
  // VPD 0x83 (scsi_id: 32 hex digits starting with 6) and the VPD 0x80
  // serial. read_only: tgt's readonly=1, so every WRITE fails with DATA
  // PROTECT / WRITE PROTECTED.
  struct Lun {
    int lun = 1;
    std::string file;
    uint32_t block_size = 512;
    std::string scsi_id;
    std::string serial;
    bool read_only = false;
  };
  // A target: open to one initiator IQN ("" for every initiator), with
  // one-way CHAP when chap_user is set, and its LUNs.
  struct Target {
    int tid = 0;
    std::string iqn;
    std::string initiator_iqn;
    std::string chap_user;
    std::string chap_password;
    std::vector<Lun> luns;
  };
  // Creates the target; on failure removes what it had made of it.
  Status AddTarget(const Target& target);
  // Puts every target of this daemon in tgt's state "offline" (true) or
  // back to "ready": offline, tgtd leaves commands unanswered, so an
  // initiator sees its I/O time out, as with a controller gone away. A
  // target added while offline is offline too.
  Status SetOffline(bool offline);
  // False once tgtd has died (the array answers 503 then).
  bool Running();
  // Freeze() stops the whole daemon (SIGSTOP, and waits until it is
  // stopped): no backing-store write runs until Thaw() (SIGCONT). Commands
  // that arrive meanwhile wait in the sockets; none is lost. Not tgt's
  // target state "offline": tgtd never answers a command that arrives on an
  // offline target, so a live initiator hangs. No tgtadm call may be made
  // while frozen.
  Status Freeze();
  void Thaw();
  // Removes a target and its LUNs, sessions or not. OK when it is not there.
  Status DeleteTarget(int tid);

  // Deletes what this object created, then the daemon; never fails.
  void Stop();

  int port() const { return port_; }

 private:
  TgtDaemon(std::string dir, std::string host, int port, int control)
      : dir_(std::move(dir)), host_(std::move(host)), port_(port), control_(control) {}
  Status Launch(bool* port_taken);
  Result<std::string> Admin(std::vector<std::string> args) const;
  Status SetTargetState(int tid, bool offline);
  bool WaitForExit(int milliseconds);

  std::string dir_;
  std::string host_;
  int port_;
  int control_;
  pid_t pid_ = -1;
  std::set<int> tids_;
  std::map<int, std::string> chap_user_of_;  // tid -> its CHAP account
  bool offline_ = false;
};

}  // namespace snapset::mock

#endif  // SNAPSET_PROVIDERS_MOCK_ARRAY_TGT_DAEMON_HPP
