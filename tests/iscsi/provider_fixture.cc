#include "tests/iscsi/provider_fixture.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <cctype>
#include <stdexcept>

#include "tests/mock-array/iscsi_lun.hpp"
#include "tests/mock-array/test_pki.hpp"
#include "tests/software-cow/daemon/cowd_fixture.hpp"
#include "tests/support/prerequisites.hpp"

namespace snapset::test {

constexpr char kVolumes[] = "/redfish/v1/Storage/array/Volumes";

struct ProviderFixture::CowDaemon {
  explicit CowDaemon(const std::string& dir) : daemon(dir) {}
  cowd::Daemon daemon;
};

bool ProviderFixtureAvailable(bool cow) {
  if (!MockArrayAvailable()) return false;
  return !cow || Available(cowd::MissingPrerequisite(/*loop_devices=*/false));
}

ProviderFixture::ProviderFixture(ProviderFixtureOptions options) : options_(std::move(options)) {
  config_ = dir_.str() + "/config";
  state_ = dir_.str() + "/state";
  if (options_.tls) {
    pki_ = std::make_unique<Pki>();
    if (!pki_->ok) throw std::runtime_error("openssl is missing: no test CA");
    ca_file_ = pki_->ca;
  }
  arrays_.resize(2);
  tokens_.resize(2);
  host_connections_.resize(2);
  for (int i = 0; i < 2; ++i) {
    StartArray(i);
    const int count = i == 0 ? options_.luns_a : options_.luns_b;
    for (int n = 0; n < count; ++n) {
      const std::string name = std::string(i == 0 ? "a" : "b") + "-lun" + std::to_string(n + 1);
      const bool twophase = options_.dialect == "twophase";
      HttpResponse r = twophase ? Rest(i, "POST", "/api/v2/luns",
                                       R"({"label":")" + name + R"(","size_bytes":)" +
                                           std::to_string(options_.lun_bytes) + "}")
                                : Rest(i, "POST", kVolumes,
                                       R"({"Name":")" + name + R"(","CapacityBytes":)" +
                                           std::to_string(options_.lun_bytes) + "}");
      if (r.status != 201) throw std::runtime_error("creating " + name + ": " + r.body);
      rapidjson::Document v = r.Json();
      ArrayLun lun;
      lun.array = i;
      lun.path = twophase ? v["id"].GetString() : v["@odata.id"].GetString();
      lun.naa = twophase ? std::string(v["wwn"].GetString()).substr(4)
                         : v["Identifiers"][0]["DurableName"].GetString();
      std::transform(lun.naa.begin(), lun.naa.end(), lun.naa.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      luns_.push_back(lun);
    }
    MapLuns(i);
  }
  if (options_.cow) {
    cow_ = std::make_unique<CowDaemon>(dir_.str() + "/cowd");
    if (Status s = cow_->daemon.Start(); !s.ok()) throw std::runtime_error(s.ToString());
  }
  WriteRegistration();
  if (options_.cow) {
    CommandResult made = Cli({"cow", "create", "db", "--size", "16M"});
    if (made.exit_code != 0) throw std::runtime_error("snapset cow create: " + made.output);
  }
}

ProviderFixture::~ProviderFixture() {
  for (auto& a : arrays_) {
    if (a) a->Stop();
  }
}

void ProviderFixture::StartArray(int i) {
  std::vector<std::string> extra = i == 0 ? options_.extra_a : options_.extra_b;
  extra.insert(extra.end(), {"--name", i == 0 ? "a" : "b", "--dialect", options_.dialect});
  if (options_.user != "admin" || options_.password != "admin") {
    const std::string users = "users-" + std::to_string(i) + ".json";
    dir_.Write(users, R"({"Users":[{"UserName":")" + options_.user + R"(","Password":")" +
                          options_.password + R"(","RoleId":"Administrator"}]})");
    chmod((dir_.str() + "/" + users).c_str(), 0600);
    extra.insert(extra.end(), {"--users", dir_.str() + "/" + users});
  }
  if (options_.tls) {
    extra.insert(extra.end(), {"--tls-cert", pki_->cert, "--tls-key", pki_->key});
  }
  arrays_[i] =
      std::make_unique<MockArrayProcess>(dir_.str() + (i == 0 ? "/array-a" : "/array-b"), extra);
  tokens_[i] = Login(i);
}

std::string ProviderFixture::Login(int i) {
  HttpOptions o;
  o.ca_file = ca_file_;
  HttpResponse r = Http(
      "POST", arrays_[i]->Url("/redfish/v1/SessionService/Sessions"),
      R"({"UserName":")" + options_.user + R"(","Password":")" + options_.password + "\"}", "", o);
  auto token = r.headers.find("x-auth-token");
  if (r.status != 201 || token == r.headers.end()) {
    throw std::runtime_error("logging in to array " + std::to_string(i) + ": " + r.body);
  }
  return token->second;
}

// One connection per array maps every LUN to this host, as an
// administrator would before snapset runs.
void ProviderFixture::MapLuns(int i) {
  ConnectionRequest request;
  request.initiator = kHostInitiator;
  request.name = "host-luns";
  request.chap_user = options_.host_chap_user;
  request.chap_password = options_.host_chap_password;
  for (const ArrayLun& lun : luns_) {
    if (lun.array == i) request.volumes.push_back(lun.path);
  }
  if (request.volumes.empty()) return;
  if (options_.dialect == "twophase") {
    std::string objects, chap;
    for (const std::string& v : request.volumes)
      objects += (objects.empty() ? "\"" : ",\"") + v + "\"";
    if (!request.chap_user.empty())
      chap = R"(,"chap":{"user":")" + request.chap_user + R"(","secret":")" +
             request.chap_password + R"("})";
    HttpResponse r = Rest(i, "POST", "/api/v2/exports",
                          R"({"label":"host-luns","initiator_iqn":")" + request.initiator +
                              R"(","read_only":false,"objects":[)" + objects + "]" + chap + "}");
    if (r.status != 201) throw std::runtime_error("mapping the LUNs: " + r.body);
    rapidjson::Document e = r.Json();
    // /mock/state names exposures by their Redfish path in every dialect.
    host_connections_[i] =
        "/redfish/v1/Fabrics/iSCSI/Connections/" + std::string(e["id"].GetString()).substr(4);
    SetTwoPhaseUrls(i, e);
    return;
  }
  HttpResponse r = Rest(i, "POST", kConnections, ConnectionBody(request));
  if (r.status != 201) throw std::runtime_error("mapping the LUNs: " + r.body);
  rapidjson::Document doc = r.Json();
  Connection c = ConnectionFromJson(doc);
  host_connections_[i] = c.path;
  size_t k = 0;
  for (ArrayLun& lun : luns_) {
    if (lun.array == i) lun.url = c.urls.at(k++);
  }
}

void ProviderFixture::SetTwoPhaseUrls(int i, const rapidjson::Value& e) {
  size_t k = 0;
  for (ArrayLun& lun : luns_) {
    if (lun.array != i) continue;
    lun.url = "iscsi://" + std::string(e["portal"].GetString()) + "/" +
              e["target_iqn"].GetString() + "/" +
              std::to_string(e["luns"][int(k++)]["lun_id"].GetInt());
  }
}

std::string ProviderFixture::driver() const {
  return twophase() ? std::string(SNAPSET_TWOPHASE_DRIVER) : "swordfish";
}

void ProviderFixture::WriteRegistration() {
  const std::string cred =
      R"({"UserName":")" + options_.user + R"(","Password":")" + options_.password + "\"}";
  dir_.Write("config/a.cred", cred);
  dir_.Write("config/b.cred", cred);
  chmod((config_ + "/a.cred").c_str(), 0600);
  chmod((config_ + "/b.cred").c_str(), 0600);
  std::string arrays;
  for (int i = 0; i < 2; ++i) {
    const std::string name = i == 0 ? "a" : "b";
    const std::string& extra = i == 0 ? options_.config_a : options_.config_b;
    arrays +=
        std::string(i ? "," : "") + R"({"name":")" + name + R"(","driver":")" +
        (i == 1 && !options_.driver_b.empty() ? options_.driver_b : driver()) +
        R"(","rest_url":")" + arrays_[i]->rest() + R"(","credentials_file":")" + config_ + "/" +
        name + R"(.cred","portals":[")" + arrays_[i]->portal() + "\"]" +
        (options_.tls ? R"(,"ca_file":")" +
                            (registered_ca_file_.empty() ? ca_file_ : registered_ca_file_) + "\""
                      : R"(,"insecure":true)") +
        (extra.empty() ? "" : "," + extra) + "}";
  }
  WriteProviderConfig(R"({"initiator_iqn":")" + std::string(kHostInitiator) + R"(","arrays":[)" +
                      arrays + "]}");
  if (options_.cow) {
    dir_.Write(
        "config/providers.d/software-cow.json",
        Registration("6d1f7c1e-7a43-4d0b-9a64-3c1f2b5e9d01", "software-cow", "software",
                     SNAPSET_COW_PROVIDER, "{\"socket\": \"" + cow_->daemon.socket() + "\"}"));
  }
}

void ProviderFixture::WriteProviderConfig(const std::string& config_json) {
  dir_.Write("config/providers.d/iscsi.json",
             Registration("3f1c2a9e-5b7d-4e21-9c0a-6d8e4f2b1a01", "iscsi", "hardware",
                          SNAPSET_ISCSI_PROVIDER, config_json));
}

void ProviderFixture::SetRegisteredCaFile(const std::string& ca_file) {
  registered_ca_file_ = ca_file;
  WriteRegistration();
}

void ProviderFixture::RestartArray(int i) {
  arrays_[i]->Stop();
  StartArray(i);
  if (twophase()) {
    // The host's export, by the id its Redfish path ends in.
    const std::string id =
        "exp-" + host_connections_[i].substr(host_connections_[i].rfind('/') + 1);
    HttpResponse r = Rest(i, "GET", "/api/v2/exports");
    if (r.status != 200) throw std::runtime_error("listing the exports: " + r.body);
    rapidjson::Document exports = r.Json();
    for (const auto& e : exports["records"].GetArray()) {
      if (std::string(e["id"].GetString()) == id) SetTwoPhaseUrls(i, e);
    }
    WriteRegistration();
    return;
  }
  Connection c = GetConnection(*arrays_[i], tokens_[i], host_connections_[i]);
  size_t k = 0;
  for (ArrayLun& lun : luns_) {
    if (lun.array == i) lun.url = c.urls.at(k++);
  }
  WriteRegistration();
}

std::vector<std::string> ProviderFixture::Urls() const {
  std::vector<std::string> out;
  for (const ArrayLun& lun : luns_) out.push_back(lun.url);
  return out;
}

HttpResponse ProviderFixture::Rest(int i, const std::string& method, const std::string& path,
                                   const std::string& body) {
  HttpOptions o;
  o.ca_file = ca_file_;
  // The twophase API takes the same token in its own header.
  const bool twophase = path.rfind("/api/v2/", 0) == 0;
  auto send = [&] {
    HttpOptions with = o;
    if (twophase) with.headers.push_back("X-TP-Session: " + tokens_[i]);
    return Http(method, arrays_[i]->Url(path), body, twophase ? "" : tokens_[i], with);
  };
  HttpResponse r = send();
  if (r.status != 401) return r;
  // The token expired (an array run with a short --token-ttl-s): once more
  // with a new one.
  tokens_[i] = Login(i);
  return send();
}

rapidjson::Document ProviderFixture::State(int i) {
  HttpResponse r = Rest(i, "GET", "/mock/state");
  BOOST_TEST_REQUIRE(r.status == 200, r.body);
  return r.Json();
}

int ProviderFixture::Snapshots(int i) {
  rapidjson::Document s = State(i);
  int n = 0;
  for (const auto& v : s["Volumes"].GetArray()) n += v["SourceId"].IsNull() ? 0 : 1;
  return n;
}

int ProviderFixture::Groups(int i) {
  return static_cast<int>(State(i)["ConsistencyGroups"].Size());
}

int ProviderFixture::ExtraConnections(int i) {
  rapidjson::Document s = State(i);
  int n = 0;
  for (const auto& e : s["Exposures"].GetArray()) {
    n += std::string(e["@odata.id"].GetString()) == host_connections_[i] ? 0 : 1;
  }
  return n;
}

int ProviderFixture::Fences(int i) {
  rapidjson::Document s = State(i);
  BOOST_TEST_REQUIRE(s.HasMember("Fences"));
  return static_cast<int>(s["Fences"].Size());
}

void ProviderFixture::ExpectNothingLeft() {
  for (int i = 0; i < 2; ++i) {
    BOOST_TEST_CONTEXT("array " << (i == 0 ? "a" : "b")) {
      BOOST_TEST(Snapshots(i) == 0);
      BOOST_TEST(Groups(i) == 0);
      BOOST_TEST(ExtraConnections(i) == 0);
      BOOST_TEST(Fences(i) == 0);
    }
  }
}

void ProviderFixture::ExpectEveryLunWritable() {
  LunLogin login;
  login.initiator = kHostInitiator;
  login.chap_user = options_.host_chap_user;
  login.chap_password = options_.host_chap_password;
  login.timeout_s = 2;  // a held write does not complete: -1
  constexpr int kBlock = 512;
  for (const ArrayLun& lun : luns_) {
    std::string error;
    std::unique_ptr<Lun> l = Lun::TryConnect(lun.url, login, &error);
    BOOST_TEST_REQUIRE(l != nullptr, lun.url << ": " << error);
    // The last block: what the tests read back is at the start.
    const uint64_t last = options_.lun_bytes / kBlock - 1;
    int status = l->Write(last, Pattern("w", kBlock), kBlock);
    // A unit attention (a new nexus after a reset) is reported once: again.
    if (status == 6) status = l->Write(last, Pattern("w", kBlock), kBlock);
    BOOST_TEST(status == 0, "a write to " << lun.url << " is held or failed: " << l->error());
  }
}

void ProviderFixture::Fault(int i, const std::string& body) {
  HttpResponse r = Rest(i, "POST", "/mock/faults", body);
  BOOST_TEST_REQUIRE(r.status == 201, "arming " << body << ": " << r.body);
}

void ProviderFixture::ClearFaults(int i) {
  HttpResponse r = Rest(i, "DELETE", "/mock/faults");
  BOOST_TEST(r.status == 204, r.body);
}

std::vector<std::string> ProviderFixture::CliArgv(const std::vector<std::string>& args) const {
  std::vector<std::string> argv = {SNAPSET_CLI, "--config-dir",    config_,       "--state-dir",
                                   state_,      "--initiator-iqn", kHostInitiator};
  argv.insert(argv.end(), args.begin(), args.end());
  auto cow = std::find(argv.begin(), argv.end(), "cow");
  if (cow != argv.end() && cow_) {
    argv.insert(cow + 1, {"--socket", cow_->daemon.socket()});
  }
  return argv;
}

CommandResult ProviderFixture::Cli(const std::vector<std::string>& args) const {
  return RunCommand(CliArgv(args), std::chrono::seconds(120));
}

std::string Field(const rapidjson::Value& v, const char* key) {
  return v.IsObject() && v.HasMember(key) && v[key].IsString() ? v[key].GetString() : "";
}

std::string WriteChapFile(const TempDir& dir, const std::string& name, const char* user,
                          const char* secret) {
  const std::string path = dir.Write(
      name, std::string(R"({"CHAPUsername":")") + user + R"(","CHAPPassword":")" + secret + "\"}");
  ::chmod(path.c_str(), 0600);
  return path;
}

rapidjson::Document JsonOfOutput(const std::string& output) {
  size_t start = output.find("\n{");
  start = output.compare(0, 1, "{") == 0 ? 0 : (start == std::string::npos ? 0 : start + 1);
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseStopWhenDoneFlag>(output.c_str() + start);
  BOOST_TEST_REQUIRE(!doc.HasParseError(), "no JSON document in: " << output);
  return doc;
}

rapidjson::Document ProviderFixture::Json(const std::vector<std::string>& args) const {
  std::vector<std::string> argv = {"--json"};
  argv.insert(argv.end(), args.begin(), args.end());
  CommandResult r = Cli(argv);
  BOOST_TEST_REQUIRE(r.exit_code == 0, "snapset " << args.front() << " failed: " << r.output);
  return JsonOfOutput(r.output);
}

rapidjson::Document ProviderFixture::Create(const std::vector<std::string>& volumes) const {
  std::vector<std::string> args = {"create"};
  args.insert(args.end(), volumes.begin(), volumes.end());
  return Json(args);
}

}  // namespace snapset::test
