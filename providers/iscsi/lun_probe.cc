#include "providers/iscsi/lun_probe.hpp"

#include <arpa/inet.h>
#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <limits>
#include <memory>
#include <mutex>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "providers/iscsi/volume_matcher.hpp"

namespace snapset::iscsi {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr std::string_view kUrlForm = "iscsi://host[:port]/target-iqn/lun";
constexpr std::string_view kDefaultPort = "3260";
// libiscsi encodes LUNs with the flat space addressing method: 14 bits.
constexpr int kMaxLun = 16383;
// The INQUIRY allocation length field has 16 bits.
constexpr int kMaxInquiryLength = 65535;
// Login redirections followed, and unit attentions absorbed, before giving up.
constexpr int kMaxRedirects = 4;
constexpr int kMaxUnitAttentions = 8;
// How long to nap when libiscsi has nothing to poll for.
constexpr milliseconds kIdlePause{100};

struct ContextDeleter {
  void operator()(iscsi_context* c) const { iscsi_destroy_context(c); }
};
struct UrlDeleter {
  void operator()(iscsi_url* u) const { iscsi_destroy_url(u); }
};
struct TaskDeleter {
  void operator()(scsi_task* t) const { scsi_free_scsi_task(t); }
};
using ContextPtr = std::unique_ptr<iscsi_context, ContextDeleter>;
using UrlPtr = std::unique_ptr<iscsi_url, UrlDeleter>;
using TaskPtr = std::unique_ptr<scsi_task, TaskDeleter>;

// Drops a "user%password@" part: a malformed URL is quoted back to the
// caller, and must not carry a secret into a log.
std::string WithoutCredentials(std::string_view url) {
  const size_t scheme = url.find("://");
  if (scheme == std::string_view::npos) return std::string(url);
  const size_t start = scheme + 3;
  const size_t end = std::min(url.find('/', start), url.size());
  const size_t at = url.substr(0, end).rfind('@');
  if (at == std::string_view::npos || at < start) return std::string(url);
  return std::string(url.substr(0, start)) + std::string(url.substr(at + 1));
}

Status BadUrl(std::string_view url, std::string_view why) {
  return Status::InvalidArgument("invalid iSCSI URL '" + WithoutCredentials(url) +
                                 "': " + std::string(why) + "; expected " + std::string(kUrlForm));
}

// libiscsi's parse error is "Invalid URL <url>" (which would quote
// credentials), the reason, and the expected form, one a line. Keeps the reason.
std::string ParseFailureReason(iscsi_context* ctx) {
  std::string_view error = iscsi_get_error(ctx);
  const size_t first = error.find('\n');
  if (first == std::string_view::npos) return "cannot parse it";
  error.remove_prefix(first + 1);
  const std::string_view reason = error.substr(0, error.find('\n'));
  if (reason.empty() || reason.starts_with("iSCSI URL must be")) return "cannot parse it";
  return std::string(reason);
}

struct Target {
  std::string host;  // an IPv6 literal keeps its brackets
  std::string port;
  std::string iqn;
  int lun = 0;
  std::string url;  // iscsi://host:port/iqn/lun: what every message names
};

Status SplitPortal(std::string_view url, std::string_view portal, Target& target) {
  const size_t bracket = portal.rfind(']');
  const size_t colon = portal.rfind(':');
  const bool has_port =
      colon != std::string_view::npos && (bracket == std::string_view::npos || colon > bracket);
  const std::string_view host = has_port ? portal.substr(0, colon) : portal;
  const std::string_view port = has_port ? portal.substr(colon + 1) : kDefaultPort;
  if (host.empty() || host == "[]") return BadUrl(url, "no host");
  int number = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), number);
  if (ec != std::errc() || end != port.data() + port.size() || number < 1 || number > 65535) {
    return BadUrl(url, "port must be a number from 1 to 65535");
  }
  target.host = std::string(host);
  target.port = std::to_string(number);
  return Status::Ok();
}

// The fields are copied out because libiscsi frees an iscsi_url through the
// context that parsed it.
Result<Target> ParseUrl(iscsi_context* ctx, const std::string& url) {
  const UrlPtr parsed(iscsi_parse_full_url(ctx, url.c_str()));
  if (!parsed) return BadUrl(url, ParseFailureReason(ctx));
  // CHAP comes from LunLogin alone, so that a URL, which is logged freely,
  // never carries a secret, and no two sources disagree.
  if (parsed->user[0] != '\0' || parsed->passwd[0] != '\0' || parsed->target_user[0] != '\0') {
    return BadUrl(url, "credentials belong in the login, not in the URL");
  }
  if (parsed->target[0] == '\0') return BadUrl(url, "no target IQN");
  if (parsed->lun < 0 || parsed->lun > kMaxLun) {
    return BadUrl(url, "LUN must be from 0 to " + std::to_string(kMaxLun));
  }
  Target target;
  SNAPSET_RETURN_IF_ERROR(SplitPortal(url, parsed->portal, target));
  target.iqn = parsed->target;
  target.lun = parsed->lun;
  target.url = "iscsi://" + target.host + ":" + target.port + "/" + target.iqn + "/" +
               std::to_string(target.lun);
  return target;
}

bool IsNumericHost(const std::string& host) {
  unsigned char address[sizeof(in6_addr)];
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    return inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), address) == 1;
  }
  return inet_pton(AF_INET, host.c_str(), address) == 1;
}

// The numeric portal to connect to. libiscsi would resolve a name itself
// with getaddrinfo(), which knows no deadline, so a name is resolved on a
// helper thread, taking the first address as libiscsi would. If the
// deadline passes first the thread finishes alone: it owns what it touches.
Result<std::string> ResolvePortal(const Target& target, Clock::time_point deadline) {
  if (IsNumericHost(target.host)) return target.host + ":" + target.port;
  struct Lookup {
    std::mutex mutex;
    std::condition_variable done_cv;
    bool done = false;
    int error = 0;
    std::string address;
  };
  auto lookup = std::make_shared<Lookup>();
  std::thread([lookup, host = target.host] {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    const int error = getaddrinfo(host.c_str(), nullptr, &hints, &found);
    std::string address;
    if (error == 0) {
      char text[INET6_ADDRSTRLEN] = "";
      getnameinfo(found->ai_addr, found->ai_addrlen, text, sizeof(text), nullptr, 0,
                  NI_NUMERICHOST);
      freeaddrinfo(found);
      address = std::strchr(text, ':') != nullptr ? "[" + std::string(text) + "]" : text;
    }
    std::lock_guard lock(lookup->mutex);
    lookup->error = error;
    lookup->address = std::move(address);
    lookup->done = true;
    lookup->done_cv.notify_all();
  }).detach();
  std::unique_lock lock(lookup->mutex);
  if (!lookup->done_cv.wait_until(lock, deadline, [&] { return lookup->done; })) {
    return Status::Unavailable(target.url + ": deadline passed while resolving " + target.host);
  }
  if (lookup->error != 0) {
    return Status::Unavailable(target.url + ": cannot resolve " + target.host + ": " +
                               gai_strerror(lookup->error));
  }
  return lookup->address + ":" + target.port;
}

// Where one asynchronous libiscsi call reports back.
struct Completion {
  bool done = false;
  int status = SCSI_STATUS_GOOD;
  TaskPtr task;  // SCSI commands only
};

void OnDone(iscsi_context*, int status, void* command_data, void* data) {
  auto* completion = static_cast<Completion*>(data);
  completion->done = true;
  completion->status = status;
  // The callback owns a SCSI task, also one cancelled when the context is
  // destroyed, whose status libiscsi leaves unset.
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

// Padding spaces (and the NULs some targets use) around a VPD 0x80 serial.
std::string TrimSerial(std::string_view serial) {
  const auto pad = [](char c) { return c == ' ' || c == '\0'; };
  while (!serial.empty() && pad(serial.front())) serial.remove_prefix(1);
  while (!serial.empty() && pad(serial.back())) serial.remove_suffix(1);
  return std::string(serial);
}

std::string HexLower(const unsigned char* bytes, int length) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < length; ++i) {
    out += kDigits[bytes[i] >> 4];
    out += kDigits[bytes[i] & 0xf];
  }
  return out;
}

// How much an NAA designator is worth as a LUN's identity, by its NAA field
// (the top nibble, SPC-4 7.7.6.6), ranked as the core ranks it for
// snapset_volume.naa, so that the probe and the host agree on a LUN's NAA.
// Registered formats (6, then 5) and IEEE Extended (2) are globally unique;
// Locally Assigned (3) is unique within one target only: tgt sends one built
// from the target and LUN numbers, repeated across arrays, before the NAA-6
// the array reports.
int NaaRank(const scsi_inquiry_device_designator& d) {
  if (d.designator_length <= 0) return -1;
  switch (static_cast<unsigned char>(d.designator[0]) >> 4) {
    case 6:
      return 4;
    case 5:
      return 3;
    case 2:
      return 2;
    case 3:
      return 1;
    default:
      return 0;
  }
}

// The best NAA designator of the logical unit; among equals the first on the
// wire. "" when there is none.
std::string PreferredNaa(const scsi_inquiry_device_identification& page) {
  std::vector<const scsi_inquiry_device_designator*> naas;
  for (const auto* d = page.designators; d != nullptr; d = d->next) {
    if (d->designator_type == SCSI_DESIGNATOR_TYPE_NAA &&
        d->association == SCSI_ASSOCIATION_LOGICAL_UNIT) {
      naas.push_back(d);
    }
  }
  // libiscsi prepends each designator it parses: its list is in reverse wire order.
  std::reverse(naas.begin(), naas.end());
  const scsi_inquiry_device_designator* best = nullptr;
  for (const auto* d : naas) {
    if (best == nullptr || NaaRank(*d) > NaaRank(*best)) best = d;
  }
  if (best == nullptr || best->designator_length <= 0) return "";
  return HexLower(reinterpret_cast<const unsigned char*>(best->designator),
                  best->designator_length);
}

// One login session driven by its own poll loop, so that every step, the TCP
// connect included, ends by the caller's deadline: libiscsi's sync calls
// wait without bound unless iscsi_set_timeout() is set, and even then it
// bounds each PDU in whole seconds, not the probe. Reconnection is off, as a
// dropped session would make libiscsi retry in a sleeping loop.
class Session {
 public:
  Session(ContextPtr ctx, Target target, Clock::time_point deadline, milliseconds budget,
          std::string secret)
      : ctx_(std::move(ctx)),
        target_(std::move(target)),
        deadline_(deadline),
        budget_(budget),
        secret_(std::move(secret)) {}

  Status Login(const LunLogin& login, const std::string& portal) {
    iscsi_context* ctx = ctx_.get();
    iscsi_set_targetname(ctx, target_.iqn.c_str());
    iscsi_set_session_type(ctx, ISCSI_SESSION_NORMAL);
    iscsi_set_header_digest(ctx, ISCSI_HEADER_DIGEST_NONE_CRC32C);
    iscsi_set_noautoreconnect(ctx, 1);
    if (!login.chap_user.empty()) {
      iscsi_set_initiator_username_pwd(ctx, login.chap_user.c_str(), login.chap_password.c_str());
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
        return Failed("logging in");
      }
      address = redirect;
      iscsi_disconnect(ctx);
    }
    return TestUnitReady();
  }

  Status ReadNaa(LunIdentity& identity) {
    constexpr std::string_view kStep = "reading VPD page 0x83";
    Result<TaskPtr> task = InquiryVpd(SCSI_INQUIRY_PAGECODE_DEVICE_IDENTIFICATION, kStep);
    if (!task.ok()) return task.status();
    SNAPSET_RETURN_IF_ERROR(CheckTask(**task, kStep));
    auto* page =
        static_cast<scsi_inquiry_device_identification*>(scsi_datain_unmarshall(task->get()));
    if (page == nullptr) return Status::Unavailable(target_.url + ": malformed VPD page 0x83");
    identity.naa = PreferredNaa(*page);
    return Status::Ok();
  }

  Status ReadSerial(LunIdentity& identity) {
    constexpr std::string_view kStep = "reading VPD page 0x80";
    Result<TaskPtr> task = InquiryVpd(SCSI_INQUIRY_PAGECODE_UNIT_SERIAL_NUMBER, kStep);
    if (!task.ok()) return task.status();
    SNAPSET_RETURN_IF_ERROR(CheckTask(**task, kStep));
    auto* page = static_cast<scsi_inquiry_unit_serial_number*>(scsi_datain_unmarshall(task->get()));
    if (page == nullptr || page->usn == nullptr) {
      return Status::Unavailable(target_.url + ": malformed VPD page 0x80");
    }
    identity.serial = TrimSerial(page->usn);
    return Status::Ok();
  }

  Status ReadCapacity(LunIdentity& identity) {
    constexpr std::string_view kStep = "reading the capacity";
    Result<TaskPtr> task = Run(kStep, [&](Completion& c) {
      return iscsi_readcapacity16_task(ctx_.get(), target_.lun, OnDone, &c);
    });
    if (!task.ok()) return task.status();
    SNAPSET_RETURN_IF_ERROR(CheckTask(**task, kStep));
    auto* rc16 = static_cast<scsi_readcapacity16*>(scsi_datain_unmarshall(task->get()));
    if (rc16 == nullptr || rc16->block_length == 0) {
      return Status::Unavailable(target_.url + ": malformed READ CAPACITY(16) data");
    }
    uint64_t bytes = 0;
    if (rc16->returned_lba == UINT64_MAX ||
        __builtin_mul_overflow(rc16->returned_lba + 1, rc16->block_length, &bytes)) {
      return Status::Unavailable(target_.url + ": capacity does not fit 64 bits");
    }
    identity.capacity_bytes = bytes;
    identity.block_size = rc16->block_length;
    return Status::Ok();
  }

  // Best effort: the identity is already read, and the target loses nothing
  // when a logout goes unanswered; the context is torn down either way.
  void Logout() {
    static_cast<void>(Send(
        "logging out", [&](Completion& c) { return iscsi_logout_async(ctx_.get(), OnDone, &c); }));
  }

 private:
  // Absorbs the unit attentions a fresh session brings (tgt reports a
  // power-on reset first), which would otherwise fail READ CAPACITY.
  Status TestUnitReady() {
    constexpr std::string_view kStep = "testing the LUN";
    for (int attention = 0;; ++attention) {
      Result<TaskPtr> task = Run(kStep, [&](Completion& c) {
        return iscsi_testunitready_task(ctx_.get(), target_.lun, OnDone, &c);
      });
      if (!task.ok()) return task.status();
      const bool unit_attention = (*task)->status == SCSI_STATUS_CHECK_CONDITION &&
                                  (*task)->sense.key == SCSI_SENSE_UNIT_ATTENTION;
      if (!unit_attention || attention == kMaxUnitAttentions) return CheckTask(**task, kStep);
    }
  }

  // INQUIRY of one VPD page, asked again with the page's full length when
  // the first answer was cut short.
  Result<TaskPtr> InquiryVpd(int page, std::string_view step) {
    int length = 255;
    for (;;) {
      Result<TaskPtr> task = Run(step, [&](Completion& c) {
        return iscsi_inquiry_task(ctx_.get(), target_.lun, 1, page, length, OnDone, &c);
      });
      if (!task.ok() || (*task)->status != SCSI_STATUS_GOOD) return task;
      const int full = scsi_datain_getfullsize(task->get());
      if (full <= length || length == kMaxInquiryLength) return task;
      length = std::min(full, kMaxInquiryLength);
    }
  }

  // Queues one SCSI command with `queue` and waits for its task. A task comes
  // back whatever its SCSI status; only a transport failure is an error.
  template <typename Queue>
  Result<TaskPtr> Run(std::string_view step, Queue queue) {
    Completion* completion = nullptr;
    SNAPSET_RETURN_IF_ERROR(Send(step, [&](Completion& c) {
      completion = &c;
      return queue(c) == nullptr ? -1 : 0;
    }));
    if (completion->task == nullptr) return Failed(step);
    return std::move(completion->task);
  }

  // Send, and a completion status other than GOOD is a failure too.
  template <typename Start>
  Status Call(std::string_view step, Start start) {
    Completion* completion = nullptr;
    SNAPSET_RETURN_IF_ERROR(Send(step, [&](Completion& c) {
      completion = &c;
      return start(c);
    }));
    return completion->status == SCSI_STATUS_GOOD ? Status::Ok() : Failed(step);
  }

  // Starts one asynchronous call (`start` returns libiscsi's 0 or -1) and
  // services the context until it completes or the deadline passes.
  template <typename Start>
  Status Send(std::string_view step, Start start) {
    Completion& completion = completions_.emplace_back();
    if (start(completion) != 0) return Failed(step);
    return Wait(completion, step);
  }

  Status Wait(const Completion& completion, std::string_view step) {
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
          return Status::Unavailable(target_.url + ": poll failed while " + std::string(step) +
                                     ": " + std::strerror(errno));
        }
      }
      const int revents = ready > 0 ? pfd.revents : 0;
      NoteSocketError(pfd.fd, revents);
      if (iscsi_service(ctx, revents) < 0) return Failed(step);
    }
    return Status::Ok();
  }

  // Keeps the error of a failing socket before iscsi_service() closes it:
  // libiscsi reports a refused or reset connection only vaguely.
  void NoteSocketError(int fd, int revents) {
    if ((revents & (POLLERR | POLLHUP)) == 0) return;
    int error = 0;
    socklen_t length = sizeof(error);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0 && error != 0) {
      socket_error_ = error;
    }
  }

  Status TimedOut(std::string_view step) const {
    return Status::Unavailable(target_.url + ": deadline of " + std::to_string(budget_.count()) +
                               " ms passed while " + std::string(step));
  }

  Status Failed(std::string_view step) const {
    std::string why =
        socket_error_ != 0 ? std::strerror(socket_error_) : iscsi_get_error(ctx_.get());
    while (!why.empty() && std::isspace(static_cast<unsigned char>(why.back()))) why.pop_back();
    return Status::Unavailable(target_.url + ": failed " + std::string(step) + ": " +
                               Redacted(std::move(why)));
  }

  // libiscsi's error texts are not known to quote the CHAP secret; this
  // makes sure they never do.
  std::string Redacted(std::string text) const {
    if (secret_.empty()) return text;
    for (size_t at = text.find(secret_); at != std::string::npos; at = text.find(secret_, at)) {
      text.replace(at, secret_.size(), "***");
    }
    return text;
  }

  Status CheckTask(const scsi_task& task, std::string_view step) const {
    if (task.status == SCSI_STATUS_GOOD) return Status::Ok();
    if (LunNotSupported(task)) return Status::NotFound(target_.url + ": no such LUN at the target");
    if (task.status == SCSI_STATUS_CHECK_CONDITION) {
      return Status::Unavailable(target_.url + ": " + std::string(step) +
                                 " failed: " + scsi_sense_key_str(task.sense.key) + ", " +
                                 scsi_sense_ascq_str(task.sense.ascq));
    }
    return Status::Unavailable(target_.url + ": " + std::string(step) +
                               " failed with SCSI status " + std::to_string(task.status));
  }

  // Completions must outlive the context: destroying it calls back, with
  // SCSI_STATUS_CANCELLED, whatever is still pending. Members are destroyed
  // in reverse order, and a deque never moves its elements.
  std::deque<Completion> completions_;
  ContextPtr ctx_;
  Target target_;
  Clock::time_point deadline_;
  milliseconds budget_;
  std::string secret_;
  int socket_error_ = 0;
};

std::string Describe(const std::string& naa, uint64_t capacity_bytes) {
  return "NAA " + (naa.empty() ? std::string("(none)") : naa) + " and " +
         std::to_string(capacity_bytes) + " bytes";
}

}  // namespace

Result<LunIdentity> ProbeLun(const std::string& url, const LunLogin& login,
                             Clock::time_point deadline) {
  const milliseconds budget = std::chrono::ceil<milliseconds>(deadline - Clock::now());
  if (login.initiator_iqn.empty()) {
    return Status::InvalidArgument("iSCSI initiator name is empty");
  }
  ContextPtr ctx(iscsi_create_context(login.initiator_iqn.c_str()));
  if (!ctx) return Status::Internal("cannot create a libiscsi context");
  Result<Target> target = ParseUrl(ctx.get(), url);
  if (!target.ok()) return target.status();
  Result<std::string> portal = ResolvePortal(*target, deadline);
  if (!portal.ok()) return portal.status();

  Session session(std::move(ctx), *target, deadline, std::max(budget, milliseconds::zero()),
                  login.chap_password);
  SNAPSET_RETURN_IF_ERROR(session.Login(login, *portal));
  LunIdentity identity;
  SNAPSET_RETURN_IF_ERROR(session.ReadNaa(identity));
  SNAPSET_RETURN_IF_ERROR(session.ReadSerial(identity));
  SNAPSET_RETURN_IF_ERROR(session.ReadCapacity(identity));
  session.Logout();
  return identity;
}

Status VerifyLun(const std::string& url, const LunLogin& login, const std::string& expected_naa,
                 uint64_t expected_capacity_bytes, Clock::time_point deadline) {
  const std::string want = NormalizeNaa(expected_naa);
  if (want.empty()) {
    return Status::InvalidArgument("expected NAA '" + expected_naa +
                                   "' is not 16 or 32 hex digits");
  }
  Result<LunIdentity> got = ProbeLun(url, login, deadline);
  if (!got.ok()) return got.status();
  if (got->naa == want && got->capacity_bytes == expected_capacity_bytes) return Status::Ok();
  // ProbeLun refused any URL with credentials, so `url` is safe to quote.
  return Status::BadState(url + " is not the expected LUN: expected " +
                          Describe(want, expected_capacity_bytes) + ", the LUN answered " +
                          Describe(got->naa, got->capacity_bytes));
}

}  // namespace snapset::iscsi
