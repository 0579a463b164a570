// A private tgtd (the Linux SCSI target daemon, package tgt) for tests that
// need a real iSCSI target. Each instance runs in the foreground with its own
// loopback portal, control number and IPC socket in its own temporary
// directory, so several can run side by side and next to a system tgtd.
//
// Needs root and the tgt package. Not thread-safe; use one instance from one
// thread.
#ifndef SNAPSET_TESTS_SUPPORT_TGTD_HPP
#define SNAPSET_TESTS_SUPPORT_TGTD_HPP

#include <snapset/status.hpp>

#include <sys/types.h>

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace snapset::test {

class Tgtd {
 public:
  // OK when Start() can work here; otherwise says what is missing (root,
  // tgtd, tgtadm).
  static Status CheckPrerequisites();

  // Starts a daemon with an iSCSI portal on 127.0.0.1 and a free port.
  static Result<std::unique_ptr<Tgtd>> Start();

  // Deletes every target and the daemon, kills it if it lingers, and removes
  // its temporary directory. Never fails.
  ~Tgtd();

  Tgtd(const Tgtd&) = delete;
  Tgtd& operator=(const Tgtd&) = delete;

  // Exports backing_file as LUN `lun` (1 or more; tgt keeps LUN 0 for its
  // controller) of target `iqn`, which is created, open to every initiator,
  // on first use. scsi_id_hex32 (32 hex digits) and serial replace tgt's
  // default identifiers, which repeat across instances.
  Status AddLun(std::string iqn, int lun, std::string backing_file,
                std::string scsi_id_hex32, std::string serial);

  // Lets only `initiator` log in to target `iqn` (made by AddLun) from now
  // on, as an array maps a LUN to one host.
  Status RestrictTo(const std::string& iqn, const std::string& initiator);

  int port() const { return port_; }
  // iscsi://127.0.0.1:PORT/IQN/LUN
  std::string url(std::string_view iqn, int lun) const;

 private:
  struct Programs {
    std::string tgtd;
    std::string tgtadm;
  };

  Tgtd(Programs programs, std::string dir, int port);

  static Result<Programs> FindPrograms();
  // Runs the daemon and waits until it serves its portal. Sets *port_taken
  // when another process holds the port, which is worth another try.
  Status Launch(bool* port_taken);
  // Runs tgtadm for this instance and returns what it printed.
  Result<std::string> Admin(const std::vector<std::string>& args) const;
  std::vector<std::string> Environment() const;
  std::string LogTail() const;
  bool WaitForExit(int milliseconds);
  void Stop();

  Programs programs_;
  std::string dir_;
  int port_;
  int control_;  // tgtd -C / tgtadm -C
  pid_t pid_ = -1;
  std::map<std::string, int> tids_;  // target IQN -> tid
};

}  // namespace snapset::test

#endif  // SNAPSET_TESTS_SUPPORT_TGTD_HPP
