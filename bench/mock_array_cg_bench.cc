// mock_array_cg_bench: the latency of snapset-mock-array's consistency-group
// snapshot (ConsistencyGroup.CreateReplicaTarget), request to full response,
// for groups of N LUNs, against baselines measured in the same run on the
// same file system (docs/benchmarks.md, "mock_array_cg_bench").
//
// Set-up (untimed): a real snapset-mock-array (its own tgtd) is started with
// its state directory in a fresh directory under --dir, so the LUN files and
// the snapshots' copies live on that file system: XFS with reflink for the
// reflink path (scripts/bench-mock-array.sh makes one on a loop device), the
// default /tmp (ext4 here) for the sparse-copy path. max(N) volumes of
// --lun-mib MiB (block size 4096) are created, and every other 1 MiB extent
// of each (extents 0, 2, 4, ...: half of the LUN, in LUN/2 MiB separate data
// extents) is written over real iSCSI with libiscsi (WRITE16, 1 MiB each),
// then the file system is synced, so no timed request pays for write-back
// of the set-up. The group of size N holds the first N volumes.
//
// Each run, in this order (all timed arms are interleaved, so they share the
// machine's noise):
//   bare copy    what the array does to copy one LUN, done by the benchmark
//                on a file of the same size and layout on the same file
//                system: fdatasync(source), FICLONE (or, where the file
//                system refuses, a SEEK_DATA/SEEK_HOLE sparse copy with a
//                1 MiB buffer), fdatasync(copy). The floor of one snapshot's
//                data work.
//   tgtadm       one `tgtadm --lld iscsi --op show --mode portal` against the
//                array's own tgtd (read-only): the cost of one fork+exec+IPC
//                round trip. A snapshot no longer makes any (its LUN is
//                configured when a connection maps it); kept as a reference.
//   db commit    one autocommitted UPDATE in a SQLite database in WAL mode
//                with synchronous=FULL on the same file system, as the
//                array's store: the array makes 2 per request (every
//                record "creating" in one transaction, every row "ready"
//                in another), whatever N.
//   HTTP GET     GET /redfish/v1/Storage/array: one HTTP exchange with
//                the array, no storage work.
//   1-volume     Volume.CreateReplicaTarget of volume 1 (the same array code
//                path for one LUN): the baseline the group is compared with.
//   group        ConsistencyGroup.CreateReplicaTarget of the group of N.
// Snapshots are deleted after each arm (untimed) and the file system is
// synced (syncfs, untimed), so every arm starts from the same clean state,
// the deletions of one arm are not paid by the next, and the disk use stays
// bounded. Timings are wall clock (steady_clock) around curl_easy_perform:
// from sending the request to having the whole response. Each request opens
// a new loopback TCP connection (inside the timing, ~0.1 ms), because on a
// kept-alive connection the array's cpp-httplib (0.11, TCP_NODELAY off by
// default) sends header and body in two writes, and Nagle plus the client's
// delayed ACK hold most answers for ~40 ms; --keep-alive measures that.
//
// Percentiles are nearest-rank: p99 of 30 samples is the 30th of 30, the
// maximum.
//
// Usage:
//   mock_array_cg_bench [--dir DIR] [--luns 1,8,32] [--runs 30] [--warmup 1]
//                       [--lun-mib 64] [--array PATH] [--keep-alive] [--quick]
// --dir: where the state directory goes (a fresh subdirectory is created
// and removed); default the system temp directory.
// --keep-alive: one kept-alive connection for all requests (see above).
// --quick: N = 1,2, 3 runs, no warm-up, 8 MiB LUNs (the smoke test).
// Output: a Markdown table on stdout, then one JSON line per N (starting
// with {"bench":"mock_array_cg_bench").
// Exit status: 0 measured (a missed target is reported, not an error),
// 1 error, 2 cannot run here (not root, no tgtd), 130 interrupted.
#include <curl/curl.h>
#include <fcntl.h>
#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <poll.h>
#include <rapidjson/document.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "core/run_command.hpp"

namespace snapset::bench {
namespace {

constexpr uint64_t kMiB = 1024 * 1024;
constexpr uint32_t kBlockSize = 4096;
constexpr char kInitiator[] = "iqn.2026-11.io.snapset.bench:initiator";
constexpr char kVolumes[] = "/redfish/v1/Storage/array/Volumes";
constexpr char kGroups[] = "/redfish/v1/Storage/array/ConsistencyGroups";

volatile sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

// Thrown when this machine cannot run the benchmark (exit 2).
struct CannotRun : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// Thrown when a signal asked the benchmark to stop (exit 130).
struct Interrupted : std::runtime_error {
  Interrupted() : std::runtime_error("interrupted by a signal") {}
};

void CheckStop() {
  if (g_stop) throw Interrupted();
}

[[noreturn]] void Fail(const std::string& what) { throw std::runtime_error(what); }
[[noreturn]] void FailErrno(const std::string& what) {
  throw std::runtime_error(what + ": " + std::strerror(errno));
}

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

double Ms(int64_t ns) { return double(ns) / 1e6; }

std::string Fmt(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

// ------------------------------------------------------------------ options

struct Options {
  std::string dir;  // "": the system temp directory
  std::vector<int> luns = {1, 8, 32};
  int runs = 30;
  int warmup = 1;
  uint64_t lun_mib = 64;
  std::string array = SNAPSET_MOCK_ARRAY;
  bool quick = false;
  bool keep_alive = false;
};

bool ParseList(const std::string& text, std::vector<int>* out) {
  out->clear();
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    char* end = nullptr;
    const long n = std::strtol(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || n < 1 || n > 256) return false;
    out->push_back(int(n));
  }
  return !out->empty();
}

bool ParseArgs(int argc, char** argv, Options* o) {
  bool luns_given = false, runs_given = false, warmup_given = false, mib_given = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    const char* v = nullptr;
    if (a == "--dir" && (v = value())) {
      o->dir = v;
    } else if (a == "--luns" && (v = value())) {
      if (!ParseList(v, &o->luns)) {
        std::fprintf(stderr, "--luns wants a list like 1,8,32 (each 1..256)\n");
        return false;
      }
      luns_given = true;
    } else if (a == "--runs" && (v = value())) {
      o->runs = std::atoi(v);
      runs_given = true;
      if (o->runs < 1) {
        std::fprintf(stderr, "--runs wants a number >= 1\n");
        return false;
      }
    } else if (a == "--warmup" && (v = value())) {
      o->warmup = std::atoi(v);
      warmup_given = true;
      if (o->warmup < 0) {
        std::fprintf(stderr, "--warmup wants a number >= 0\n");
        return false;
      }
    } else if (a == "--lun-mib" && (v = value())) {
      o->lun_mib = std::strtoull(v, nullptr, 10);
      mib_given = true;
      if (o->lun_mib < 2 || o->lun_mib % 2 != 0 || o->lun_mib > 65536) {
        std::fprintf(stderr, "--lun-mib wants an even number of MiB, 2..65536\n");
        return false;
      }
    } else if (a == "--array" && (v = value())) {
      o->array = v;
    } else if (a == "--quick") {
      o->quick = true;
    } else if (a == "--keep-alive") {
      o->keep_alive = true;
    } else {
      std::fprintf(stderr,
                   "usage: %s [--dir DIR] [--luns 1,8,32] [--runs 30] [--warmup 1] "
                   "[--lun-mib 64] [--array PATH] [--keep-alive] [--quick]\n",
                   argv[0]);
      return false;
    }
  }
  if (o->quick) {  // explicit options still win
    if (!luns_given) o->luns = {1, 2};
    if (!runs_given) o->runs = 3;
    if (!warmup_given) o->warmup = 0;
    if (!mib_given) o->lun_mib = 8;
  }
  return true;
}

// --------------------------------------------------------------- statistics

struct Summary {
  int n = 0;
  double p50 = 0, p99 = 0, min = 0, max = 0;  // ms
};

// Nearest rank: the ceil(p/100 * n)-th smallest sample.
Summary Summarize(std::vector<int64_t> ns) {
  Summary s;
  if (ns.empty()) return s;
  std::sort(ns.begin(), ns.end());
  auto rank = [&](double p) {
    size_t k = size_t(std::ceil(p / 100.0 * double(ns.size())));
    return Ms(ns[std::clamp<size_t>(k, 1, ns.size()) - 1]);
  };
  s.n = int(ns.size());
  s.p50 = rank(50);
  s.p99 = rank(99);
  s.min = Ms(ns.front());
  s.max = Ms(ns.back());
  return s;
}

// ------------------------------------------------------------- REST client

struct Reply {
  long status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // names lower-cased
  int64_t elapsed_ns = 0;                      // curl_easy_perform, wall clock
  rapidjson::Document Json() const {
    rapidjson::Document doc;
    doc.Parse(body.c_str());
    return doc;
  }
};

size_t OnBody(char* data, size_t size, size_t count, void* out) {
  static_cast<std::string*>(out)->append(data, size * count);
  return size * count;
}

size_t OnHeader(char* data, size_t size, size_t count, void* out) {
  std::string line(data, size * count);
  const size_t colon = line.find(':');
  if (colon != std::string::npos) {
    std::string name = line.substr(0, colon);
    std::transform(name.begin(), name.end(), name.begin(), ::tolower);
    std::string value = line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(' '));
    value.erase(value.find_last_not_of("\r\n ") + 1);
    (*static_cast<std::map<std::string, std::string>*>(out))[name] = value;
  }
  return size * count;
}

// One libcurl easy handle; with `fresh`, a new TCP connection for every
// request (a loopback connect, ~0.1 ms, is inside the timing), else the
// connection is kept alive between requests.
class RestClient {
 public:
  RestClient(std::string base, bool fresh)
      : base_(std::move(base)), fresh_(fresh), curl_(curl_easy_init()) {
    if (curl_ == nullptr) Fail("curl_easy_init failed");
  }
  ~RestClient() { curl_easy_cleanup(curl_); }
  RestClient(const RestClient&) = delete;
  RestClient& operator=(const RestClient&) = delete;

  void set_token(std::string token) { token_ = std::move(token); }

  Reply Call(const std::string& method, const std::string& path, const std::string& body = "",
             long timeout_ms = 300000) {
    Reply reply;
    curl_easy_reset(curl_);  // keeps the connection cache
    curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
    if (!token_.empty()) headers = curl_slist_append(headers, ("X-Auth-Token: " + token_).c_str());
    const std::string url = base_ + path;
    curl_easy_setopt(curl_, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl_, CURLOPT_CUSTOMREQUEST, method.c_str());
    curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, headers);
    if (!body.empty() || method == "POST") {
      curl_easy_setopt(curl_, CURLOPT_POSTFIELDS, body.c_str());
      curl_easy_setopt(curl_, CURLOPT_POSTFIELDSIZE, long(body.size()));
    }
    curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, OnBody);
    curl_easy_setopt(curl_, CURLOPT_WRITEDATA, &reply.body);
    curl_easy_setopt(curl_, CURLOPT_HEADERFUNCTION, OnHeader);
    curl_easy_setopt(curl_, CURLOPT_HEADERDATA, &reply.headers);
    curl_easy_setopt(curl_, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(curl_, CURLOPT_NOSIGNAL, 1L);
    if (fresh_) {
      curl_easy_setopt(curl_, CURLOPT_FRESH_CONNECT, 1L);
      curl_easy_setopt(curl_, CURLOPT_FORBID_REUSE, 1L);
    }
    const int64_t t0 = NowNs();
    const CURLcode rc = curl_easy_perform(curl_);
    reply.elapsed_ns = NowNs() - t0;
    curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &reply.status);
    curl_slist_free_all(headers);
    if (rc != CURLE_OK) Fail(method + " " + url + ": " + curl_easy_strerror(rc));
    return reply;
  }

  // Call, and fail unless the status is `want`.
  Reply Expect(long want, const std::string& method, const std::string& path,
               const std::string& body = "") {
    Reply r = Call(method, path, body);
    if (r.status != want) {
      Fail(method + " " + path + ": HTTP " + std::to_string(r.status) + " (wanted " +
           std::to_string(want) + "): " + r.body);
    }
    return r;
  }

 private:
  std::string base_;
  bool fresh_;
  std::string token_;
  CURL* curl_;
};

std::string GetString(const rapidjson::Value& v, const char* key) {
  if (!v.IsObject() || !v.HasMember(key) || !v[key].IsString()) {
    Fail(std::string("response has no string ") + key);
  }
  return v[key].GetString();
}

const rapidjson::Value& OemSnapset(const rapidjson::Value& volume) {
  if (!volume.IsObject() || !volume.HasMember("Oem") || !volume["Oem"].IsObject() ||
      !volume["Oem"].HasMember("Snapset") || !volume["Oem"]["Snapset"].IsObject()) {
    Fail("volume has no Oem.Snapset");
  }
  return volume["Oem"]["Snapset"];
}

// ------------------------------------------------------------------- array

// The array as a child process in its own process group (a Ctrl-C reaches
// only the benchmark, which then stops the array itself). Stopped with
// SIGTERM (it deletes its targets and stops its tgtd), SIGKILL after a grace
// period; its tgtd, tied to it by PR_SET_PDEATHSIG, is reaped too.
class ArrayProcess {
 public:
  ArrayProcess(const std::string& binary, const std::string& state_dir, const std::string& log) {
    // A tgtd orphaned by a dying array is reparented to us, so Stop() can
    // reap it rather than leave a zombie.
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    std::vector<std::string> args = {binary,        "--listen",    "127.0.0.1:0", "--iscsi-portal",
                                     "127.0.0.1:0", "--state-dir", state_dir};
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int out[2];
    if (pipe2(out, O_CLOEXEC) != 0) FailErrno("pipe2");
    const int log_fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (log_fd < 0) FailErrno("creating " + log);
    pid_ = fork();
    if (pid_ == 0) {
      setpgid(0, 0);
      dup2(out[1], STDOUT_FILENO);
      dup2(log_fd, STDERR_FILENO);
      execv(argv[0], argv.data());
      _exit(127);
    }
    const int fork_errno = errno;
    close(out[1]);
    close(log_fd);
    if (pid_ < 0) {
      close(out[0]);
      errno = fork_errno;
      FailErrno("fork");
    }
    std::string line;
    const int64_t deadline = NowNs() + 20'000'000'000;
    while (line.find('\n') == std::string::npos && NowNs() < deadline && !g_stop) {
      pollfd pfd{out[0], POLLIN, 0};
      if (poll(&pfd, 1, 100) <= 0) continue;
      char buffer[1024];
      const ssize_t n = read(out[0], buffer, sizeof(buffer));
      if (n <= 0) break;
      line.append(buffer, size_t(n));
    }
    close(out[0]);
    if (g_stop) {
      Stop();
      throw Interrupted();
    }
    rapidjson::Document doc;
    doc.Parse(line.c_str());
    if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("ready")) {
      std::ifstream in(log);
      std::stringstream text;
      text << in.rdbuf();
      Stop();
      Fail("snapset-mock-array did not get ready; stdout: '" + line + "', stderr: " + text.str());
    }
    rest_ = GetString(doc, "rest");
    portal_ = GetString(doc, "iscsi_portal");
  }
  ~ArrayProcess() { Stop(); }
  ArrayProcess(const ArrayProcess&) = delete;
  ArrayProcess& operator=(const ArrayProcess&) = delete;

  void Stop() {
    if (pid_ <= 0) return;
    const std::vector<pid_t> children = Children();
    kill(pid_, SIGTERM);
    WaitGone(pid_, 30000);
    pid_ = -1;
    for (pid_t child : children) WaitGone(child, 5000);
  }

  pid_t pid() const { return pid_; }
  const std::string& rest() const { return rest_; }
  const std::string& portal() const { return portal_; }

 private:
  std::vector<pid_t> Children() const {
    std::ifstream in("/proc/" + std::to_string(pid_) + "/task/" + std::to_string(pid_) +
                     "/children");
    std::vector<pid_t> out;
    pid_t child;
    while (in >> child) out.push_back(child);
    return out;
  }

  // Waits for a child (or a reparented grandchild) to end; SIGKILL after
  // grace_ms.
  static void WaitGone(pid_t pid, int grace_ms) {
    const int64_t deadline = NowNs() + int64_t(grace_ms) * 1'000'000;
    for (;;) {
      const pid_t r = waitpid(pid, nullptr, WNOHANG);
      if (r == pid || (r < 0 && errno == ECHILD)) return;
      if (NowNs() >= deadline) {
        kill(pid, SIGKILL);
        while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
        }
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

  pid_t pid_ = -1;
  std::string rest_, portal_;
};

// A writable iSCSI URL for one volume of the array: a connection of its own
// to kInitiator (POST /redfish/v1/Fabrics/iSCSI/Connections), and the
// iscsi://PORTAL/TARGET/LUN it answers with.
std::string WritableIscsiUrl(RestClient& rest, const std::string& portal,
                             const rapidjson::Value& volume) {
  static_cast<void>(portal);  // the connection names its portal
  Reply r = rest.Expect(
      201, "POST", "/redfish/v1/Fabrics/iSCSI/Connections",
      "{\"VolumeInfo\":[{\"Volume\":{\"@odata.id\":\"" + GetString(volume, "@odata.id") +
          "\"}}],\"Oem\":{\"Snapset\":{\"InitiatorIqn\":\"" + kInitiator + "\"}}}");
  rapidjson::Document c = r.Json();
  const rapidjson::Value& oem = OemSnapset(c);
  if (!c.HasMember("VolumeInfo") || !c["VolumeInfo"].IsArray() || c["VolumeInfo"].Empty() ||
      !c["VolumeInfo"][0].HasMember("LUN") || !c["VolumeInfo"][0]["LUN"].IsInt()) {
    Fail("connection has no VolumeInfo[0].LUN");
  }
  return "iscsi://" + GetString(oem, "Portal") + "/" + GetString(oem, "IscsiTarget") + "/" +
         std::to_string(c["VolumeInfo"][0]["LUN"].GetInt());
}

// --------------------------------------------------------------- iSCSI I/O

struct IscsiContextDeleter {
  void operator()(iscsi_context* ctx) const {
    if (iscsi_is_logged_in(ctx)) iscsi_logout_sync(ctx);
    iscsi_destroy_context(ctx);
  }
};
struct ScsiTaskDeleter {
  void operator()(scsi_task* task) const { scsi_free_scsi_task(task); }
};

// The byte pattern of extent `extent` of volume `volume`: never zero, so
// nothing on the way can mistake it for a hole.
void FillExtent(std::vector<unsigned char>* buffer, int volume, uint64_t extent) {
  uint64_t x = 0x9e3779b97f4a7c15ull * uint64_t(volume + 1) + extent;
  for (size_t i = 0; i < buffer->size(); i += 8) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    std::memcpy(buffer->data() + i, &x, 8);
  }
}

// Writes extents 0, 2, 4, ... (1 MiB each) of the LUN at `url`: half of it.
void WriteHalf(const std::string& url, int volume, uint64_t lun_bytes) {
  std::unique_ptr<iscsi_context, IscsiContextDeleter> ctx(iscsi_create_context(kInitiator));
  if (!ctx) Fail("iscsi_create_context failed");
  iscsi_url* parsed = iscsi_parse_full_url(ctx.get(), url.c_str());
  if (parsed == nullptr) Fail(url + ": " + iscsi_get_error(ctx.get()));
  iscsi_set_targetname(ctx.get(), parsed->target);
  iscsi_set_session_type(ctx.get(), ISCSI_SESSION_NORMAL);
  iscsi_set_header_digest(ctx.get(), ISCSI_HEADER_DIGEST_NONE_CRC32C);
  iscsi_set_timeout(ctx.get(), 60);
  const int lun = parsed->lun;
  const std::string portal = parsed->portal;
  iscsi_destroy_url(parsed);
  if (iscsi_full_connect_sync(ctx.get(), portal.c_str(), lun) != 0) {
    Fail(url + ": login: " + iscsi_get_error(ctx.get()));
  }
  std::vector<unsigned char> buffer(kMiB);
  for (uint64_t extent = 0; extent * kMiB < lun_bytes; extent += 2) {
    CheckStop();
    FillExtent(&buffer, volume, extent);
    std::unique_ptr<scsi_task, ScsiTaskDeleter> task(
        iscsi_write16_sync(ctx.get(), lun, extent * kMiB / kBlockSize, buffer.data(),
                           uint32_t(buffer.size()), kBlockSize, 0, 0, 0, 0, 0));
    if (!task || task->status != SCSI_STATUS_GOOD) {
      Fail(url + ": WRITE16 at extent " + std::to_string(extent) +
           " failed: " + iscsi_get_error(ctx.get()));
    }
  }
}

// ---------------------------------------------------------- bare baselines

struct Fd {
  explicit Fd(int value) : fd(value) {}
  ~Fd() {
    if (fd >= 0) close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int fd;
};

void SparseCopy(int in, int out, off_t size) {
  std::vector<char> buffer(kMiB);
  off_t offset = 0;
  while (offset < size) {
    const off_t data = lseek(in, offset, SEEK_DATA);
    if (data < 0 && errno == ENXIO) break;
    if (data < 0) FailErrno("SEEK_DATA");
    off_t hole = lseek(in, data, SEEK_HOLE);
    if (hole < 0) FailErrno("SEEK_HOLE");
    hole = std::min(hole, size);
    for (off_t at = data; at < hole;) {
      const ssize_t got =
          pread(in, buffer.data(), size_t(std::min<off_t>(hole - at, off_t(buffer.size()))), at);
      if (got <= 0) FailErrno("pread");
      if (pwrite(out, buffer.data(), size_t(got), at) != got) FailErrno("pwrite");
      at += got;
    }
    offset = hole;
  }
}

// The array's copy of one LUN (providers/mock-array CopyContents), on the
// benchmark's own file of the same size and layout: fdatasync(source),
// FICLONE or a sparse copy, fdatasync(copy). Returns the time; *method says
// which copy it was.
int64_t BareCopy(const std::string& source, const std::string& copy, std::string* method) {
  const int64_t t0 = NowNs();
  Fd in(open(source.c_str(), O_RDONLY | O_CLOEXEC));
  if (in.fd < 0) FailErrno("opening " + source);
  if (fdatasync(in.fd) != 0) FailErrno("fdatasync " + source);
  struct stat st {};
  if (fstat(in.fd, &st) != 0) FailErrno("fstat " + source);
  Fd out(open(copy.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (out.fd < 0) FailErrno("creating " + copy);
  *method = "reflink";
  if (ioctl(out.fd, FICLONE, in.fd) != 0) {
    if (errno != EOPNOTSUPP && errno != ENOTTY && errno != EXDEV && errno != EINVAL &&
        errno != ENOSYS) {
      FailErrno("FICLONE");
    }
    *method = "sparse-copy";
    if (ftruncate(out.fd, st.st_size) != 0) FailErrno("ftruncate " + copy);
    SparseCopy(in.fd, out.fd, st.st_size);
  }
  if (fdatasync(out.fd) != 0) FailErrno("fdatasync " + copy);
  const int64_t elapsed = NowNs() - t0;
  unlink(copy.c_str());
  return elapsed;
}

// A file laid out as a LUN after WriteHalf, written with plain pwrite.
void MakeHalfWrittenFile(const std::string& path, uint64_t bytes) {
  Fd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (fd.fd < 0) FailErrno("creating " + path);
  if (ftruncate(fd.fd, off_t(bytes)) != 0) FailErrno("ftruncate " + path);
  std::vector<unsigned char> buffer(kMiB);
  for (uint64_t extent = 0; extent * kMiB < bytes; extent += 2) {
    FillExtent(&buffer, 1000, extent);
    if (pwrite(fd.fd, buffer.data(), kMiB, off_t(extent * kMiB)) != ssize_t(kMiB)) {
      FailErrno("pwrite " + path);
    }
  }
  if (fsync(fd.fd) != 0) FailErrno("fsync " + path);
}

// A SQLite database configured as the array's store (WAL, synchronous=FULL).
class DbCommit {
 public:
  explicit DbCommit(const std::string& path) {
    if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK) Fail("sqlite3_open " + path);
    Exec(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
        "CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER); INSERT INTO t VALUES (1, 0);");
  }
  ~DbCommit() { sqlite3_close(db_); }
  DbCommit(const DbCommit&) = delete;
  DbCommit& operator=(const DbCommit&) = delete;

  // One autocommitted UPDATE, as the array's store makes them.
  int64_t Time() {
    const int64_t t0 = NowNs();
    Exec("UPDATE t SET v=v+1 WHERE id=1");
    return NowNs() - t0;
  }

 private:
  void Exec(const char* sql) {
    char* error = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &error) != SQLITE_OK) {
      const std::string message = error ? error : "?";
      sqlite3_free(error);
      Fail(std::string("sqlite: ") + message);
    }
  }
  sqlite3* db_ = nullptr;
};

// The control number of the array's tgtd: its IPC socket is
// <state_dir>/tgt-ipc.<N> (next to a tgt-ipc.<N>.lock).
std::string TgtControl(const std::string& state_dir) {
  for (const auto& entry : std::filesystem::directory_iterator(state_dir)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("tgt-ipc.", 0) != 0) continue;
    const std::string rest = name.substr(8);
    if (!rest.empty() && rest.find_first_not_of("0123456789") == std::string::npos) return rest;
  }
  Fail("no tgt-ipc.N socket in " + state_dir);
}

// One read-only tgtadm round trip to the array's tgtd (fork+exec+IPC), made
// as the array makes its own (RunCommand, posix_spawnp).
int64_t TimeTgtadm(const std::string& control) {
  const int64_t t0 = NowNs();
  const CommandResult r =
      RunCommand({"tgtadm", "-C", control, "--lld", "iscsi", "--op", "show", "--mode", "portal"});
  const int64_t elapsed = NowNs() - t0;
  if (r.exit_code != 0) Fail("tgtadm --op show --mode portal failed: " + r.output);
  return elapsed;
}

// syncfs on the file system of `path`, untimed: the deletions of one arm
// (journal commits, freed extents) are not paid by the next arm's first
// fdatasync.
void Settle(const std::string& path) {
  Fd dir(open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir.fd < 0 || syncfs(dir.fd) != 0) FailErrno("syncfs " + path);
}

// ------------------------------------------------------------------ machine

std::string FsType(const std::string& path) {
  struct statfs s {};
  if (statfs(path.c_str(), &s) != 0) return "?";
  switch (uint64_t(s.f_type)) {
    case XFS_SUPER_MAGIC:
      return "xfs";
    case EXT4_SUPER_MAGIC:
      return "ext4";
    case TMPFS_MAGIC:
      return "tmpfs";
    case BTRFS_SUPER_MAGIC:
      return "btrfs";
    default: {
      char b[32];
      std::snprintf(b, sizeof b, "0x%lx", static_cast<unsigned long>(s.f_type));
      return b;
    }
  }
}

std::string Machine() {
  utsname u{};
  uname(&u);
  std::string cpu = "?";
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("model name", 0) == 0) {
      cpu = line.substr(line.find(':') + 2);
      break;
    }
  }
  double load = 0;
  std::ifstream("/proc/loadavg") >> load;
  return std::to_string(std::thread::hardware_concurrency()) + " CPUs (" + cpu + "), Linux " +
         u.release + " " + u.machine + ", load average " + Fmt("%.2f", load);
}

// ---------------------------------------------------------------- the bench

struct Row {
  int luns = 0;
  std::string copy_method;  // as the array reported it for every snapshot of the group
  Summary group, single, bare_copy, tgtadm, commit, http;
};

class Bench {
 public:
  Bench(const Options& o, std::string work) : o_(o), work_(std::move(work)) {}

  int Run() {
    const std::string state = work_ + "/state";
    const std::string fs = FsType(work_);
    const uint64_t lun_bytes = o_.lun_mib * kMiB;
    const int max_n = *std::max_element(o_.luns.begin(), o_.luns.end());
    std::fprintf(stderr, "mock_array_cg_bench: state directory %s (%s)\n", state.c_str(),
                 fs.c_str());

    ArrayProcess array(o_.array, state, work_ + "/array.log");
    RestClient rest(array.rest(), !o_.keep_alive);
    Reply login = rest.Expect(201, "POST", "/redfish/v1/SessionService/Sessions",
                              R"({"UserName":"admin","Password":"admin"})");
    rest.set_token(login.headers["x-auth-token"]);

    // Set-up: max(N) volumes, each half written over iSCSI.
    std::vector<std::string> ids;
    const int64_t setup0 = NowNs();
    for (int k = 1; k <= max_n; ++k) {
      CheckStop();
      Reply r = rest.Expect(201, "POST", kVolumes,
                            "{\"Name\":\"bench-vol-" + std::to_string(k) +
                                "\",\"CapacityBytes\":" + std::to_string(lun_bytes) +
                                ",\"BlockSizeBytes\":" + std::to_string(kBlockSize) + "}");
      rapidjson::Document v = r.Json();
      ids.push_back(GetString(v, "Id"));
      WriteHalf(WritableIscsiUrl(rest, array.portal(), v), k, lun_bytes);
    }
    MakeHalfWrittenFile(work_ + "/bare-source.img", lun_bytes);
    Settle(state);
    std::fprintf(stderr, "mock_array_cg_bench: %d volumes of %llu MiB written in %.1f s\n", max_n,
                 (unsigned long long)o_.lun_mib, double(NowNs() - setup0) / 1e9);
    DbCommit db(work_ + "/commit.db");
    // tgtadm finds the array's tgtd by this socket path plus ".<control>".
    setenv("TGT_IPC_SOCKET", (state + "/tgt-ipc").c_str(), 1);
    const std::string control = TgtControl(state);

    std::vector<Row> rows;
    for (int n : o_.luns) {
      std::string members;
      for (int k = 0; k < n; ++k) {
        members +=
            std::string(k ? "," : "") + "{\"@odata.id\":\"" + kVolumes + "/" + ids[k] + "\"}";
      }
      Reply g = rest.Expect(
          201, "POST", kGroups,
          "{\"Name\":\"bench-cg-" + std::to_string(n) + "\",\"Volumes\":[" + members + "]}");
      const std::string group_path = std::string(kGroups) + "/" + GetString(g.Json(), "Id");
      const std::string action = group_path + "/Actions/ConsistencyGroup.CreateReplicaTarget";
      const std::string single_action =
          std::string(kVolumes) + "/" + ids[0] + "/Actions/Volume.CreateReplicaTarget";

      std::vector<int64_t> group_ns, single_ns, bare_ns, tgtadm_ns, commit_ns, http_ns;
      std::set<std::string> methods;
      std::string bare_method;
      for (int run = 0; run < o_.warmup + o_.runs; ++run) {
        CheckStop();
        const bool measured = run >= o_.warmup;
        const int64_t bare =
            BareCopy(work_ + "/bare-source.img", work_ + "/bare-copy.img", &bare_method);
        const int64_t tgtadm = TimeTgtadm(control);
        const int64_t commit = db.Time();
        const int64_t http = rest.Expect(200, "GET", "/redfish/v1/Storage/array").elapsed_ns;

        Reply s = rest.Expect(201, "POST", single_action,
                              R"({"ReplicaType":"Snapshot","TargetVolumeName":"bench-single"})");
        rapidjson::Document sd = s.Json();
        rest.Expect(204, "DELETE", std::string(kVolumes) + "/" + GetString(sd, "Id"));
        Settle(state);

        Reply r = rest.Expect(201, "POST", action, R"({"ReplicaType":"Snapshot"})");
        rapidjson::Document d = r.Json();
        if (!d.IsObject() || !d.HasMember("Members") || !d["Members"].IsArray() ||
            d["Members"].Size() != unsigned(n)) {
          Fail("group snapshot of " + std::to_string(n) + " did not return " + std::to_string(n) +
               " members: " + r.body);
        }
        for (const auto& m : d["Members"].GetArray()) {
          methods.insert(GetString(OemSnapset(m), "CopyMethod"));
        }
        for (const auto& m : d["Members"].GetArray()) {
          rest.Expect(204, "DELETE", std::string(kVolumes) + "/" + GetString(m, "Id"));
        }
        Settle(state);
        if (!measured) continue;
        group_ns.push_back(r.elapsed_ns);
        single_ns.push_back(s.elapsed_ns);
        bare_ns.push_back(bare);
        tgtadm_ns.push_back(tgtadm);
        commit_ns.push_back(commit);
        http_ns.push_back(http);
      }
      rest.Expect(204, "DELETE", group_path);

      Row row;
      row.luns = n;
      for (const std::string& m : methods) {
        row.copy_method += (row.copy_method.empty() ? "" : "+") + m;
      }
      if (row.copy_method != bare_method) {
        std::fprintf(stderr,
                     "mock_array_cg_bench: warning: the array copied by %s, the bare baseline "
                     "by %s\n",
                     row.copy_method.c_str(), bare_method.c_str());
      }
      row.group = Summarize(group_ns);
      row.single = Summarize(single_ns);
      row.bare_copy = Summarize(bare_ns);
      row.tgtadm = Summarize(tgtadm_ns);
      row.commit = Summarize(commit_ns);
      row.http = Summarize(http_ns);
      rows.push_back(row);
      std::fprintf(stderr, "mock_array_cg_bench: N=%d done: group p50 %.1f ms p99 %.1f ms (%s)\n",
                   n, row.group.p50, row.group.p99, row.copy_method.c_str());
    }
    Print(rows, fs);
    return 0;
  }

 private:
  void Print(const std::vector<Row>& rows, const std::string& fs) const {
    std::printf("## mock_array_cg_bench%s\n\n",
                o_.quick ? " (--quick: too small to mean anything)" : "");
    std::printf(
        "Machine: %s. State directory on %s. %d LUNs max of %llu MiB, block 4096, every "
        "other 1 MiB extent written over iSCSI (half). %d measured runs per N after %d "
        "warm-up. Times in ms, nearest-rank percentiles: p99 of %d runs is the %s.\n\n",
        Machine().c_str(), fs.c_str(), *std::max_element(o_.luns.begin(), o_.luns.end()),
        (unsigned long long)o_.lun_mib, o_.runs, o_.warmup, o_.runs,
        o_.runs <= 100 ? "maximum" : "99th percentile");

    std::printf(
        "| LUNs | copy method | group p50 | group p99 | group min | group max | per LUN "
        "p50 | 1-volume p50 | 1-volume p99 | group/1-volume p50 | group/1-volume p99 "
        "|\n|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (const Row& r : rows) {
      std::printf(
          "| %d | %s | **%.1f** | **%.1f** | %.1f | %.1f | %.1f | %.1f | %.1f | %.2f | "
          "%.2f |\n",
          r.luns, r.copy_method.c_str(), r.group.p50, r.group.p99, r.group.min, r.group.max,
          r.group.p50 / r.luns, r.single.p50, r.single.p99, r.group.p50 / r.single.p50,
          r.group.p99 / r.single.p99);
    }

    std::printf(
        "\nWhere the time goes (p50, ms): an estimate from the parts measured in the "
        "same runs; the array makes per snapshot one copy (FICLONE or a sparse copy; the "
        "bare copy also fdatasyncs both files, the array syncs once per request), plus per "
        "request 2 database commits and one HTTP exchange (a GET of the storage resource, "
        "timed like the requests). A rough model: parts timed alone pay wake-ups that a "
        "burst does not. tgtadm: one call, for reference (no longer in a snapshot's path).\n\n");
    std::printf(
        "| LUNs | bare copy (1 LUN) | db commit (1) | HTTP GET | copies N x copy | db 2 x commit "
        "| sum | group p50 | rest | tgtadm (1 call) |\n"
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (const Row& r : rows) {
      const double copies = r.luns * r.bare_copy.p50;
      const double db = 2.0 * r.commit.p50;
      const double sum = copies + db + r.http.p50;
      std::printf("| %d | %.2f | %.2f | %.2f | %.1f | %.1f | %.1f | %.1f | %.1f | %.2f |\n",
                  r.luns, r.bare_copy.p50, r.commit.p50, r.http.p50, copies, db, sum,
                  r.group.p50, r.group.p50 - sum, r.tgtadm.p50);
    }
    for (const Row& r : rows) {
      if (r.luns != 8 || o_.quick) continue;
      if (r.copy_method == "reflink") {
        std::printf("\nTarget p99 < 100 ms at 8 LUNs with reflink: %s (p99 %.1f ms).\n",
                    r.group.p99 < 100.0 ? "**met**" : "**not met**", r.group.p99);
      } else {
        std::printf(
            "\nTarget p99 < 100 ms at 8 LUNs applies to reflink; this run copied by %s "
            "(p99 %.1f ms).\n",
            r.copy_method.c_str(), r.group.p99);
      }
    }
    std::printf("\n");
    auto js = [](const Summary& s) {
      char b[200];
      std::snprintf(b, sizeof b, "{\"p50\":%.3f,\"p99\":%.3f,\"min\":%.3f,\"max\":%.3f}", s.p50,
                    s.p99, s.min, s.max);
      return std::string(b);
    };
    for (const Row& r : rows) {
      std::printf(
          "{\"bench\":\"mock_array_cg_bench\",\"luns\":%d,\"lun_bytes\":%llu,"
          "\"written_bytes\":%llu,\"runs\":%d,\"warmup\":%d,\"fs\":\"%s\","
          "\"copy_method\":\"%s\",\"group_ms\":%s,\"single_ms\":%s,\"bare_copy_ms\":%s,"
          "\"tgtadm_ms\":%s,\"db_commit_ms\":%s,\"http_get_ms\":%s,\"group_over_single_p50\":%.3f,"
          "\"group_over_single_p99\":%.3f,\"connection\":\"%s\",\"quick\":%s}\n",
          r.luns, (unsigned long long)(o_.lun_mib * kMiB),
          (unsigned long long)(o_.lun_mib * kMiB / 2), o_.runs, o_.warmup, fs.c_str(),
          r.copy_method.c_str(), js(r.group).c_str(), js(r.single).c_str(), js(r.bare_copy).c_str(),
          js(r.tgtadm).c_str(), js(r.commit).c_str(), js(r.http).c_str(),
          r.group.p50 / r.single.p50, r.group.p99 / r.single.p99,
          o_.keep_alive ? "keep-alive" : "fresh", o_.quick ? "true" : "false");
    }
    std::fflush(stdout);
  }

  const Options& o_;
  std::string work_;
};

// Removes the benchmark's directory on every way out (after the array,
// declared later, has stopped).
struct DirGuard {
  std::string path;
  ~DirGuard() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

int Main(const Options& o) {
  if (geteuid() != 0) {
    std::fprintf(stderr, "mock_array_cg_bench: needs root (the array runs tgtd)\n");
    return 2;
  }
  for (const char* tool : {"tgtd", "tgtadm"}) {
    if (!HaveProgram(tool) && access((std::string("/usr/sbin/") + tool).c_str(), X_OK) != 0) {
      std::fprintf(stderr, "mock_array_cg_bench: needs %s (package tgt)\n", tool);
      return 2;
    }
  }
  if (access(o.array.c_str(), X_OK) != 0) {
    std::fprintf(stderr, "mock_array_cg_bench: no snapset-mock-array at %s\n", o.array.c_str());
    return 2;
  }
  const std::string parent =
      o.dir.empty() ? std::filesystem::temp_directory_path().string() : o.dir;
  std::string tmpl = parent + "/snapset-cg-bench.XXXXXX";
  if (!mkdtemp(tmpl.data())) {
    std::fprintf(stderr, "mock_array_cg_bench: cannot create a directory in %s: %s\n",
                 parent.c_str(), std::strerror(errno));
    return 2;
  }
  DirGuard guard{tmpl};
  Bench bench(o, tmpl);
  return bench.Run();
}

}  // namespace
}  // namespace snapset::bench

int main(int argc, char** argv) {
  snapset::bench::Options o;
  if (!snapset::bench::ParseArgs(argc, argv, &o)) return 1;
  struct sigaction sa {};
  sa.sa_handler = snapset::bench::OnSignal;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaction(sig, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  int rc = 1;
  // Caught so that the stack unwinds: the destructors stop the array and
  // remove the directory.
  try {
    rc = snapset::bench::Main(o);
  } catch (const snapset::bench::Interrupted& e) {
    std::fprintf(stderr, "mock_array_cg_bench: %s\n", e.what());
    rc = 130;
  } catch (const snapset::bench::CannotRun& e) {
    std::fprintf(stderr, "mock_array_cg_bench: cannot run here: %s\n", e.what());
    rc = 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mock_array_cg_bench: %s\n", e.what());
    rc = 1;
  }
  curl_global_cleanup();
  return rc;
}
