// SPDX-License-Identifier: Apache-2.0
//
// mock-swordfish, mock-twophase: LUNs on two snapset-mock-array processes
// of one dialect, started by the suite on free loopback ports in the work
// directory, driven by the bundled iSCSI provider (or, with --driver, by an
// IHV's array driver in the provider's place of the bundled one).
//
// As a user sets it up (tests/iscsi/provider_fixture.cc does the same):
//   - each array runs with a users file (chmod 600) holding one
//     administrator with a random password, never admin/admin, so that the
//     secrets case has a real secret to look for;
//   - the LUNs are split between the two arrays (a gets the first half), so
//     a set of the first and the last volume spans both, and one connection
//     (a twophase export) per array maps them to this host's initiator;
//   - the provider's registration has one entry per array, with a
//     credentials file (chmod 600) each.
//
// Residue is what GET /mock/state shows of each array beyond the LUNs and
// the host's mapping: snapshots, consistency groups, fences and other
// connections, one line each.
//
// Fault injection arms POST /mock/faults on both arrays, Count 1: the first
// request of that operation on each array fails, the next ones (the abort's)
// work. fault_operations() names each operation with the phase of a set in
// which the iSCSI provider sends it, "PHASE:OPERATION" (prepare, commit,
// post-commit, delete); InjectFault takes that form or the bare operation.
//
// The arrays are stopped by pid (SIGTERM, then SIGKILL; then their tgtd),
// from Stop() and the destructor, only in the process that started them:
// each case runs in a fork of the suite, and a fork's copy of the fixture
// must not stop the arrays the next case needs.
#include <curl/curl.h>
#include <fcntl.h>
#include <poll.h>
#include <rapidjson/document.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "conformance/fixture.hpp"
#include "conformance/paths.hpp"
#include "conformance/record_io.hpp"

namespace snapset::conformance {
namespace {

// The initiator snapset's host logs in with (core/iscsi_identity.hpp's
// default): the LUNs and the provider's exposures are mapped to it.
constexpr char kHostInitiator[] = "iqn.2026-11.io.snapset:host";
constexpr char kAdmin[] = "snapset-qa";
constexpr char kVolumes[] = "/redfish/v1/Storage/array/Volumes";
constexpr char kConnections[] = "/redfish/v1/Fabrics/iSCSI/Connections";
constexpr uint64_t kLunBytes = 8 << 20;
constexpr long kRestTimeoutMs = 20000;

// ---- REST, over libcurl, to the arrays on 127.0.0.1 ------------------------

struct Response {
  long status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string error;                           // a transport failure, status 0
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
    for (char& c : name) c = char(std::tolower(static_cast<unsigned char>(c)));
    std::string value = line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(' '));
    value.erase(value.find_last_not_of("\r\n ") + 1);
    (*static_cast<std::map<std::string, std::string>*>(out))[name] = value;
  }
  return size * count;
}

Response Http(const std::string& method, const std::string& url, const std::string& body,
              const std::vector<std::string>& headers) {
  Response out;
  CURL* curl = curl_easy_init();
  if (curl == nullptr) {
    out.error = "curl_easy_init failed";
    return out;
  }
  curl_slist* list = curl_slist_append(nullptr, "Content-Type: application/json");
  for (const std::string& h : headers) list = curl_slist_append(list, h.c_str());
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");  // loopback, never a proxy
  if (!body.empty() || method == "POST") {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, long(body.size()));
  }
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &out.body);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &out.headers);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, kRestTimeoutMs);
  const CURLcode rc = curl_easy_perform(curl);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &out.status);
  if (rc != CURLE_OK) {
    out.status = 0;
    out.error = curl_easy_strerror(rc);
  }
  curl_slist_free_all(list);
  curl_easy_cleanup(curl);
  return out;
}

std::string Quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string Str(const rapidjson::Value& v, const char* key) {
  if (!v.IsObject()) return "";
  auto it = v.FindMember(key);
  return it != v.MemberEnd() && it->value.IsString() ? it->value.GetString() : "";
}

// A password no one guesses and the secrets case can look for: 24 hex
// digits from the kernel's random source.
std::string RandomSecret() {
  unsigned char bytes[12] = {};
  std::ifstream in("/dev/urandom", std::ios::binary);
  in.read(reinterpret_cast<char*>(bytes), sizeof(bytes));
  static const char kHex[] = "0123456789abcdef";
  std::string out = "qa-";
  for (unsigned char b : bytes) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

Status WriteSecretFile(const std::string& path, const std::string& text) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status::Internal(path + ": " + std::strerror(errno));
  fchmod(fd, 0600);
  const bool ok = ::write(fd, text.data(), text.size()) == ssize_t(text.size());
  ::close(fd);
  return ok ? Status::Ok() : Status::Internal(path + ": short write");
}

// The children of a process's main thread: an array forks its tgtd there.
std::vector<pid_t> ChildrenOf(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children");
  std::vector<pid_t> out;
  pid_t child;
  while (in >> child) out.push_back(child);
  return out;
}

std::string CommOf(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/comm");
  std::string comm;
  std::getline(in, comm);
  return comm;
}

// ---- one array --------------------------------------------------------------

struct Lun {
  int array = 0;
  std::string id;   // Swordfish: its @odata.id; twophase: lun-N
  std::string url;  // iscsi://portal/target/lun, mapped to the host
};

struct Array {
  std::string label;  // "a", "b"
  pid_t pid = -1;
  std::vector<pid_t> children;  // its tgtd, seen after start
  std::string rest, portal;
  std::string token;
  std::string host_connection;  // /mock/state's @odata.id of the host's mapping
};

class MockArrayFixture : public Fixture {
 public:
  MockArrayFixture(FixtureOptions options, std::string dialect)
      : options_(std::move(options)), dialect_(std::move(dialect)) {}
  ~MockArrayFixture() override { Stop(); }

  std::string Describe() const override {
    return "LUNs on two snapset-mock-array processes (" + dialect_ +
           " dialect, their own tgtd), split between them, driven by " +
           (options_.driver.empty() ? "the bundled " + dialect_ + " array driver"
                                    : "the array driver " + options_.driver);
  }

  Result<FixtureSetup> Start(int count) override {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    owner_ = getpid();
    if (count < 1) return Status::InvalidArgument("the mock-array fixture needs 1 volume or more");
    password_ = RandomSecret();
    Result<std::string> binary = BundledPath(Bundled::kMockArray);
    if (!binary.ok()) return binary.status();
    std::string driver = options_.driver;
    if (driver.empty() && dialect_ == "twophase") {
      Result<std::string> d = BundledPath(Bundled::kTwophaseDriver);
      if (!d.ok()) return d.status();
      driver = *d;
    }
    if (driver.empty()) driver = "swordfish";
    Result<std::string> provider = BundledPath(Bundled::kIscsiProvider);
    if (!provider.ok()) return provider.status();

    arrays_.resize(2);
    const int on_a = (count + 1) / 2;
    for (int i = 0; i < 2; ++i) {
      arrays_[i].label = i == 0 ? "a" : "b";
      SNAPSET_RETURN_IF_ERROR(StartArray(i, *binary));
      SNAPSET_RETURN_IF_ERROR(Login(i));
      const int first = i == 0 ? 0 : on_a, last = i == 0 ? on_a : count;
      for (int n = first; n < last; ++n) SNAPSET_RETURN_IF_ERROR(CreateLun(i, n));
      SNAPSET_RETURN_IF_ERROR(MapLuns(i));
    }
    for (const Lun& l : luns_) volumes_.push_back(l.url);

    std::string arrays;
    for (int i = 0; i < 2; ++i) {
      const std::string cred = options_.work_dir + "/" + arrays_[i].label + ".cred";
      SNAPSET_RETURN_IF_ERROR(WriteSecretFile(
          cred, "{\"UserName\":" + Quote(kAdmin) + ",\"Password\":" + Quote(password_) + "}"));
      arrays += std::string(i ? "," : "") + "{\"name\":" + Quote(arrays_[i].label) +
                ",\"driver\":" + Quote(driver) + ",\"rest_url\":" + Quote(arrays_[i].rest) +
                ",\"credentials_file\":" + Quote(cred) + ",\"portals\":[" +
                Quote(arrays_[i].portal) + "],\"insecure\":true}";
    }
    FixtureSetup setup;
    setup.provider_library = *provider;
    setup.provider_config =
        "{\"initiator_iqn\":" + Quote(kHostInitiator) + ",\"arrays\":[" + arrays + "]}";
    setup.provider_name = "iscsi/" + dialect_;
    setup.initiator_iqn = kHostInitiator;
    setup.initiator_iqn = kHostInitiator;
    return setup;
  }

  const std::vector<std::string>& volumes() const override { return volumes_; }

  Status WriteRecord(int index, const std::string& record) override {
    SNAPSET_RETURN_IF_ERROR(CheckIndex(index));
    return WriteRecordIscsi(volumes_[index], kHostInitiator, record);
  }
  Result<std::string> ReadRecord(int index) override {
    SNAPSET_RETURN_IF_ERROR(CheckIndex(index));
    return ReadRecordIscsi(volumes_[index], kHostInitiator);
  }
  // The provider exposes a replica to its configured initiator (the host's,
  // here) as an iscsi:// URL, read-only.
  Result<std::string> ReadExposedRecord(int index, const std::string& exposed_as) override {
    SNAPSET_RETURN_IF_ERROR(CheckIndex(index));
    return ReadRecordIscsi(exposed_as, kHostInitiator);
  }
  Status TryWriteExposed(int index, const std::string& exposed_as) override {
    SNAPSET_RETURN_IF_ERROR(CheckIndex(index));
    return WriteRecordIscsi(exposed_as, kHostInitiator, "snapset-conformance write probe");
  }
  Result<std::unique_ptr<RecordWriter>> OpenWriter(int index) override {
    SNAPSET_RETURN_IF_ERROR(CheckIndex(index));
    return OpenRecordIscsiWriter(volumes_[index], kHostInitiator);
  }

  Result<std::vector<std::string>> Residue() override {
    std::vector<std::string> out;
    for (int i = 0; i < int(arrays_.size()); ++i) {
      Response r = Rest(i, "GET", "/mock/state", "");
      if (r.status != 200) return Status::Unavailable(Failed(i, "GET /mock/state", r));
      rapidjson::Document s;
      s.Parse(r.body.c_str());
      if (s.HasParseError() || !s.IsObject())
        return Status::Unavailable("array " + arrays_[i].label + ": /mock/state is not JSON");
      const std::string at = "array " + arrays_[i].label + ": ";
      auto list = [&](const char* key) -> const rapidjson::Value* {
        auto it = s.FindMember(key);
        return it != s.MemberEnd() && it->value.IsArray() ? &it->value : nullptr;
      };
      if (const auto* v = list("Volumes")) {
        for (const auto& vol : v->GetArray()) {
          if (!vol.HasMember("SourceId") || vol["SourceId"].IsNull()) continue;
          out.push_back(at + "snapshot " + Str(vol, "Name") + " (volume " + Str(vol, "Id") +
                        ", of volume " + Str(vol, "SourceId") + ")");
        }
      }
      if (const auto* g = list("ConsistencyGroups")) {
        for (const auto& grp : g->GetArray())
          out.push_back(at + "consistency group " + Str(grp, "Name") + " (" + Str(grp, "Id") + ")");
      }
      if (const auto* f = list("Fences")) {
        for (const auto& fence : f->GetArray())
          out.push_back(at + "fence " + Str(fence, "Name") + " (" + Str(fence, "Id") + ")");
      }
      if (const auto* e = list("Exposures")) {
        for (const auto& x : e->GetArray()) {
          if (Str(x, "@odata.id") == arrays_[i].host_connection) continue;
          out.push_back(at + "connection " + Str(x, "Name") + " to " + Str(x, "InitiatorIqn") +
                        " (" + Str(x, "Id") + ")");
        }
      }
    }
    return out;
  }
  bool residue_visible() const override { return true; }

  std::vector<std::string> fault_operations() const override {
    // The operations the provider sends in each phase, on the arrays
    // (providers/iscsi/iscsi_provider.cc, array_set_part.cc, and the
    // dialect's driver): end_prepare logs in (each set has sessions of its
    // own), lists the groups and makes the set's temporary one; the window (hold_writes, commit)
    // fences (twophase), snapshots the group and polls its job; post_commit removes the group;
    // delete_snapshot looks for the replica in the inventory and removes
    // it.
    if (dialect_ == "twophase") {
      return {"prepare:Session.Create",
              "prepare:ConsistencyGroup.List",
              "prepare:ConsistencyGroup.Create",
              "commit:Fence.Create",
              "commit:ConsistencyGroup.Snapshot",
              "commit:Job.Get",
              "commit:ConsistencyGroup.CopyMember",
              "commit:Fence.Delete",
              "post-commit:ConsistencyGroup.Delete",
              "delete:Snapshot.List",
              "delete:Snapshot.Delete"};
    }
    return {"prepare:Session.Create",
            "prepare:ConsistencyGroup.List",
            "prepare:ConsistencyGroup.Create",
            "commit:ConsistencyGroup.CreateReplicaTarget",
            "commit:ConsistencyGroup.CopyMember",
            "post-commit:ConsistencyGroup.Delete",
            "delete:Volume.List",
            "delete:Volume.RemoveReplicaRelationship"};
  }

  Status InjectFault(const std::string& operation, const std::string& kind, int delay_ms) override {
    const size_t colon = operation.find(':');
    const std::string op = colon == std::string::npos ? operation : operation.substr(colon + 1);
    std::string mode;
    if (kind == "error") {
      mode = "\"Mode\":\"Error\",\"Status\":500";
    } else if (kind == "delay") {
      mode = "\"Mode\":\"Delay\",\"DelayMs\":" + std::to_string(delay_ms > 0 ? delay_ms : 1);
    } else if (kind == "hang") {
      mode = "\"Mode\":\"Hang\"";
    } else if (kind == "garbage") {
      mode = "\"Mode\":\"MalformedJson\"";
    } else if (kind == "drop") {
      mode = "\"Mode\":\"DropConnection\"";
    } else {
      return Status::InvalidArgument("fault kind \"" + kind +
                                     "\" is unknown: error, delay, hang, garbage or drop");
    }
    const std::string body = "{\"Operation\":" + Quote(op) + "," + mode + ",\"Count\":1}";
    for (int i = 0; i < int(arrays_.size()); ++i) {
      Response r = Rest(i, "POST", "/mock/faults", body);
      // A mode the operation does not take (ConsistencyGroup.CopyMember
      // fails, stalls or hangs only): not a fault this array can inject.
      if (r.status == 400 && r.body.find("PropertyValueConflict") != std::string::npos)
        return Status::NotImplemented(Failed(i, "arming " + body, r));
      if (r.status != 201) return Status::InvalidArgument(Failed(i, "arming " + body, r));
    }
    return Status::Ok();
  }

  Status ClearFaults() override {
    for (int i = 0; i < int(arrays_.size()); ++i) {
      Response r = Rest(i, "DELETE", "/mock/faults", "");
      if (r.status != 204) return Status::Unavailable(Failed(i, "DELETE /mock/faults", r));
    }
    return Status::Ok();
  }

  std::vector<std::string> secrets() const override {
    if (password_.empty()) return {};
    return {password_};
  }

  void Stop() override {
    if (owner_ != getpid()) return;  // a case's fork: the arrays are the parent's
    for (Array& a : arrays_) StopArray(a);
  }

 private:
  Status CheckIndex(int index) const {
    if (index < 0 || index >= int(volumes_.size()))
      return Status::InvalidArgument("no volume " + std::to_string(index));
    return Status::Ok();
  }

  std::string Failed(int i, const std::string& what, const Response& r) const {
    return "array " + arrays_[i].label + ": " + what + ": " +
           (r.status == 0 ? r.error : std::to_string(r.status) + " " + r.body);
  }

  Status StartArray(int i, const std::string& binary) {
    Array& a = arrays_[i];
    const std::string dir = options_.work_dir + "/array-" + a.label;
    ::mkdir(dir.c_str(), 0700);
    const std::string users = options_.work_dir + "/users-" + a.label + ".json";
    SNAPSET_RETURN_IF_ERROR(WriteSecretFile(users, "{\"Users\":[{\"UserName\":" + Quote(kAdmin) +
                                                       ",\"Password\":" + Quote(password_) +
                                                       ",\"RoleId\":\"Administrator\"}]}"));
    std::vector<std::string> args = {
        binary,   "--listen", "127.0.0.1:0", "--iscsi-portal", "127.0.0.1:0", "--state-dir", dir,
        "--name", a.label,    "--dialect",   dialect_,         "--users",     users};
    std::vector<char*> argv;
    for (std::string& s : args) argv.push_back(s.data());
    argv.push_back(nullptr);
    const std::string log = options_.work_dir + "/array-" + a.label + ".log";
    int out[2];
    if (pipe2(out, O_CLOEXEC) != 0)
      return Status::Internal("pipe: " + std::string(strerror(errno)));
    const pid_t parent = getpid();
    a.pid = fork();
    if (a.pid < 0) return Status::Internal("fork: " + std::string(strerror(errno)));
    if (a.pid == 0) {
      // Gone with the suite, should it die without stopping us.
      prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (getppid() != parent) _exit(127);
      dup2(out[1], STDOUT_FILENO);
      const int err = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
      if (err >= 0) dup2(err, STDERR_FILENO);
      execv(argv[0], argv.data());
      _exit(127);
    }
    ::close(out[1]);
    std::string line;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (line.find('\n') == std::string::npos && std::chrono::steady_clock::now() < deadline) {
      pollfd pfd{out[0], POLLIN, 0};
      if (poll(&pfd, 1, 100) <= 0) continue;
      char buffer[1024];
      const ssize_t n = ::read(out[0], buffer, sizeof(buffer));
      if (n <= 0) break;
      line.append(buffer, size_t(n));
    }
    ::close(out[0]);
    rapidjson::Document doc;
    doc.Parse(line.c_str());
    if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("ready")) {
      StopArray(a);
      std::ifstream in(log);
      std::stringstream said;
      said << in.rdbuf();
      return Status::Unavailable("snapset-mock-array (array " + a.label +
                                 ") did not get ready; it printed: " + line +
                                 (said.str().empty() ? "" : "; its log: " + said.str()));
    }
    a.rest = Str(doc, "rest");
    a.portal = Str(doc, "iscsi_portal");
    a.children = ChildrenOf(a.pid);
    return Status::Ok();
  }

  void StopArray(Array& a) {
    if (a.pid <= 0) return;
    std::vector<pid_t> children = ChildrenOf(a.pid);
    for (pid_t c : a.children) {
      if (std::find(children.begin(), children.end(), c) == children.end()) children.push_back(c);
    }
    kill(a.pid, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    for (;;) {
      const pid_t r = waitpid(a.pid, nullptr, WNOHANG);
      if (r == a.pid || (r < 0 && errno != EINTR)) break;
      if (std::chrono::steady_clock::now() >= deadline) {
        kill(a.pid, SIGKILL);
        waitpid(a.pid, nullptr, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    a.pid = -1;
    // Its tgtd ends with it; one that outlived it (a SIGKILL'd array) is
    // ended here, by pid, once it is seen to be a tgtd still.
    for (pid_t c : children) {
      const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(3);
      while (kill(c, 0) == 0 && CommOf(c) == "tgtd" && std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      if (kill(c, 0) == 0 && CommOf(c) == "tgtd") kill(c, SIGKILL);
    }
  }

  Status Login(int i) {
    Array& a = arrays_[i];
    Response r =
        Http("POST", a.rest + "/redfish/v1/SessionService/Sessions",
             "{\"UserName\":" + Quote(kAdmin) + ",\"Password\":" + Quote(password_) + "}", {});
    auto token = r.headers.find("x-auth-token");
    if (r.status != 201 || token == r.headers.end())
      return Status::Unavailable(Failed(i, "logging in", r));
    a.token = token->second;
    return Status::Ok();
  }

  // REST on array i as the fixture's administrator; the twophase API takes
  // the same token in its own header. Logs in again once on a 401.
  Response Rest(int i, const std::string& method, const std::string& path,
                const std::string& body) {
    const bool twophase = path.rfind("/api/v2/", 0) == 0;
    auto send = [&] {
      const std::string header =
          std::string(twophase ? "X-TP-Session: " : "X-Auth-Token: ") + arrays_[i].token;
      return Http(method, arrays_[i].rest + path, body, {header});
    };
    Response r = send();
    if (r.status != 401 || !Login(i).ok()) return r;
    return send();
  }

  Status CreateLun(int i, int n) {
    const std::string name = arrays_[i].label + "-lun" + std::to_string(n + 1);
    const bool twophase = dialect_ == "twophase";
    Response r = twophase ? Rest(i, "POST", "/api/v2/luns",
                                 "{\"label\":" + Quote(name) +
                                     ",\"size_bytes\":" + std::to_string(kLunBytes) + "}")
                          : Rest(i, "POST", kVolumes,
                                 "{\"Name\":" + Quote(name) +
                                     ",\"CapacityBytes\":" + std::to_string(kLunBytes) + "}");
    if (r.status != 201) return Status::Unavailable(Failed(i, "creating LUN " + name, r));
    rapidjson::Document v;
    v.Parse(r.body.c_str());
    Lun lun;
    lun.array = i;
    lun.id = Str(v, twophase ? "id" : "@odata.id");
    if (lun.id.empty()) return Status::Unavailable(Failed(i, "creating LUN " + name, r));
    luns_.push_back(lun);
    return Status::Ok();
  }

  // One connection per array maps its LUNs to the host, as an
  // administrator would before snapset runs.
  Status MapLuns(int i) {
    std::vector<Lun*> mine;
    for (Lun& l : luns_) {
      if (l.array == i) mine.push_back(&l);
    }
    if (mine.empty()) return Status::Ok();
    std::string objects;
    if (dialect_ == "twophase") {
      for (const Lun* l : mine) objects += std::string(objects.empty() ? "" : ",") + Quote(l->id);
      Response r = Rest(i, "POST", "/api/v2/exports",
                        "{\"label\":\"host-luns\",\"initiator_iqn\":" + Quote(kHostInitiator) +
                            ",\"read_only\":false,\"objects\":[" + objects + "]}");
      rapidjson::Document e;
      e.Parse(r.body.c_str());
      if (r.status != 201 || e.HasParseError() || !e.IsObject() || !e.HasMember("luns") ||
          !e["luns"].IsArray() || e["luns"].Size() != mine.size())
        return Status::Unavailable(Failed(i, "mapping the LUNs to the host", r));
      // /mock/state names exposures by their Redfish path in every dialect.
      const std::string id = Str(e, "id");
      arrays_[i].host_connection =
          std::string(kConnections) + "/" + (id.rfind("exp-", 0) == 0 ? id.substr(4) : id);
      for (size_t k = 0; k < mine.size(); ++k) {
        mine[k]->url = "iscsi://" + Str(e, "portal") + "/" + Str(e, "target_iqn") + "/" +
                       std::to_string(e["luns"][rapidjson::SizeType(k)]["lun_id"].GetInt());
      }
      return Status::Ok();
    }
    for (const Lun* l : mine) {
      objects += std::string(objects.empty() ? "" : ",") +
                 "{\"Volume\":{\"@odata.id\":" + Quote(l->id) + "}}";
    }
    Response r =
        Rest(i, "POST", kConnections,
             "{\"Name\":\"host-luns\",\"VolumeInfo\":[" + objects +
                 "],\"Oem\":{\"Snapset\":{\"InitiatorIqn\":" + Quote(kHostInitiator) + "}}}");
    rapidjson::Document c;
    c.Parse(r.body.c_str());
    if (r.status != 201 || c.HasParseError() || !c.IsObject() || !c.HasMember("VolumeInfo") ||
        !c["VolumeInfo"].IsArray() || c["VolumeInfo"].Size() != mine.size() ||
        !c.HasMember("Oem") || !c["Oem"].HasMember("Snapset"))
      return Status::Unavailable(Failed(i, "mapping the LUNs to the host", r));
    arrays_[i].host_connection = Str(c, "@odata.id");
    const rapidjson::Value& oem = c["Oem"]["Snapset"];
    for (size_t k = 0; k < mine.size(); ++k) {
      mine[k]->url = "iscsi://" + Str(oem, "Portal") + "/" + Str(oem, "IscsiTarget") + "/" +
                     std::to_string(c["VolumeInfo"][rapidjson::SizeType(k)]["LUN"].GetInt());
    }
    return Status::Ok();
  }

  FixtureOptions options_;
  std::string dialect_;
  pid_t owner_ = -1;  // the process that started the arrays
  std::string password_;
  std::vector<Array> arrays_;
  std::vector<Lun> luns_;
  std::vector<std::string> volumes_;
};

}  // namespace

std::unique_ptr<Fixture> MakeMockArrayFixture(const FixtureOptions& options,
                                              const std::string& dialect) {
  return std::make_unique<MockArrayFixture>(options, dialect);
}

}  // namespace snapset::conformance
