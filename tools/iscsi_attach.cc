#include "tools/iscsi_attach.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <rapidjson/document.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "core/run_command.hpp"
#include "core/volume_resolver.hpp"

namespace snapset::cli {

namespace {

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

constexpr uint32_t kMaxLun = 16383;      // SAM flat space addressing, as core's resolver
constexpr size_t kMaxIscsiName = 223;    // RFC 3720 3.2.6.1
constexpr int kIscsiErrSessExists = 15;  // iscsiadm(8) exit codes
constexpr int kIscsiErrNoObjsFound = 21;
constexpr int kIscsiErrLoginAuthFailed = 24;
constexpr const char* kUrlForm = "iscsi://host[:port]/target-iqn/lun";

Status BadUrl(std::string_view shown_url, std::string_view why) {
  return Status::InvalidArgument("iSCSI URL '" + std::string(shown_url) + "' is malformed: " +
                                 std::string(why) + "; the form is " + kUrlForm);
}

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return char(std::tolower(c)); });
  return out;
}

// RFC 3720 names after stringprep: lower-case letters, digits, '.', '-', ':'.
// Anything else (a '/', a space) could not be a target name and would make a
// wrong by-path name, so it is refused here rather than by iscsiadm later.
bool ValidIscsiName(std::string_view name) {
  if (name.size() < 5 || name.size() > kMaxIscsiName) return false;
  if (name.rfind("iqn.", 0) != 0 && name.rfind("eui.", 0) != 0 && name.rfind("naa.", 0) != 0)
    return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == ':';
  });
}

std::string Replace(std::string text, const std::string& secret, const char* with) {
  if (secret.empty()) return text;
  for (size_t at = text.find(secret); at != std::string::npos;
       at = text.find(secret, at + std::strlen(with)))
    text.replace(at, secret.size(), with);
  return text;
}

// A command line as shown in a message, with `secret` (a CHAP password) as ***.
std::string Shown(const std::vector<std::string>& argv, const std::string& secret) {
  std::string s;
  for (const auto& a : argv) s += (s.empty() ? "" : " ") + (a == secret ? "***" : a);
  return s;
}

std::string Trimmed(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  return s;
}

// Runs argv with whatever is left until `deadline`.
CommandResult RunBefore(const std::vector<std::string>& argv, Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  if (left.count() <= 0) {
    CommandResult r;
    r.timed_out = true;
    r.output = argv[0] + " was not started: the time for the whole operation ran out";
    return r;
  }
  return RunCommand(argv, left);
}

Status Failed(std::string_view what, const std::vector<std::string>& argv, const CommandResult& r,
              const std::string& secret) {
  std::string how = r.timed_out       ? "timed out"
                    : r.exit_code < 0 ? "could not run"
                                      : "exited with status " + std::to_string(r.exit_code);
  std::string out = Trimmed(Replace(r.output, secret, "***"));
  return Status::Unavailable(std::string(what) + ": `" + Shown(argv, secret) + "` " + how +
                             (out.empty() ? "" : ": " + out));
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

// A block device that `path` (a udev link) names, and the NAA the kernel read
// from it ("" until the SCSI layer has it, or when the LUN has none).
struct Disk {
  bool present = false;
  dev_t rdev = 0;
  std::string naa;
};

Disk DiskAt(const std::string& path, const OpenIscsiHost& host) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0 || !S_ISBLK(st.st_mode)) return {};
  Volume v;
  (void)ReadBlockDevice(host.sysfs_root, st.st_rdev, &v);  // no identity yet: naa ""
  return {true, st.st_rdev, v.identity.Naa()};
}

// std::filesystem::equivalent cannot tell: it refuses two device files
// ("Operation not supported"), so two links to one disk would look different.
bool SameDisk(const std::string& path, dev_t rdev) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISBLK(st.st_mode) && st.st_rdev == rdev;
}

// by-path names and iscsiadm's session list carry the portal's address, not
// a host name, so a name in the URL is resolved once, here.
Result<std::string> NumericHost(const std::string& host) {
  if (host.front() == '[') return host;
  in_addr v4;
  if (::inet_pton(AF_INET, host.c_str(), &v4) == 1) return host;
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &found); rc != 0)
    return Status::Unavailable("cannot resolve iSCSI portal host " + host + ": " +
                               ::gai_strerror(rc));
  char text[INET6_ADDRSTRLEN] = "";
  const addrinfo& a = *found;
  if (a.ai_family == AF_INET6)
    ::inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(a.ai_addr)->sin6_addr, text,
                sizeof text);
  else
    ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(a.ai_addr)->sin_addr, text, sizeof text);
  const bool v6 = a.ai_family == AF_INET6;
  ::freeaddrinfo(found);
  return v6 ? "[" + std::string(text) + "]" : std::string(text);
}

std::vector<std::string> NodeArgs(const OpenIscsiHost& host, const IscsiUrl& u) {
  return {host.iscsiadm, "-m", "node", "-T", u.iqn, "-p", u.Portal()};
}

std::vector<std::string> With(std::vector<std::string> argv,
                              std::initializer_list<std::string> more) {
  argv.insert(argv.end(), more);
  return argv;
}

std::string ByPath(const IscsiUrl& u, const OpenIscsiHost& host) {
  return host.by_path_dir + "/ip-" + u.Portal() + "-iscsi-" + u.iqn + "-lun-" +
         std::to_string(u.lun);
}

// True when `iscsiadm -m session` lists a session to u's target.
Result<bool> HasSession(const OpenIscsiHost& host, const IscsiUrl& u, Clock::time_point deadline) {
  const std::vector<std::string> argv = {host.iscsiadm, "-m", "session"};
  CommandResult r = RunBefore(argv, deadline);
  if (r.exit_code == kIscsiErrNoObjsFound) return false;  // "No active sessions."
  if (r.exit_code != 0) return Failed("listing iSCSI sessions", argv, r, "");
  // Lines look like "tcp: [3] 10.0.0.5:3260,1 iqn.2026-11.io.example:snap-1 (non-flash)".
  std::istringstream lines(r.output);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream words(line);
    std::string transport, sid, portal, iqn;
    if (!(words >> transport >> sid >> portal >> iqn)) continue;
    if (Lower(iqn) == u.iqn && portal.substr(0, portal.rfind(',')) == u.Portal()) return true;
  }
  return false;
}

// by-path names of LUNs of u's target other than u.lun (partitions excluded).
std::vector<std::string> OtherLunsAttached(const OpenIscsiHost& host, const IscsiUrl& u) {
  std::vector<std::string> others;
  const std::string prefix = "ip-" + u.Portal() + "-iscsi-" + u.iqn + "-lun-";
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(host.by_path_dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    const std::string lun = name.substr(prefix.size());
    if (lun.find('-') != std::string::npos || lun == std::to_string(u.lun)) continue;
    others.push_back(name);
  }
  return others;
}

// Logs out of u's target and forgets its node record (which may hold a CHAP
// password). Missing sessions and records are not errors.
Status LogoutAndForget(const OpenIscsiHost& host, const IscsiUrl& u, Clock::time_point deadline) {
  const auto logout = With(NodeArgs(host, u), {"--logout"});
  CommandResult r = RunBefore(logout, deadline);
  if (r.exit_code != 0 && r.exit_code != kIscsiErrNoObjsFound)
    return Failed("logging out of " + u.iqn, logout, r, "");
  const auto forget = With(NodeArgs(host, u), {"-o", "delete"});
  r = RunBefore(forget, deadline);
  if (r.exit_code != 0 && r.exit_code != kIscsiErrNoObjsFound)
    return Failed("deleting the node record of " + u.iqn, forget, r, "");
  return Status::Ok();
}

}  // namespace

std::string IscsiUrl::Portal() const { return host + ":" + std::to_string(port); }

bool IsIscsiUrl(std::string_view s) { return s.rfind("iscsi://", 0) == 0; }

Result<IscsiUrl> ParseIscsiUrl(std::string_view url) {
  if (!IsIscsiUrl(url)) return BadUrl(url, "it does not start with iscsi://");
  std::string_view rest = url.substr(8);
  const size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  if (const size_t at = authority.rfind('@'); at != std::string_view::npos) {
    // Shown without what precedes '@': that is a user and password.
    const std::string shown = "iscsi://" + std::string(rest.substr(at + 1));
    return BadUrl(shown,
                  "it carries credentials (user%password@), which every process on this host "
                  "could read; put them in a --chap-file instead");
  }
  IscsiUrl u;
  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return BadUrl(url, "an IPv6 address lacks its ']'");
    u.host = Lower(authority.substr(0, close + 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty() && after.front() != ':')
      return BadUrl(url, "unexpected text after the IPv6 address");
    if (!after.empty()) port_text = after.substr(1);
    if (u.host == "[]") return BadUrl(url, "no host");
  } else {
    const size_t colon = authority.find(':');
    if (colon != std::string_view::npos && authority.find(':', colon + 1) != std::string_view::npos)
      return BadUrl(url, "an IPv6 address must be in brackets, [addr]:port");
    u.host = Lower(authority.substr(0, colon));
    if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
    if (u.host.empty()) return BadUrl(url, "no host");
  }
  if (authority.find(':') != std::string_view::npos && authority.back() == ':')
    return BadUrl(url, "port must be a number from 1 to 65535");
  if (!port_text.empty()) {
    unsigned port = 0;
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || end != port_text.data() + port_text.size() || port < 1 || port > 65535)
      return BadUrl(url, "port must be a number from 1 to 65535");
    u.port = uint16_t(port);
  }
  if (slash == std::string_view::npos) return BadUrl(url, "no target IQN");
  std::string_view path = rest.substr(slash + 1);
  const size_t lun_slash = path.rfind('/');
  if (lun_slash == std::string_view::npos) return BadUrl(url, "no LUN after the target IQN");
  u.iqn = Lower(path.substr(0, lun_slash));
  if (u.iqn.empty()) return BadUrl(url, "no target IQN");
  if (!ValidIscsiName(u.iqn))
    return BadUrl(url, "target '" + u.iqn +
                           "' is not an iSCSI name (iqn., eui. or naa., then letters, digits, "
                           "'.', '-', ':')");
  std::string_view lun_text = path.substr(lun_slash + 1);
  auto [end, ec] = std::from_chars(lun_text.data(), lun_text.data() + lun_text.size(), u.lun);
  if (lun_text.empty() || ec != std::errc() || end != lun_text.data() + lun_text.size() ||
      u.lun > kMaxLun)
    return BadUrl(url, "LUN must be a number from 0 to " + std::to_string(kMaxLun));
  return u;
}

Result<ChapCredentials> LoadChapFile(const std::string& path) {
  // O_NOFOLLOW and fstat on the open file: the checks apply to what is read.
  const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::NotFound("CHAP file " + path + " does not exist");
    return Status::InvalidArgument("cannot open CHAP file " + path + ": " + std::strerror(errno) +
                                   " (it must be a regular file, not a "
                                   "symbolic link)");
  }
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return Status::InvalidArgument("CHAP file " + path + " is not a regular file");
  }
  if (st.st_mode & (S_IRWXG | S_IRWXO)) {
    ::close(fd);
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", unsigned(st.st_mode & 07777));
    return Status::InvalidArgument("CHAP file " + path + " has mode " + mode +
                                   ": group or others may read or change the password in it; "
                                   "make it owner-only with `chmod 600 " +
                                   path + "`");
  }
  if (st.st_uid != ::geteuid() && st.st_uid != 0) {
    ::close(fd);
    return Status::InvalidArgument("CHAP file " + path + " belongs to user id " +
                                   std::to_string(st.st_uid) +
                                   ", not to you or root; its owner could change the password "
                                   "in it: `chown` it to yourself");
  }
  std::string text;
  char buf[4096];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0 && text.size() < 65536;)
    text.append(buf, size_t(n));
  ::close(fd);
  rapidjson::Document doc;
  doc.Parse(text.data(), text.size());
  auto field = [&](const char* name) -> const char* {
    if (doc.HasParseError() || !doc.IsObject()) return nullptr;
    auto it = doc.FindMember(name);
    if (it == doc.MemberEnd() || !it->value.IsString() || it->value.GetStringLength() == 0)
      return nullptr;
    return it->value.GetString();
  };
  const char* user = field("CHAPUsername");
  const char* password = field("CHAPPassword");
  if (!user || !password)
    return Status::InvalidArgument(
        "CHAP file " + path +
        " must be a JSON object with non-empty strings \"CHAPUsername\" and \"CHAPPassword\"");
  return ChapCredentials{user, password};
}

Status KernelIscsiAvailable(const OpenIscsiHost& host) {
  if (!Exists(host.module_dir)) {
    // modprobe fails quietly when the module does not exist for this kernel
    // or we may not load modules (a container); either way the check below
    // gives the answer.
    if (HaveProgram(host.modprobe))
      (void)RunCommand({host.modprobe, "-q", "iscsi_tcp"}, std::chrono::seconds(10));
    if (!Exists(host.module_dir))
      return Status::Unavailable(
          "this host's kernel has no iSCSI initiator (module iscsi_tcp is missing and "
          "`modprobe iscsi_tcp` did not load it), so Open-iSCSI cannot log in here");
  }
  if (!HaveProgram(host.iscsiadm))
    return Status::Unavailable("iscsiadm is not installed (" + host.iscsiadm +
                               " is not on PATH); install the open-iscsi package");
  return Status::Ok();
}

Result<std::string> AttachedDevicePath(std::string_view url, const OpenIscsiHost& host) {
  auto parsed = ParseIscsiUrl(url);
  if (!parsed.ok()) return parsed.status();
  auto numeric = NumericHost(parsed->host);
  if (!numeric.ok()) return numeric.status();
  parsed->host = *numeric;
  return ByPath(*parsed, host);
}

Result<std::string> AttachIscsi(std::string_view url, const std::optional<ChapCredentials>& chap,
                                std::string_view naa, std::chrono::milliseconds timeout,
                                const OpenIscsiHost& host) {
  const Clock::time_point deadline = Clock::now() + timeout;
  auto parsed = ParseIscsiUrl(url);
  if (!parsed.ok()) return parsed.status();
  if (Status s = KernelIscsiAvailable(host); !s.ok())
    return Status(s.code(),
                  s.message() + "; " + std::string(url) +
                      " stays readable from user space with libiscsi tools "
                      "(iscsi-inq, iscsi-readcapacity16, or any libiscsi program) or from "
                      "a host that has iscsi_tcp");
  auto numeric = NumericHost(parsed->host);
  if (!numeric.ok()) return numeric.status();
  IscsiUrl u = *parsed;
  u.host = *numeric;
  const std::string secret = chap ? chap->password : "";

  // Discovery creates the node record that login needs.
  const std::vector<std::string> discover = {host.iscsiadm, "-m", "discovery", "-t",
                                             "sendtargets", "-p", u.Portal()};
  CommandResult r = RunBefore(discover, deadline);
  if (r.exit_code != 0)
    return Failed("iSCSI discovery at " + u.Portal() + " failed", discover, r, "");
  bool offered = false;
  std::istringstream lines(r.output);
  for (std::string line; std::getline(lines, line);) {
    const size_t space = line.rfind(' ');
    if (space != std::string::npos && Lower(Trimmed(line.substr(space + 1))) == u.iqn)
      offered = true;
  }
  if (!offered)
    return Status::NotFound("the portal " + u.Portal() + " does not offer target " + u.iqn +
                            " (SendTargets discovery listed: " +
                            (Trimmed(r.output).empty() ? "nothing" : Trimmed(r.output)) + ")");

  // Authentication is set explicitly either way, so a record left by an
  // earlier attach with CHAP cannot change what this one does.
  std::vector<std::vector<std::string>> settings;
  auto set = [&](const char* name, const std::string& value) {
    settings.push_back(With(NodeArgs(host, u), {"-o", "update", "-n", name, "-v", value}));
  };
  set("node.session.auth.authmethod", chap ? "CHAP" : "None");
  if (chap) {
    set("node.session.auth.username", chap->username);
    set("node.session.auth.password", chap->password);
  }
  for (const auto& argv : settings) {
    r = RunBefore(argv, deadline);
    if (r.exit_code != 0) {
      Status failed = Failed("configuring the node record of " + u.iqn, argv, r, secret);
      (void)LogoutAndForget(host, u, Clock::now() + std::chrono::seconds(10));
      return failed;
    }
  }

  const auto login = With(NodeArgs(host, u), {"--login"});
  r = RunBefore(login, deadline);
  const bool had_session = r.exit_code == kIscsiErrSessExists;
  if (r.exit_code != 0 && !had_session) {
    Status failed =
        r.exit_code == kIscsiErrLoginAuthFailed
            ? Status::Unavailable("target " + u.iqn + " at " + u.Portal() + " refused " +
                                  (chap ? "the CHAP user " + chap->username + " and password"
                                        : std::string("a login without CHAP (give --chap-file)")))
            : Failed("logging in to " + u.iqn + " at " + u.Portal() + " failed", login, r, secret);
    // The record holds the password; nothing is attached, so nothing is lost.
    (void)LogoutAndForget(host, u, Clock::now() + std::chrono::seconds(10));
    return failed;
  }

  // udev names the LUN's disk by path some time after login returns, and by
  // identity (wwn-0x<NAA>) once it has read VPD page 0x83. Which LUN the disk
  // is comes from the kernel itself (sysfs), not from comparing the links.
  const std::string device = ByPath(u, host);
  const std::string want = Lower(std::string(naa));
  const std::string wwn = host.by_id_dir + "/wwn-0x" + want;
  std::string wrong;                        // why the disk that appeared is not the snapshot
  std::optional<Clock::time_point> proven;  // when the disk was shown to be the snapshot
  for (;;) {
    const Disk disk = DiskAt(device, host);
    if (disk.present && want.empty()) return device;
    if (disk.present && !disk.naa.empty() && disk.naa != want) {
      wrong = device + " is the LUN with NAA " + disk.naa + ", not the snapshot's NAA " + want +
              " (the LUN at this URL is not the snapshot)";
      break;
    }
    if (disk.present && disk.naa == want) {
      if (SameDisk(wwn, disk.rdev)) return wwn;
      if (!proven) proven = Clock::now();
      // The snapshot, but udev has not made (or will not make) its link.
      if (Clock::now() - *proven >= host.wwn_link_grace) return device;
    }
    if (Clock::now() + host.poll_interval >= deadline) {
      if (proven) return device;
      if (disk.present)
        wrong =
            device + " reports no NAA, so it cannot be shown to be the snapshot (NAA " + want + ")";
      break;
    }
    std::this_thread::sleep_for(host.poll_interval);
  }
  if (!had_session) (void)LogoutAndForget(host, u, Clock::now() + std::chrono::seconds(10));
  const std::string again = had_session ? "" : "; logged out again";
  if (!wrong.empty()) {
    return Status::BadState("logged in to " + u.iqn + " at " + u.Portal() + ", but " + wrong +
                            again);
  }
  return Status::Unavailable("logged in to " + u.iqn + " at " + u.Portal() + ", but " + device +
                             " did not appear within " + std::to_string(timeout.count()) +
                             " ms (does the target have LUN " + std::to_string(u.lun) +
                             "? is udev running?)" + again);
}

Status DetachIscsi(std::string_view url, std::chrono::milliseconds timeout,
                   const OpenIscsiHost& host) {
  const Clock::time_point deadline = Clock::now() + timeout;
  auto parsed = ParseIscsiUrl(url);
  if (!parsed.ok()) return parsed.status();
  // Without the module or iscsiadm no session can exist; loading the module
  // only to find nothing would be a side effect of an undo.
  if (!Exists(host.module_dir) || !HaveProgram(host.iscsiadm)) return Status::Ok();
  auto numeric = NumericHost(parsed->host);
  if (!numeric.ok()) return numeric.status();
  IscsiUrl u = *parsed;
  u.host = *numeric;

  auto session = HasSession(host, u, deadline);
  if (!session.ok()) return session.status();
  if (*session) {
    if (!OtherLunsAttached(host, u).empty()) {
      // A logout would take the other LUNs too: remove only this one's disk.
      std::error_code ec;
      const fs::path disk = fs::canonical(ByPath(u, host), ec);
      if (ec) return Status::Ok();  // this LUN is not attached
      const fs::path remove =
          fs::path(host.sysfs_root) / "block" / disk.filename() / "device" / "delete";
      std::ofstream out(remove);
      out << "1\n";
      out.flush();
      if (!out)
        return Status::Unavailable("cannot remove " + disk.string() + " (writing 1 to " +
                                   remove.string() + " failed); other LUNs of " + u.iqn +
                                   " are in use, so the session was kept");
      return Status::Ok();
    }
  }
  // Also without a session: a record left behind may hold a CHAP password.
  return LogoutAndForget(host, u, deadline);
}

}  // namespace snapset::cli
