#include "core/iscsi_identity.hpp"

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
#include <cstdlib>
#include <fstream>
#include <deque>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace snapset {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr std::string_view kUrlForm =
    "iscsi://host[:port]/target-iqn/lun (credentials as user%password@host)";
constexpr std::string_view kDefaultPort = "3260";
// libiscsi encodes LUNs with the flat space addressing method: 14 bits.
constexpr int kMaxLun = 16383;
// Largest allocation length of INQUIRY (its field has 16 bits).
constexpr int kMaxInquiryLength = 65535;
// Login redirections followed, and unit attentions absorbed, before giving up.
constexpr int kMaxRedirects = 4;
constexpr int kMaxUnitAttentions = 8;
// libiscsi asks for this pause when it has nothing to poll for.
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

// Drops a "user%password@" part so that no message ever carries credentials.
std::string WithoutCredentials(std::string_view url) {
  const size_t authority = url.find("://");
  if (authority == std::string_view::npos) return std::string(url);
  const size_t start = authority + 3;
  const size_t end = std::min(url.find('/', start), url.size());
  const size_t at = url.substr(0, end).rfind('@');
  if (at == std::string_view::npos || at < start) return std::string(url);
  return std::string(url.substr(0, start)) + std::string(url.substr(at + 1));
}

Status BadUrl(std::string_view url, std::string_view why) {
  return Status::InvalidArgument("invalid iSCSI URL '" +
                                 WithoutCredentials(url) + "': " +
                                 std::string(why) + "; expected " +
                                 std::string(kUrlForm));
}

// libiscsi's parse error is three lines: "Invalid URL <url>" (which would
// leak credentials), the reason, and the expected form. Keeps the reason.
std::string ParseFailureReason(iscsi_context* ctx) {
  std::string_view error = iscsi_get_error(ctx);
  const size_t first = error.find('\n');
  if (first == std::string_view::npos) return "cannot parse it";
  error.remove_prefix(first + 1);
  const std::string_view reason = error.substr(0, error.find('\n'));
  if (reason.empty() || reason.starts_with("iSCSI URL must be")) {
    return "cannot parse it";
  }
  return std::string(reason);
}

struct Portal {
  std::string host;  // lower case; an IPv6 literal keeps its brackets
  std::string port;
};

// Splits libiscsi's "host[:port]", lower-casing the host and making the
// default port explicit, so that equal portals compare equal.
Result<Portal> NormalizePortal(std::string_view url, std::string_view portal) {
  const size_t bracket = portal.rfind(']');
  const size_t colon = portal.rfind(':');
  const bool has_port = colon != std::string_view::npos &&
                        (bracket == std::string_view::npos || colon > bracket);
  const std::string_view host = has_port ? portal.substr(0, colon) : portal;
  const std::string_view port =
      has_port ? portal.substr(colon + 1) : kDefaultPort;
  if (host.empty() || host == "[]") return BadUrl(url, "no host");
  int number = 0;
  const auto [end, ec] =
      std::from_chars(port.data(), port.data() + port.size(), number);
  if (ec != std::errc() || end != port.data() + port.size() || number < 1 ||
      number > 65535) {
    return BadUrl(url, "port must be a number from 1 to 65535");
  }
  std::string normal(host);
  std::transform(normal.begin(), normal.end(), normal.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return Portal{std::move(normal), std::to_string(number)};
}

struct ParsedUrl {
  Portal portal;
  std::string target;
  int lun = 0;
  std::string user, password;                // CHAP, may be empty
  std::string target_user, target_password;  // mutual CHAP, may be empty
  std::string canonical;  // iscsi://host:port/target/lun, no credentials
};

// The fields are copied out because libiscsi frees an iscsi_url through the
// context that parsed it, so it must not outlive that context.
Result<ParsedUrl> ParseUrl(iscsi_context* ctx, std::string_view url) {
  const std::string text(url);
  const UrlPtr parsed(iscsi_parse_full_url(ctx, text.c_str()));
  if (!parsed) return BadUrl(url, ParseFailureReason(ctx));
  if (parsed->target[0] == '\0') return BadUrl(url, "no target IQN");
  if (parsed->lun < 0 || parsed->lun > kMaxLun) {
    return BadUrl(url, "LUN must be from 0 to " + std::to_string(kMaxLun));
  }
  Result<Portal> portal = NormalizePortal(url, parsed->portal);
  if (!portal.ok()) return portal.status();
  ParsedUrl result;
  result.portal = std::move(*portal);
  result.target = parsed->target;
  result.lun = parsed->lun;
  result.user = parsed->user;
  result.password = parsed->passwd;
  result.target_user = parsed->target_user;
  result.target_password = parsed->target_passwd;
  result.canonical = "iscsi://" + result.portal.host + ":" +
                     result.portal.port + "/" + result.target + "/" +
                     std::to_string(result.lun);
  return result;
}

bool IsNumericHost(const std::string& host) {
  unsigned char address[sizeof(in6_addr)];
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    const std::string inner = host.substr(1, host.size() - 2);
    return inet_pton(AF_INET6, inner.c_str(), address) == 1;
  }
  return inet_pton(AF_INET, host.c_str(), address) == 1;
}

// The numeric portal libiscsi should connect to. libiscsi would resolve a
// host name itself with getaddrinfo(), which has no timeout of its own (the
// resolver's, often seconds per server and try, applies), so a name is
// resolved here on a helper thread, taking the first address as libiscsi
// would. If the deadline passes first the thread is left to finish alone; it
// owns what it touches.
Result<std::string> ResolvePortal(const Portal& portal,
                                  const std::string& url,
                                  Clock::time_point deadline) {
  if (IsNumericHost(portal.host)) return portal.host + ":" + portal.port;
  struct Lookup {
    std::mutex mutex;
    std::condition_variable done_cv;
    bool done = false;
    int error = 0;
    std::string address;
  };
  auto lookup = std::make_shared<Lookup>();
  std::thread([lookup, host = portal.host] {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    const int error = getaddrinfo(host.c_str(), nullptr, &hints, &found);
    char text[INET6_ADDRSTRLEN] = "";
    std::string address;
    if (error == 0) {
      getnameinfo(found->ai_addr, found->ai_addrlen, text, sizeof(text),
                  nullptr, 0, NI_NUMERICHOST);
      freeaddrinfo(found);
      const bool ipv6 = std::strchr(text, ':') != nullptr;
      address = ipv6 ? "[" + std::string(text) + "]" : std::string(text);
    }
    std::lock_guard lock(lookup->mutex);
    lookup->error = error;
    lookup->address = std::move(address);
    lookup->done = true;
    lookup->done_cv.notify_all();
  }).detach();
  std::unique_lock lock(lookup->mutex);
  if (!lookup->done_cv.wait_until(lock, deadline,
                                  [&] { return lookup->done; })) {
    return Status::Unavailable(url + ": timed out resolving " + portal.host);
  }
  if (lookup->error != 0) {
    return Status::Unavailable(url + ": cannot resolve " + portal.host +
                               ": " + gai_strerror(lookup->error));
  }
  return lookup->address + ":" + portal.port;
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
  // The callback owns a SCSI task, including one cancelled when the context
  // is destroyed; libiscsi leaves its status unset, as its sync calls show.
  if (command_data != nullptr && completion->task == nullptr) {
    completion->task.reset(static_cast<scsi_task*>(command_data));
    completion->task->status = status;
  }
}

std::string SenseText(const scsi_task& task) {
  return std::string(scsi_sense_key_str(task.sense.key)) + ", " +
         scsi_sense_ascq_str(task.sense.ascq);
}

bool LunNotSupported(const scsi_task& task) {
  return task.status == SCSI_STATUS_CHECK_CONDITION &&
         task.sense.key == SCSI_SENSE_ILLEGAL_REQUEST &&
         task.sense.ascq == SCSI_SENSE_ASCQ_LOGICAL_UNIT_NOT_SUPPORTED;
}

// One login session, driven by its own poll loop so that every step, the
// TCP connect included, ends by the caller's deadline. libiscsi's *_sync
// calls give no such bound: iscsi_set_timeout() limits each PDU, not the
// whole resolution, counts whole seconds on a clock that ticks in seconds
// (a 1 s timeout fires after 0 to 1 s), and a dropped session makes
// libiscsi reconnect in a loop that sleeps. So iscsi_set_timeout() is not
// used: the deadline here is the only timer, and reconnection is off.
class Session {
 public:
  Session(ContextPtr ctx, std::string url, std::string initiator, Clock::time_point deadline,
          milliseconds budget)
      : ctx_(std::move(ctx)),
        url_(std::move(url)),
        initiator_(std::move(initiator)),
        deadline_(deadline),
        budget_(budget) {}

  Status Login(const ParsedUrl& url, const std::string& portal) {
    iscsi_context* ctx = ctx_.get();
    iscsi_set_targetname(ctx, url.target.c_str());
    iscsi_set_session_type(ctx, ISCSI_SESSION_NORMAL);
    iscsi_set_header_digest(ctx, ISCSI_HEADER_DIGEST_NONE_CRC32C);
    iscsi_set_noautoreconnect(ctx, 1);
    if (!url.user.empty()) {
      iscsi_set_initiator_username_pwd(ctx, url.user.c_str(),
                                       url.password.c_str());
    }
    if (!url.target_user.empty()) {
      iscsi_set_target_username_pwd(ctx, url.target_user.c_str(),
                                    url.target_password.c_str());
    }
    // What iscsi_full_connect_async() does, but without its helper record,
    // which libiscsi leaks when the context is destroyed before the login
    // completes, as it is here on a timeout.
    std::string address = portal;
    for (int redirects = 0;; ++redirects) {
      Completion& connected = NewCompletion();
      if (iscsi_connect_async(ctx, address.c_str(), OnDone, &connected) != 0) {
        return Failed("connecting");
      }
      SNAPSET_RETURN_IF_ERROR(Wait(connected, "connecting"));
      if (connected.status != SCSI_STATUS_GOOD) return Failed("connecting");
      Completion& login = NewCompletion();
      if (iscsi_login_async(ctx, OnDone, &login) != 0) {
        return Failed("logging in");
      }
      SNAPSET_RETURN_IF_ERROR(Wait(login, "logging in"));
      if (login.status == SCSI_STATUS_GOOD) break;
      // A target may send the initiator to another portal.
      const char* target_address = iscsi_get_target_address(ctx);
      if (login.status != SCSI_STATUS_REDIRECT || redirects == kMaxRedirects ||
          target_address == nullptr || target_address[0] == '\0') {
        // A target answers "not found" to an initiator it does not map the
        // LUN to: say which name was used and how to change it.
        Status failed = Failed("logging in");
        return Status(failed.code(),
                      failed.message() + " (as initiator " + initiator_ +
                          "; an array that does not map the LUN to that name refuses the "
                          "log-in: map it, or give snapset another name with --initiator-iqn "
                          "or SNAPSET_INITIATOR_IQN)");
      }
      address = target_address;
      iscsi_disconnect(ctx);
    }
    return TestUnitReady(url.lun);
  }

  // Absorbs the unit attentions a fresh session brings (tgt reports a
  // power-on reset first) and tells a missing LUN from other trouble.
  Status TestUnitReady(int lun) {
    constexpr std::string_view kStep = "testing the LUN";
    for (int attention = 0;; ++attention) {
      Result<TaskPtr> task = Run(kStep, [&](Completion& c) {
        return iscsi_testunitready_task(ctx_.get(), lun, OnDone, &c);
      });
      if (!task.ok()) return task.status();
      const scsi_task& result = **task;
      const bool unit_attention =
          result.status == SCSI_STATUS_CHECK_CONDITION &&
          result.sense.key == SCSI_SENSE_UNIT_ATTENTION;
      if (!unit_attention || attention == kMaxUnitAttentions) {
        return CheckTask(result, kStep);
      }
    }
  }

  Result<ScsiIdentity> ReadIdentity(int lun) {
    ScsiIdentity identity;
    SNAPSET_RETURN_IF_ERROR(ReadDesignators(lun, identity));
    SNAPSET_RETURN_IF_ERROR(ReadSerial(lun, identity));
    return identity;
  }

  Status ReadCapacity(int lun, Volume& volume) {
    Result<TaskPtr> task = Run("reading the capacity", [&](Completion& c) {
      return iscsi_readcapacity16_task(ctx_.get(), lun, OnDone, &c);
    });
    if (!task.ok()) return task.status();
    SNAPSET_RETURN_IF_ERROR(CheckTask(**task, "reading the capacity"));
    auto* rc16 =
        static_cast<scsi_readcapacity16*>(scsi_datain_unmarshall(task->get()));
    if (rc16 == nullptr || rc16->block_length == 0) {
      return Status::Unavailable(url_ + ": malformed READ CAPACITY(16) data");
    }
    uint64_t size = 0;
    if (rc16->returned_lba == UINT64_MAX ||
        __builtin_mul_overflow(rc16->returned_lba + 1, rc16->block_length,
                               &size)) {
      return Status::Unavailable(url_ + ": capacity does not fit 64 bits");
    }
    volume.size_bytes = size;
    volume.block_size = rc16->block_length;
    return Status::Ok();
  }

  // Ends the session politely. Best effort: the context is torn down
  // either way, and the target loses nothing if the logout goes unanswered.
  void Logout() {
    Completion& logout = NewCompletion();
    if (iscsi_logout_async(ctx_.get(), OnDone, &logout) == 0) {
      static_cast<void>(Wait(logout, "logging out"));
    }
  }

 private:
  Completion& NewCompletion() { return completions_.emplace_back(); }

  Status TimedOut(std::string_view step) const {
    return Status::Unavailable(url_ + ": timed out after " +
                               std::to_string(budget_.count()) + " ms " +
                               std::string(step));
  }

  Status Failed(std::string_view step) const {
    // libiscsi reports a refused or reset connection only as a failed
    // reconnect; the socket error says what happened.
    std::string why = socket_error_ != 0 ? std::strerror(socket_error_)
                                         : iscsi_get_error(ctx_.get());
    while (!why.empty() && std::isspace(static_cast<unsigned char>(why.back()))) {
      why.pop_back();
    }
    return Status::Unavailable(url_ + ": failed " + std::string(step) + ": " +
                               why);
  }

  // Keeps the error of a failing socket before iscsi_service() closes it.
  void NoteSocketError(int fd, int revents) {
    if ((revents & (POLLERR | POLLHUP)) == 0) return;
    int error = 0;
    socklen_t length = sizeof(error);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0 &&
        error != 0) {
      socket_error_ = error;
    }
  }

  // Services the context until `completion` is done or the deadline passes.
  Status Wait(const Completion& completion, std::string_view step) {
    iscsi_context* ctx = ctx_.get();
    while (!completion.done) {
      const auto now = Clock::now();
      if (now >= deadline_) return TimedOut(step);
      const auto left = std::chrono::ceil<milliseconds>(deadline_ - now);
      pollfd pfd{iscsi_get_fd(ctx),
                 static_cast<short>(iscsi_which_events(ctx)), 0};
      int ready = 0;
      if (pfd.events == 0) {
        std::this_thread::sleep_for(std::min(left, kIdlePause));
      } else {
        ready = poll(&pfd, 1, static_cast<int>(std::min<int64_t>(
                                  left.count(), std::numeric_limits<int>::max())));
        if (ready < 0 && errno != EINTR) {
          return Status::Unavailable(url_ + ": poll failed " +
                                     std::string(step) + ": " +
                                     std::strerror(errno));
        }
      }
      const int revents = ready > 0 ? pfd.revents : 0;
      NoteSocketError(pfd.fd, revents);
      if (iscsi_service(ctx, revents) < 0) return Failed(step);
    }
    return Status::Ok();
  }

  // Queues one SCSI command with `send` and waits for its task. A task comes
  // back whatever its SCSI status; only a transport failure is an error.
  template <typename Send>
  Result<TaskPtr> Run(std::string_view step, Send send) {
    Completion& completion = NewCompletion();
    if (send(completion) == nullptr) return Failed(step);
    SNAPSET_RETURN_IF_ERROR(Wait(completion, step));
    if (completion.task == nullptr) return Failed(step);
    return std::move(completion.task);
  }

  Status CheckTask(const scsi_task& task, std::string_view step) const {
    if (task.status == SCSI_STATUS_GOOD) return Status::Ok();
    if (LunNotSupported(task)) {
      return Status::NotFound(url_ + ": no such LUN at the target");
    }
    if (task.status == SCSI_STATUS_CHECK_CONDITION) {
      return Status::Unavailable(url_ + ": " + std::string(step) +
                                 " failed: " + SenseText(task));
    }
    return Status::Unavailable(url_ + ": " + std::string(step) +
                               " failed with SCSI status " +
                               std::to_string(task.status));
  }

  // INQUIRY of one VPD page, asked again with the page's full length when
  // the first answer was cut short.
  Result<TaskPtr> InquiryVpd(int lun, int page, std::string_view step) {
    int length = 255;
    for (;;) {
      Result<TaskPtr> task = Run(step, [&](Completion& c) {
        return iscsi_inquiry_task(ctx_.get(), lun, 1, page, length, OnDone,
                                  &c);
      });
      if (!task.ok() || (*task)->status != SCSI_STATUS_GOOD) return task;
      const int full = scsi_datain_getfullsize(task->get());
      if (full <= length || length == kMaxInquiryLength) return task;
      length = std::min(full, kMaxInquiryLength);
    }
  }

  // A target without the page (ILLEGAL REQUEST, other than for the LUN)
  // just has no such identity; any other failure is an error.
  static bool PageMissing(const scsi_task& task) {
    return task.status == SCSI_STATUS_CHECK_CONDITION &&
           task.sense.key == SCSI_SENSE_ILLEGAL_REQUEST &&
           !LunNotSupported(task);
  }

  Status CheckPeripheral(scsi_inquiry_peripheral_qualifier qualifier) const {
    if (qualifier == SCSI_INQUIRY_PERIPHERAL_QUALIFIER_NOT_SUPPORTED) {
      return Status::NotFound(url_ + ": no such LUN at the target");
    }
    return Status::Ok();
  }

  Status ReadDesignators(int lun, ScsiIdentity& identity) {
    constexpr std::string_view kStep = "reading VPD page 0x83";
    Result<TaskPtr> task =
        InquiryVpd(lun, SCSI_INQUIRY_PAGECODE_DEVICE_IDENTIFICATION, kStep);
    if (!task.ok()) return task.status();
    if (PageMissing(**task)) return Status::Ok();
    SNAPSET_RETURN_IF_ERROR(CheckTask(**task, kStep));
    auto* page = static_cast<scsi_inquiry_device_identification*>(
        scsi_datain_unmarshall(task->get()));
    if (page == nullptr) {
      return Status::Unavailable(url_ + ": malformed VPD page 0x83");
    }
    SNAPSET_RETURN_IF_ERROR(CheckPeripheral(page->qualifier));
    for (auto* d = page->designators; d != nullptr; d = d->next) {
      if (d->association != SCSI_ASSOCIATION_LOGICAL_UNIT) continue;
      const auto* bytes = reinterpret_cast<const uint8_t*>(d->designator);
      identity.designators.push_back(Designator{
          static_cast<uint8_t>(d->designator_type),
          static_cast<uint8_t>(d->code_set),
          static_cast<uint8_t>(d->association),
          std::vector<uint8_t>(bytes, bytes + d->designator_length)});
    }
    // libiscsi prepends each designator it parses, so its list is in reverse
    // wire order.
    std::reverse(identity.designators.begin(), identity.designators.end());
    return Status::Ok();
  }

  Status ReadSerial(int lun, ScsiIdentity& identity) {
    constexpr std::string_view kStep = "reading VPD page 0x80";
    Result<TaskPtr> task =
        InquiryVpd(lun, SCSI_INQUIRY_PAGECODE_UNIT_SERIAL_NUMBER, kStep);
    if (!task.ok()) return task.status();
    if (PageMissing(**task)) return Status::Ok();
    SNAPSET_RETURN_IF_ERROR(CheckTask(**task, kStep));
    auto* page = static_cast<scsi_inquiry_unit_serial_number*>(
        scsi_datain_unmarshall(task->get()));
    if (page == nullptr || page->usn == nullptr) {
      return Status::Unavailable(url_ + ": malformed VPD page 0x80");
    }
    SNAPSET_RETURN_IF_ERROR(CheckPeripheral(page->qualifier));
    // Targets pad the serial with spaces (tgt right-aligns it in 36 bytes).
    std::string_view serial = page->usn;
    const size_t first = serial.find_first_not_of(' ');
    if (first == std::string_view::npos) return Status::Ok();
    serial = serial.substr(first, serial.find_last_not_of(' ') - first + 1);
    identity.serial = std::string(serial);
    return Status::Ok();
  }

  // Completions must outlive the context: destroying it calls back with
  // SCSI_STATUS_CANCELLED into whatever is still pending. Members are
  // destroyed in reverse order, and a deque never moves its elements.
  std::deque<Completion> completions_;
  ContextPtr ctx_;
  std::string url_;
  std::string initiator_;  // the name it logs in with, for messages
  Clock::time_point deadline_;
  milliseconds budget_;
  int socket_error_ = 0;
};

}  // namespace

std::string HostInitiatorIqn() {
  if (const char* env = std::getenv("SNAPSET_INITIATOR_IQN"); env && env[0] != '\0') return env;
  std::ifstream in("/etc/iscsi/initiatorname.iscsi");
  std::string line;
  while (std::getline(in, line)) {
    constexpr std::string_view kKey = "InitiatorName=";
    if (line.rfind(kKey, 0) != 0) continue;
    std::string name = line.substr(kKey.size());
    while (!name.empty() && std::isspace(static_cast<unsigned char>(name.back()))) name.pop_back();
    if (!name.empty()) return name;
  }
  return kDefaultInitiatorIqn;
}

Result<Volume> ResolveIscsiVolume(std::string_view url,
                                  const IscsiOptions& options) {
  const Clock::time_point deadline = Clock::now() + options.timeout;
  if (options.timeout <= milliseconds::zero()) {
    return Status::InvalidArgument("iSCSI timeout must be positive");
  }
  if (options.initiator_iqn.empty()) {
    return Status::InvalidArgument("iSCSI initiator name is empty");
  }
  ContextPtr ctx(iscsi_create_context(options.initiator_iqn.c_str()));
  if (!ctx) return Status::Internal("cannot create a libiscsi context");
  Result<ParsedUrl> parsed = ParseUrl(ctx.get(), url);
  if (!parsed.ok()) return parsed.status();

  Result<std::string> portal =
      ResolvePortal(parsed->portal, parsed->canonical, deadline);
  if (!portal.ok()) return portal.status();

  Session session(std::move(ctx), parsed->canonical, options.initiator_iqn, deadline,
                  options.timeout);
  const int lun = parsed->lun;
  SNAPSET_RETURN_IF_ERROR(session.Login(*parsed, *portal));
  Volume volume;
  volume.kind = VolumeKind::kIscsi;
  volume.name = parsed->canonical;
  volume.device_path = parsed->canonical;
  Result<ScsiIdentity> identity = session.ReadIdentity(lun);
  if (!identity.ok()) return identity.status();
  volume.identity = std::move(*identity);
  SNAPSET_RETURN_IF_ERROR(session.ReadCapacity(lun, volume));
  session.Logout();
  return volume;
}

}  // namespace snapset
