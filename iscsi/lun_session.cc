// SPDX-License-Identifier: Apache-2.0
#include "iscsi/lun_session.hpp"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <limits>
#include <thread>
#include <utility>

namespace snapset::iscsi::detail {
namespace {

using std::chrono::milliseconds;

// The INQUIRY allocation length field has 16 bits.
constexpr int kMaxInquiryLength = 65535;
// Login redirections followed, and unit attentions absorbed, before giving up.
constexpr int kMaxRedirects = 4;
constexpr int kMaxUnitAttentions = 8;
// How long to nap when libiscsi has nothing to poll for.
constexpr milliseconds kIdlePause{100};

void OnDone(iscsi_context*, int status, void* command_data, void* data) {
  auto* completion = static_cast<Completion*>(data);
  completion->done = true;
  completion->status = status;
  // The callback owns a SCSI task, also one cancelled when the context is
  // destroyed, whose status libiscsi leaves unset (as its sync calls show).
  if (command_data != nullptr && completion->task == nullptr) {
    completion->task.reset(static_cast<scsi_task*>(command_data));
    completion->task->status = status;
  }
}

bool LunNotSupported(const scsi_task& task) {
  return task.status == SCSI_STATUS_CHECK_CONDITION &&
         task.sense.key == SCSI_SENSE_ILLEGAL_REQUEST &&
         task.sense.ascq == SCSI_SENSE_ASCQ_LOGICAL_UNIT_NOT_SUPPORTED;
}

// A target without the page (ILLEGAL REQUEST, other than for the LUN) just
// has no such identity; any other failure is an error.
bool PageMissing(const scsi_task& task) {
  return task.status == SCSI_STATUS_CHECK_CONDITION &&
         task.sense.key == SCSI_SENSE_ILLEGAL_REQUEST && !LunNotSupported(task);
}

}  // namespace

LunSession::LunSession(ContextPtr ctx, LunUrl url, LunLogin login, Clock::time_point deadline,
                       milliseconds budget)
    : ctx_(std::move(ctx)),
      url_(std::move(url)),
      login_(std::move(login)),
      deadline_(deadline),
      budget_(budget) {}

Status LunSession::Login(const std::string& portal) {
  iscsi_context* ctx = ctx_.get();
  iscsi_set_targetname(ctx, url_.target_iqn.c_str());
  iscsi_set_session_type(ctx, ISCSI_SESSION_NORMAL);
  iscsi_set_header_digest(ctx, ISCSI_HEADER_DIGEST_NONE_CRC32C);
  iscsi_set_noautoreconnect(ctx, 1);
  if (!login_.chap_user.empty()) {
    iscsi_set_initiator_username_pwd(ctx, login_.chap_user.c_str(), login_.chap_password.c_str());
  }
  if (!login_.target_user.empty()) {
    iscsi_set_target_username_pwd(ctx, login_.target_user.c_str(), login_.target_password.c_str());
  }
  // What iscsi_full_connect_async() does, without its helper record, which
  // libiscsi leaks when the context is destroyed mid-login (a timeout).
  std::string address = portal;
  for (int redirects = 0;; ++redirects) {
    SNAPSET_RETURN_IF_ERROR(Call("connecting", [&](Completion& c) {
      return iscsi_connect_async(ctx, address.c_str(), OnDone, &c);
    }));
    Completion* login_done = nullptr;
    SNAPSET_RETURN_IF_ERROR(Send("logging in", [&](Completion& c) {
      login_done = &c;
      return iscsi_login_async(ctx, OnDone, &c);
    }));
    if (login_done->status == SCSI_STATUS_GOOD) break;
    // A target may send the initiator to another portal.
    const char* redirect = iscsi_get_target_address(ctx);
    if (login_done->status != SCSI_STATUS_REDIRECT || redirects == kMaxRedirects ||
        redirect == nullptr || redirect[0] == '\0') {
      return LoginRefused();
    }
    address = redirect;
    iscsi_disconnect(ctx);
  }
  return TestUnitReady();
}

Status LunSession::ReadIdentity(LunIdentity& identity) {
  SNAPSET_RETURN_IF_ERROR(ReadDesignators(identity));
  return ReadSerial(identity);
}

Status LunSession::ReadCapacity(LunIdentity& identity) {
  constexpr std::string_view kStep = "reading the capacity";
  Result<TaskPtr> task = Run(kStep, [&](Completion& c) {
    return iscsi_readcapacity16_task(ctx_.get(), url_.lun, OnDone, &c);
  });
  if (!task.ok()) return task.status();
  SNAPSET_RETURN_IF_ERROR(CheckTask(**task, kStep));
  auto* rc16 = static_cast<scsi_readcapacity16*>(scsi_datain_unmarshall(task->get()));
  if (rc16 == nullptr || rc16->block_length == 0) {
    return Status::Unavailable(url_.canonical + ": malformed READ CAPACITY(16) data");
  }
  uint64_t bytes = 0;
  if (rc16->returned_lba == UINT64_MAX ||
      __builtin_mul_overflow(rc16->returned_lba + 1, rc16->block_length, &bytes)) {
    return Status::Unavailable(url_.canonical + ": capacity does not fit 64 bits");
  }
  identity.capacity_bytes = bytes;
  identity.block_size = rc16->block_length;
  return Status::Ok();
}

void LunSession::Logout() {
  static_cast<void>(Send(
      "logging out", [&](Completion& c) { return iscsi_logout_async(ctx_.get(), OnDone, &c); }));
}

// Absorbs the unit attentions a fresh session brings (tgt reports a
// power-on reset first), which would otherwise fail the first real command,
// and tells a missing LUN from other trouble.
Status LunSession::TestUnitReady() {
  constexpr std::string_view kStep = "testing the LUN";
  for (int attention = 0;; ++attention) {
    Result<TaskPtr> task = Run(kStep, [&](Completion& c) {
      return iscsi_testunitready_task(ctx_.get(), url_.lun, OnDone, &c);
    });
    if (!task.ok()) return task.status();
    const bool unit_attention = (*task)->status == SCSI_STATUS_CHECK_CONDITION &&
                                (*task)->sense.key == SCSI_SENSE_UNIT_ATTENTION;
    if (!unit_attention || attention == kMaxUnitAttentions) return CheckTask(**task, kStep);
  }
}

Status LunSession::ReadDesignators(LunIdentity& identity) {
  TaskPtr task;
  scsi_inquiry_device_identification* page = nullptr;
  SNAPSET_RETURN_IF_ERROR(
      ReadVpdPage(SCSI_INQUIRY_PAGECODE_DEVICE_IDENTIFICATION, "VPD page 0x83", task, &page));
  if (page == nullptr) return Status::Ok();
  for (const auto* d = page->designators; d != nullptr; d = d->next) {
    if (d->association != SCSI_ASSOCIATION_LOGICAL_UNIT) continue;
    const auto* bytes = reinterpret_cast<const uint8_t*>(d->designator);
    identity.designators.push_back(
        LunDesignator{static_cast<uint8_t>(d->designator_type), static_cast<uint8_t>(d->code_set),
                      static_cast<uint8_t>(d->association),
                      std::vector<uint8_t>(bytes, bytes + std::max(d->designator_length, 0))});
  }
  // libiscsi prepends each designator it parses: its list is in reverse wire order.
  std::reverse(identity.designators.begin(), identity.designators.end());
  identity.naa = PreferredNaa(identity.designators);
  return Status::Ok();
}

Status LunSession::ReadSerial(LunIdentity& identity) {
  TaskPtr task;
  scsi_inquiry_unit_serial_number* page = nullptr;
  SNAPSET_RETURN_IF_ERROR(
      ReadVpdPage(SCSI_INQUIRY_PAGECODE_UNIT_SERIAL_NUMBER, "VPD page 0x80", task, &page));
  if (page == nullptr) return Status::Ok();
  if (page->usn == nullptr)
    return Status::Unavailable(url_.canonical + ": malformed VPD page 0x80");
  identity.serial = TrimSerial(page->usn);
  return Status::Ok();
}

template <typename Page>
Status LunSession::ReadVpdPage(int code, std::string_view name, TaskPtr& task, Page** page) {
  *page = nullptr;
  const std::string step = "reading " + std::string(name);
  Result<TaskPtr> done = InquiryVpd(code, step);
  if (!done.ok()) return done.status();
  task = std::move(*done);
  if (PageMissing(*task)) return Status::Ok();
  SNAPSET_RETURN_IF_ERROR(CheckTask(*task, step));
  *page = static_cast<Page*>(scsi_datain_unmarshall(task.get()));
  if (*page == nullptr) {
    return Status::Unavailable(url_.canonical + ": malformed " + std::string(name));
  }
  return CheckPeripheral((*page)->qualifier);
}

// INQUIRY of one VPD page, asked again with the page's full length when the
// first answer was cut short.
Result<TaskPtr> LunSession::InquiryVpd(int page, std::string_view step) {
  int length = 255;
  for (;;) {
    Result<TaskPtr> task = Run(step, [&](Completion& c) {
      return iscsi_inquiry_task(ctx_.get(), url_.lun, 1, page, length, OnDone, &c);
    });
    if (!task.ok() || (*task)->status != SCSI_STATUS_GOOD) return task;
    const int full = scsi_datain_getfullsize(task->get());
    if (full <= length || length == kMaxInquiryLength) return task;
    length = std::min(full, kMaxInquiryLength);
  }
}

template <typename Start>
Status LunSession::Send(std::string_view step, Start start) {
  Completion& completion = completions_.emplace_back();
  if (start(completion) != 0) return Failed(step);
  return Wait(completion, step);
}

template <typename Start>
Status LunSession::Call(std::string_view step, Start start) {
  Completion* completion = nullptr;
  SNAPSET_RETURN_IF_ERROR(Send(step, [&](Completion& c) {
    completion = &c;
    return start(c);
  }));
  return completion->status == SCSI_STATUS_GOOD ? Status::Ok() : Failed(step);
}

template <typename Queue>
Result<TaskPtr> LunSession::Run(std::string_view step, Queue queue) {
  Completion* completion = nullptr;
  SNAPSET_RETURN_IF_ERROR(Send(step, [&](Completion& c) {
    completion = &c;
    return queue(c) == nullptr ? -1 : 0;
  }));
  if (completion->task == nullptr) return Failed(step);
  return std::move(completion->task);
}

// Services the context until `completion` is done or the deadline passes.
Status LunSession::Wait(const Completion& completion, std::string_view step) {
  iscsi_context* ctx = ctx_.get();
  while (!completion.done) {
    const Clock::time_point now = Clock::now();
    if (now >= deadline_) return TimedOut(step);
    const milliseconds left = std::chrono::ceil<milliseconds>(deadline_ - now);
    pollfd pfd{iscsi_get_fd(ctx), static_cast<short>(iscsi_which_events(ctx)), 0};
    int ready = 0;
    if (pfd.events == 0) {
      std::this_thread::sleep_for(std::min(left, kIdlePause));
    } else {
      const auto wait = std::min<int64_t>(left.count(), std::numeric_limits<int>::max());
      ready = poll(&pfd, 1, static_cast<int>(wait));
      if (ready < 0 && errno != EINTR) {
        return Status::Unavailable(url_.canonical + ": poll failed " + std::string(step) + ": " +
                                   std::strerror(errno));
      }
    }
    const int revents = ready > 0 ? pfd.revents : 0;
    NoteSocketError(pfd.fd, revents);
    if (iscsi_service(ctx, revents) < 0) return Failed(step);
  }
  return Status::Ok();
}

// Keeps the error of a failing socket before iscsi_service() closes it:
// libiscsi reports a refused or reset connection only as a failed reconnect.
void LunSession::NoteSocketError(int fd, int revents) {
  if ((revents & (POLLERR | POLLHUP)) == 0) return;
  int error = 0;
  socklen_t length = sizeof(error);
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0 && error != 0) {
    socket_error_ = error;
  }
}

Status LunSession::TimedOut(std::string_view step) const {
  return Status::Unavailable(url_.canonical + ": timed out after " +
                             std::to_string(budget_.count()) + " ms " + std::string(step));
}

Status LunSession::Failed(std::string_view step) const {
  std::string why = socket_error_ != 0 ? std::strerror(socket_error_) : iscsi_get_error(ctx_.get());
  while (!why.empty() && std::isspace(static_cast<unsigned char>(why.back()))) why.pop_back();
  return Status::Unavailable(url_.canonical + ": failed " + std::string(step) + ": " +
                             Redacted(std::move(why)));
}

// A target answers "not found" to an initiator it does not map the LUN to:
// say which name was used (and, from the caller, how to change it).
Status LunSession::LoginRefused() const {
  const Status failed = Failed("logging in");
  std::string note = " (as initiator " + login_.initiator_iqn +
                     "; an array that does not map the LUN to that name refuses the log-in";
  if (!login_.refused_hint.empty()) note += ": " + login_.refused_hint;
  return Status(failed.code(), failed.message() + note + ")");
}

// libiscsi's error texts are not known to quote a CHAP secret; this makes
// sure they never do.
std::string LunSession::Redacted(std::string text) const {
  for (const std::string* secret : {&login_.chap_password, &login_.target_password}) {
    if (secret->empty()) continue;
    // On past each replacement: a secret may be part of "***".
    for (size_t at = text.find(*secret); at != std::string::npos; at = text.find(*secret, at + 3)) {
      text.replace(at, secret->size(), "***");
    }
  }
  return text;
}

Status LunSession::CheckTask(const scsi_task& task, std::string_view step) const {
  if (task.status == SCSI_STATUS_GOOD) return Status::Ok();
  if (LunNotSupported(task)) {
    return Status::NotFound(url_.canonical + ": no such LUN at the target");
  }
  if (task.status == SCSI_STATUS_CHECK_CONDITION) {
    return Status::Unavailable(url_.canonical + ": " + std::string(step) +
                               " failed: " + scsi_sense_key_str(task.sense.key) + ", " +
                               scsi_sense_ascq_str(task.sense.ascq));
  }
  return Status::Unavailable(url_.canonical + ": " + std::string(step) +
                             " failed with SCSI status " + std::to_string(task.status));
}

Status LunSession::CheckPeripheral(int qualifier) const {
  if (qualifier == SCSI_INQUIRY_PERIPHERAL_QUALIFIER_NOT_SUPPORTED) {
    return Status::NotFound(url_.canonical + ": no such LUN at the target");
  }
  return Status::Ok();
}

}  // namespace snapset::iscsi::detail
