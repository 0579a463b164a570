// SPDX-License-Identifier: Apache-2.0
// One iSCSI login session to one LUN, driven by its own poll loop so that
// every step, the TCP connect included, ends by the caller's deadline
// (private to the iSCSI LUN toolkit; ProbeLun is its user).
//
// libiscsi's *_sync calls give no such bound: iscsi_set_timeout() limits
// each PDU, not the whole probe, counts whole seconds on a clock that ticks
// in seconds (a 1 s timeout fires after 0 to 1 s), and a dropped session
// makes libiscsi reconnect in a loop that sleeps. So iscsi_set_timeout() is
// not used: the deadline here is the only timer, and reconnection is off.
//
// Thread-safety: none; a session lives on one thread, as its context must.
#ifndef SNAPSET_ISCSI_LUN_SESSION_HPP
#define SNAPSET_ISCSI_LUN_SESSION_HPP

#include <chrono>
#include <deque>
#include <snapset/iscsi_lun.hpp>
#include <string>
#include <string_view>

#include "iscsi/libiscsi_handles.hpp"

namespace snapset::iscsi::detail {

// Where one asynchronous libiscsi call reports back.
struct Completion {
  bool done = false;
  int status = SCSI_STATUS_GOOD;
  TaskPtr task;  // SCSI commands only
};

class LunSession {
 public:
  using Clock = std::chrono::steady_clock;

  // REQUIRES: `ctx` was created for login.initiator_iqn and is not yet
  // connected. `budget` is what "timed out after N ms" says.
  LunSession(ContextPtr ctx, LunUrl url, LunLogin login, Clock::time_point deadline,
             std::chrono::milliseconds budget);
  LunSession(const LunSession&) = delete;
  LunSession& operator=(const LunSession&) = delete;

  // Connects to `portal` (numeric "address:port"), logs in, following up to
  // a few redirects, and absorbs the unit attentions of a fresh session.
  Status Login(const std::string& portal);
  // VPD 0x83 (logical-unit designators, wire order) and 0x80 into
  // `identity`; a page the target does not have leaves its part empty.
  Status ReadIdentity(LunIdentity& identity);
  // READ CAPACITY(16) into identity.capacity_bytes and block_size.
  Status ReadCapacity(LunIdentity& identity);
  // Ends the session politely. Best effort: the context is torn down either
  // way, and the target loses nothing if the logout goes unanswered.
  void Logout();

 private:
  Status TestUnitReady();
  Status ReadDesignators(LunIdentity& identity);
  Status ReadSerial(LunIdentity& identity);
  // INQUIRY of VPD page `code` decoded into *page, which `task` owns; *page
  // stays null when the target does not have the page. `name` is the
  // page's, for messages ("VPD page 0x83").
  template <typename Page>
  Status ReadVpdPage(int code, std::string_view name, TaskPtr& task, Page** page);
  Result<TaskPtr> InquiryVpd(int page, std::string_view step);

  // Starts one asynchronous call (`start` returns libiscsi's 0 or -1) and
  // services the context until it completes or the deadline passes.
  template <typename Start>
  Status Send(std::string_view step, Start start);
  // Send, and a completion status other than GOOD is a failure too.
  template <typename Start>
  Status Call(std::string_view step, Start start);
  // Queues one SCSI command with `queue` and waits for its task. A task
  // comes back whatever its SCSI status; only a transport failure is an error.
  template <typename Queue>
  Result<TaskPtr> Run(std::string_view step, Queue queue);
  Status Wait(const Completion& completion, std::string_view step);
  void NoteSocketError(int fd, int revents);

  Status TimedOut(std::string_view step) const;
  Status Failed(std::string_view step) const;
  Status LoginRefused() const;
  std::string Redacted(std::string text) const;
  Status CheckTask(const scsi_task& task, std::string_view step) const;
  Status CheckPeripheral(int qualifier) const;

  // Completions must outlive the context: destroying it calls back, with
  // SCSI_STATUS_CANCELLED, whatever is still pending. Members are destroyed
  // in reverse order, and a deque never moves its elements.
  std::deque<Completion> completions_;
  ContextPtr ctx_;
  LunUrl url_;
  LunLogin login_;
  Clock::time_point deadline_;
  std::chrono::milliseconds budget_;
  int socket_error_ = 0;
};

}  // namespace snapset::iscsi::detail

#endif  // SNAPSET_ISCSI_LUN_SESSION_HPP
