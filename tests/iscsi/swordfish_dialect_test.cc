// The Swordfish dialect against real mock arrays: the inventory the provider
// matches NAAs against, the one-request group snapshot (synchronous, as a
// task, and cut off by the deadline then settled), idempotent deletes,
// exposure a real initiator logs in to, faults, expired tokens, HTTPS, and
// no secret in any error.
#define BOOST_TEST_MODULE iscsi_swordfish_dialect
#include <httplib.h>
#include <sys/stat.h>

#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <cctype>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "swordfish_driver.hpp"
#include "tests/mock-array/iscsi_lun.hpp"
#include "tests/mock-array/mock_array_process.hpp"
#include "tests/mock-array/test_pki.hpp"
#include "tests/support/command.hpp"
#include "tests/support/prerequisites.hpp"
#include "tests/support/temp_dir.hpp"

namespace snapset::test {
namespace {

using snapset::ArrayCall;
using snapset::ArrayExposure;
using snapset::ArrayGroup;
using snapset::ArrayVolume;
using snapset::ExposeRequest;
using snapset::rest::Clock;
using snapset::rest::RestEndpoint;
using snapset::swordfish::SwordfishDriver;
using std::chrono::milliseconds;

constexpr char kVolumes[] = "/redfish/v1/Storage/array/Volumes";
constexpr char kSessions[] = "/redfish/v1/SessionService/Sessions";
constexpr char kTaskService[] = "/redfish/v1/TaskService";
constexpr char kFaults[] = "/mock/faults";
constexpr char kUser[] = "storage-admin";
constexpr char kPassword[] = "Sw0rdf1sh-pa55w0rd";
constexpr char kChapUser[] = "host7";
constexpr char kChapSecret[] = "chap-s3cret-0f-h0st7";

// Every token the tests saw; no error message may contain one.
std::vector<std::string>& Tokens() {
  static std::vector<std::string> tokens;
  return tokens;
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// Every Status a test gets goes through here: it must name no secret.
const Status& NoSecret(const Status& s) {
  const std::string& m = s.message();
  BOOST_TEST(m.find(kPassword) == std::string::npos, m);
  BOOST_TEST(m.find(kChapSecret) == std::string::npos, m);
  BOOST_TEST(Lower(m).find("x-auth-token") == std::string::npos, m);
  for (const std::string& token : Tokens()) BOOST_TEST(m.find(token) == std::string::npos, m);
  return s;
}
template <typename T>
const Status& NoSecret(const Result<T>& r) {
  return NoSecret(r.status());
}

// REQUIRE ok, showing the error otherwise.
#define REQUIRE_OK(expr)                                     \
  do {                                                       \
    const auto& _r = (expr);                                 \
    BOOST_REQUIRE_MESSAGE(_r.ok(), NoSecret(_r).ToString()); \
  } while (0)

ArrayCall Within(milliseconds ms, bool retry = true) {
  ArrayCall p;
  p.deadline = Clock::now() + ms;
  p.retry = retry;
  return p;
}
ArrayCall Patient() { return Within(milliseconds(20000)); }

int64_t MsSince(Clock::time_point start) {
  return std::chrono::duration_cast<milliseconds>(Clock::now() - start).count();
}

struct CreatedVolume {
  std::string path, naa, serial;
};

// One array per test, with its own Administrator whose password the tests
// look for in every error, and a dialect logged in as that user.
struct Array {
  explicit Array(const std::vector<std::string>& extra = {}, const std::string& ca = "") {
    if (!MockArrayAvailable()) return;
    const std::string users = dir.Write("users.json", std::string(R"({"Users":[{"UserName":")") +
                                                          kUser + R"(","Password":")" + kPassword +
                                                          R"(","RoleId":"Administrator"}]})");
    chmod(users.c_str(), 0600);
    std::vector<std::string> args = {"--users", users};
    args.insert(args.end(), extra.begin(), extra.end());
    process = std::make_unique<MockArrayProcess>(dir.str() + "/state", args);
    http.ca_file = ca;
    HttpResponse login =
        Http("POST", process->Url(kSessions),
             std::string(R"({"UserName":")") + kUser + R"(","Password":")" + kPassword + R"("})",
             "", http);
    BOOST_REQUIRE_MESSAGE(login.status == 201, login.body);
    token = login.headers["x-auth-token"];
    Tokens().push_back(token);
    dialect = std::make_unique<SwordfishDriver>(Endpoint(ca));
  }
  bool ok() const { return process != nullptr; }

  RestEndpoint Endpoint(const std::string& ca) const {
    RestEndpoint e;
    e.base_url = process->rest();
    e.user = kUser;
    e.password = kPassword;
    e.ca_file = ca;
    return e;
  }
  std::string Url(const std::string& path) const { return process->Url(path); }

  // A request of the test's own; a 202 (an array running every operation as
  // a task) is polled to the operation's answer.
  HttpResponse Send(const std::string& method, const std::string& path,
                    const std::string& body = "") const {
    HttpResponse r = Http(method, Url(path), body, token, http);
    if (r.status == 202) r = PollTaskMonitor(Url(r.headers["location"]), token, http);
    return r;
  }
  CreatedVolume CreateVolume(const std::string& name, uint64_t bytes = 1 << 20,
                             int block = 512) const {
    HttpResponse r = Send("POST", kVolumes,
                          R"({"Name":")" + name + R"(","CapacityBytes":)" + std::to_string(bytes) +
                              R"(,"BlockSizeBytes":)" + std::to_string(block) + "}");
    BOOST_REQUIRE_MESSAGE(r.status == 201, r.body);
    rapidjson::Document doc = r.Json();
    return {doc["@odata.id"].GetString(), doc["Identifiers"][0]["DurableName"].GetString(),
            doc["Oem"]["Snapset"]["SerialNumber"].GetString()};
  }
  void ArmFault(const std::string& body) const {
    HttpResponse r = Http("POST", Url(kFaults), body, token, http);
    BOOST_REQUIRE_MESSAGE(r.status == 201, r.body);
  }
  void SetTaskService(const std::string& snapset) const {
    HttpResponse r =
        Http("PATCH", Url(kTaskService), R"({"Oem":{"Snapset":)" + snapset + "}}", token, http);
    BOOST_REQUIRE_MESSAGE(r.status == 200, r.body);
  }
  // A group of new volumes with these names, through the dialect.
  ArrayGroup Group(const std::string& name, const std::vector<std::string>& members) const {
    std::vector<std::string> ids;
    for (const std::string& m : members) ids.push_back(CreateVolume(m).path);
    Result<ArrayGroup> g = dialect->CreateGroup(name, ids, Patient());
    REQUIRE_OK(g);
    return *g;
  }
  std::vector<ArrayVolume> Inventory() const {
    Result<std::vector<ArrayVolume>> v = dialect->Inventory(Patient());
    REQUIRE_OK(v);
    return *v;
  }
  std::vector<ArrayVolume> Snapshots() const {
    std::vector<ArrayVolume> out;
    for (const ArrayVolume& v : Inventory()) {
      if (v.is_snapshot()) out.push_back(v);
    }
    return out;
  }

  TempDir dir;
  std::unique_ptr<MockArrayProcess> process;
  HttpOptions http;
  std::string token;
  std::unique_ptr<SwordfishDriver> dialect;
};

const ArrayVolume* Find(const std::vector<ArrayVolume>& volumes, const std::string& id) {
  for (const ArrayVolume& v : volumes) {
    if (v.id == id) return &v;
  }
  return nullptr;
}

BOOST_AUTO_TEST_CASE(the_inventory_is_what_the_array_holds_with_naa_serial_and_source) {
  Array array;
  if (!array.ok()) return;
  const CreatedVolume db = array.CreateVolume("db", 64 << 20, 4096);
  const CreatedVolume log = array.CreateVolume("log", 1 << 20, 512);
  HttpResponse snap = array.Send("POST", db.path + "/Actions/Volume.CreateReplicaTarget",
                                 R"({"ReplicaType":"Snapshot","TargetVolumeName":"db.monday"})");
  BOOST_REQUIRE_MESSAGE(snap.status == 201, snap.body);
  const std::string snap_path = snap.Json()["@odata.id"].GetString();

  const std::vector<ArrayVolume> inventory = array.Inventory();
  BOOST_REQUIRE_EQUAL(inventory.size(), 3u);
  const ArrayVolume* v = Find(inventory, db.path);
  BOOST_REQUIRE(v != nullptr);
  BOOST_TEST(v->name == "db");
  BOOST_TEST(v->naa == db.naa);
  BOOST_TEST(v->naa.size() == 32u);
  BOOST_TEST(v->serial == db.serial);
  BOOST_TEST(v->capacity_bytes == 64u << 20);
  BOOST_TEST(v->block_size == 4096u);
  BOOST_TEST(!v->is_snapshot());
  v = Find(inventory, log.path);
  BOOST_REQUIRE(v != nullptr);
  BOOST_TEST(v->naa == log.naa);
  BOOST_TEST(v->block_size == 512u);
  BOOST_TEST(v->capacity_bytes == 1u << 20);
  v = Find(inventory, snap_path);
  BOOST_REQUIRE(v != nullptr);
  BOOST_TEST(v->name == "db.monday");
  BOOST_TEST(v->is_snapshot());
  BOOST_TEST(v->source_id == db.path);
  BOOST_TEST(v->naa != db.naa);
  BOOST_TEST(!v->serial.empty());
  BOOST_TEST(v->serial != db.serial);
  BOOST_TEST(v->capacity_bytes == 64u << 20);

  // Groups: created, listed in the array's member order, deleted (twice).
  Result<std::vector<ArrayGroup>> none = array.dialect->Groups(Patient());
  REQUIRE_OK(none);
  BOOST_TEST(none->empty());
  Result<ArrayGroup> g = array.dialect->CreateGroup("set", {log.path, db.path}, Patient());
  REQUIRE_OK(g);
  BOOST_TEST(g->name == "set");
  BOOST_TEST((g->member_ids == std::vector<std::string>{log.path, db.path}));
  Result<std::vector<ArrayGroup>> groups = array.dialect->Groups(Patient());
  REQUIRE_OK(groups);
  BOOST_REQUIRE_EQUAL(groups->size(), 1u);
  BOOST_TEST((*groups)[0].id == g->id);
  BOOST_TEST(((*groups)[0].member_ids == g->member_ids));
  // A name taken is the array's 409, named.
  Result<ArrayGroup> again = array.dialect->CreateGroup("set", {db.path}, Patient());
  BOOST_REQUIRE(!again.ok());
  NoSecret(again);
  BOOST_TEST((again.status().code() == Code::kAlreadyExists), again.status().ToString());
  REQUIRE_OK(array.dialect->DeleteGroup(g->id, Patient()));
  REQUIRE_OK(array.dialect->DeleteGroup(g->id, Patient()));  // already gone: OK
  groups = array.dialect->Groups(Patient());
  REQUIRE_OK(groups);
  BOOST_TEST(groups->empty());
  // A handle that never came from the dialect is refused before any request.
  const int sent = int(array.dialect->counters().requests);
  const Status bad = array.dialect->DeleteSnapshot("volumes 3", Patient());
  BOOST_TEST((bad.code() == Code::kInvalidArgument), bad.ToString());
  BOOST_TEST(int(array.dialect->counters().requests) == sent);
}

BOOST_AUTO_TEST_CASE(a_group_snapshot_is_one_request_and_comes_back_in_member_order) {
  Array array;
  if (!array.ok()) return;
  const ArrayGroup group = array.Group("set", {"c", "a", "b"});
  REQUIRE_OK(array.dialect->Warm(Patient()));
  const std::vector<ArrayVolume> sources = array.Inventory();

  const int before = int(array.dialect->counters().requests);
  Result<std::vector<ArrayVolume>> snaps = array.dialect->SnapshotGroup(
      {group, {"s-c", "s-a", "s-b"}, ""}, Within(milliseconds(10000), false));
  REQUIRE_OK(snaps);
  BOOST_TEST(int(array.dialect->counters().requests) - before == 1);
  BOOST_REQUIRE_EQUAL(snaps->size(), 3u);
  std::set<std::string> naas;
  for (size_t i = 0; i < snaps->size(); ++i) {
    const ArrayVolume& s = (*snaps)[i];
    BOOST_TEST(s.source_id == group.member_ids[i]);
    BOOST_TEST(s.name == std::vector<std::string>({"s-c", "s-a", "s-b"})[i]);
    const ArrayVolume* source = Find(sources, group.member_ids[i]);
    BOOST_REQUIRE(source != nullptr);
    BOOST_TEST(s.naa.size() == 32u);
    BOOST_TEST(s.naa != source->naa);
    BOOST_TEST(s.capacity_bytes == source->capacity_bytes);
    naas.insert(s.naa);
  }
  BOOST_TEST(naas.size() == 3u);
  BOOST_TEST(array.Snapshots().size() == 3u);

  // Deletes are idempotent: a snapshot already gone is OK.
  for (const ArrayVolume& s : *snaps) REQUIRE_OK(array.dialect->DeleteSnapshot(s.id, Patient()));
  for (const ArrayVolume& s : *snaps) REQUIRE_OK(array.dialect->DeleteSnapshot(s.id, Patient()));
  BOOST_TEST(array.Snapshots().empty());
  BOOST_TEST(array.dialect->pending_tasks() == 0u);
}

BOOST_AUTO_TEST_CASE(with_async_operations_every_change_is_polled_to_its_answer) {
  Array array({"--async-operations"});
  if (!array.ok()) return;
  array.SetTaskService(R"({"TaskDelayMs":300})");
  const ArrayGroup group = array.Group("set", {"a", "b"});  // CreateGroup: a task
  BOOST_TEST(group.member_ids.size() == 2u);

  const int before = int(array.dialect->counters().requests);
  const auto start = Clock::now();
  Result<std::vector<ArrayVolume>> snaps =
      array.dialect->SnapshotGroup({group, {}, ""}, Within(milliseconds(10000), false));
  REQUIRE_OK(snaps);
  BOOST_TEST_MESSAGE("async group snapshot: " << MsSince(start) << " ms, "
                                              << int(array.dialect->counters().requests) - before
                                              << " requests");
  BOOST_TEST(MsSince(start) >= 300);
  BOOST_TEST(int(array.dialect->counters().requests) - before >= 2);  // the POST and its polls
  BOOST_REQUIRE_EQUAL(snaps->size(), 2u);
  BOOST_TEST((*snaps)[0].source_id == group.member_ids[0]);
  BOOST_TEST((*snaps)[1].source_id == group.member_ids[1]);
  BOOST_TEST(array.Snapshots().size() == 2u);

  // With the deadline nearer than Retry-After (1 s) the monitor is polled
  // every 100 ms: a 300 ms task is seen done well before a second.
  const auto fast = Clock::now();
  REQUIRE_OK(array.dialect->DeleteSnapshot((*snaps)[0].id, Within(milliseconds(900))));
  BOOST_TEST(MsSince(fast) < 900);
  // Already gone: the task's answer is a 404, which is OK.
  REQUIRE_OK(array.dialect->DeleteSnapshot((*snaps)[0].id, Patient()));
  REQUIRE_OK(array.dialect->DeleteSnapshot((*snaps)[1].id, Patient()));
  REQUIRE_OK(array.dialect->DeleteGroup(group.id, Patient()));
  REQUIRE_OK(array.dialect->DeleteGroup(group.id, Patient()));
  BOOST_TEST(array.Snapshots().empty());
  BOOST_TEST(array.dialect->pending_tasks() == 0u);
}

BOOST_AUTO_TEST_CASE(a_task_running_at_the_deadline_is_unavailable_and_settle_finishes_it) {
  Array array;
  if (!array.ok()) return;
  const ArrayGroup group = array.Group("set", {"a", "b"});
  REQUIRE_OK(array.dialect->Warm(Patient()));
  array.SetTaskService(R"({"AsyncOperations":true,"TaskDelayMs":1500})");

  const auto start = Clock::now();
  Result<std::vector<ArrayVolume>> snaps =
      array.dialect->SnapshotGroup({group, {}, ""}, Within(milliseconds(400), false));
  const int64_t elapsed = MsSince(start);
  BOOST_REQUIRE(!snaps.ok());
  NoSecret(snaps);
  BOOST_TEST((snaps.status().code() == Code::kUnavailable), snaps.status().ToString());
  BOOST_TEST(
      snaps.status().message().find("ConsistencyGroup.CreateReplicaTarget") != std::string::npos,
      snaps.status().message());
  BOOST_TEST(elapsed < 400 + 250, elapsed << " ms for a 400 ms deadline");
  BOOST_TEST(array.dialect->pending_tasks() == 1u);

  // Settle with too short a deadline: still running, still remembered.
  Status early = array.dialect->Settle(Within(milliseconds(150)));
  NoSecret(early);
  BOOST_TEST((early.code() == Code::kUnavailable), early.ToString());
  BOOST_TEST(array.dialect->pending_tasks() == 1u);

  REQUIRE_OK(array.dialect->Settle(Within(milliseconds(10000))));
  BOOST_TEST(array.dialect->pending_tasks() == 0u);
  // What abort does next: find the late snapshots by their sources, delete them.
  array.SetTaskService(R"({"AsyncOperations":false,"TaskDelayMs":0})");
  const std::vector<ArrayVolume> late = array.Snapshots();
  BOOST_REQUIRE_EQUAL(late.size(), 2u);
  for (const ArrayVolume& s : late) {
    BOOST_TEST((s.source_id == group.member_ids[0] || s.source_id == group.member_ids[1]));
    REQUIRE_OK(array.dialect->DeleteSnapshot(s.id, Patient()));
  }
  BOOST_TEST(array.Snapshots().empty());
  REQUIRE_OK(array.dialect->Settle(Within(milliseconds(100))));  // nothing left: at once
}

BOOST_AUTO_TEST_CASE(an_exposed_lun_is_readable_by_the_initiator_read_only_and_chap_hold) {
  Array array;
  if (!array.ok()) return;
  const ArrayGroup group = array.Group("set", {"data"});
  const std::string volume = group.member_ids[0];
  const std::string host_a = "iqn.2026-11.io.snapset.test:host-a";
  const std::string host_b = "iqn.2026-11.io.snapset.test:host-b";
  const std::string host_c = "iqn.2026-11.io.snapset.test:host-c";

  // Read-write: write a pattern through the wire.
  ExposeRequest rw;
  rw.volume_ids = {volume};
  rw.initiator_iqn = host_a;
  rw.read_only = false;
  rw.name = "writer";
  Result<ArrayExposure> writer = array.dialect->Expose(rw, Patient());
  REQUIRE_OK(writer);
  BOOST_REQUIRE_EQUAL(writer->luns.size(), 1u);
  BOOST_TEST(writer->portal == array.process->portal());
  BOOST_TEST(writer->Url(0) == "iscsi://" + writer->portal + "/" + writer->target_iqn + "/" +
                                   std::to_string(writer->luns[0]));
  BOOST_TEST(writer->Url(1).empty());
  {
    LunLogin login;
    login.initiator = host_a;
    Lun lun(writer->Url(0), login);
    BOOST_REQUIRE_EQUAL(lun.Write(0, Pattern("snapset-dialect", 4096), 512), 0);
  }
  Result<std::vector<ArrayVolume>> snaps = array.dialect->SnapshotGroup({group, {}, ""}, Patient());
  REQUIRE_OK(snaps);

  // The snapshot, read-only, to host B: the pattern is there; writes fail.
  ExposeRequest ro;
  ro.volume_ids = {(*snaps)[0].id};
  ro.initiator_iqn = host_b;
  Result<ArrayExposure> reader = array.dialect->Expose(ro, Patient());
  REQUIRE_OK(reader);
  // The volume itself, mapped read-only to host B as a second LUN.
  ExposeRequest ro_volume;
  ro_volume.volume_ids = {volume};
  ro_volume.initiator_iqn = host_b;
  ro_volume.read_only = true;
  Result<ArrayExposure> ro_volume_exposure = array.dialect->Expose(ro_volume, Patient());
  REQUIRE_OK(ro_volume_exposure);
  {
    LunLogin login;
    login.initiator = host_b;
    Lun snap(reader->Url(0), login);
    BOOST_TEST(Text(snap.Read(0, 4096, 512), 15) == "snapset-dialect");
    BOOST_TEST(snap.Write(0, Pattern("overwrite", 512), 512) != 0);
    Lun vol(ro_volume_exposure->Url(0), login);
    BOOST_TEST(Text(vol.Read(0, 4096, 512), 15) == "snapset-dialect");
    BOOST_TEST(vol.Write(0, Pattern("overwrite", 512), 512) != 0);
  }

  // CHAP: without the secret, or with another, no log-in.
  ExposeRequest chap;
  chap.volume_ids = {(*snaps)[0].id};
  chap.initiator_iqn = host_c;
  chap.chap_user = kChapUser;
  chap.chap_password = kChapSecret;
  Result<ArrayExposure> guarded = array.dialect->Expose(chap, Patient());
  REQUIRE_OK(guarded);
  {
    LunLogin login;
    login.initiator = host_c;
    std::string error;
    BOOST_TEST(Lun::TryConnect(guarded->Url(0), login, &error) == nullptr);
    login.chap_user = kChapUser;
    login.chap_password = "not-the-secret-at-all";
    BOOST_TEST(Lun::TryConnect(guarded->Url(0), login, &error) == nullptr);
    login.chap_password = kChapSecret;
    std::unique_ptr<Lun> lun = Lun::TryConnect(guarded->Url(0), login, &error);
    BOOST_REQUIRE_MESSAGE(lun != nullptr, error);
    BOOST_TEST(Text(lun->Read(0, 512, 512), 15) == "snapset-dialect");
  }
  // A CHAP user name taken with another secret is the array's 409, without
  // either secret in the message.
  chap.chap_password = std::string(kChapSecret) + "-2";
  Result<ArrayExposure> conflict = array.dialect->Expose(chap, Patient());
  BOOST_REQUIRE(!conflict.ok());
  NoSecret(conflict);
  BOOST_TEST(conflict.status().message().find(chap.chap_password) == std::string::npos);

  // Exposures() lists each one with its name, volumes and LUNs.
  ExposeRequest named;
  named.volume_ids = {(*snaps)[0].id};
  named.initiator_iqn = host_b;
  named.name = "snapset-named";
  Result<ArrayExposure> by_name = array.dialect->Expose(named, Patient());
  REQUIRE_OK(by_name);
  Result<std::vector<ArrayExposure>> listed = array.dialect->Exposures(Patient());
  REQUIRE_OK(listed);
  BOOST_TEST(listed->size() == 5u);
  auto found = std::find_if(listed->begin(), listed->end(),
                            [&](const ArrayExposure& e) { return e.name == "snapset-named"; });
  BOOST_REQUIRE(found != listed->end());
  BOOST_TEST(found->id == by_name->id);
  BOOST_TEST(found->Url(0) == by_name->Url(0));
  BOOST_TEST(found->volume_ids == std::vector<std::string>{(*snaps)[0].id});

  // Unexpose twice: the second finds it gone, OK.
  for (const ArrayExposure& e : {*writer, *reader, *ro_volume_exposure, *guarded, *by_name}) {
    REQUIRE_OK(array.dialect->Unexpose(e.id, Patient()));
    REQUIRE_OK(array.dialect->Unexpose(e.id, Patient()));
  }
  REQUIRE_OK(array.dialect->DeleteSnapshot((*snaps)[0].id, Patient()));
}

BOOST_AUTO_TEST_CASE(read_faults_are_retried_only_when_allowed_and_bad_bodies_name_the_url) {
  Array array;
  if (!array.ok()) return;
  const CreatedVolume a = array.CreateVolume("a");
  REQUIRE_OK(array.dialect->Warm(Patient()));

  // 503 + Retry-After: retried when the policy allows it.
  array.ArmFault(R"({"Operation":"Volume.List","Mode":"Error","Status":503,"RetryAfterS":1})");
  int before = int(array.dialect->counters().requests);
  Result<std::vector<ArrayVolume>> v = array.dialect->Inventory(Patient());
  REQUIRE_OK(v);
  BOOST_TEST(v->size() == 1u);
  BOOST_TEST(int(array.dialect->counters().requests) - before == 3);  // 503, list, one volume

  // ... and not when it does not: exactly one request.
  array.ArmFault(R"({"Operation":"Volume.List","Mode":"Error","Status":503,"RetryAfterS":1})");
  before = int(array.dialect->counters().requests);
  v = array.dialect->Inventory(Within(milliseconds(5000), false));
  BOOST_REQUIRE(!v.ok());
  NoSecret(v);
  BOOST_TEST((v.status().code() == Code::kUnavailable), v.status().ToString());
  BOOST_TEST(v.status().message().find(array.Url(kVolumes)) != std::string::npos,
             v.status().message());
  BOOST_TEST(int(array.dialect->counters().requests) - before == 1);

  // A body cut off mid-object: an error naming the volume's URL.
  array.ArmFault(R"({"Operation":"Volume.Get","Mode":"MalformedJson"})");
  v = array.dialect->Inventory(Patient());
  BOOST_REQUIRE(!v.ok());
  NoSecret(v);
  BOOST_TEST(v.status().message().find("GET " + array.Url(a.path)) != std::string::npos,
             v.status().message());
  BOOST_TEST(v.status().message().find("not JSON") != std::string::npos, v.status().message());
  // The fault is spent: the next inventory is whole.
  BOOST_TEST(array.Inventory().size() == 1u);
}

BOOST_AUTO_TEST_CASE(a_failed_group_snapshot_is_an_error_and_its_leftovers_are_in_the_inventory) {
  Array array;
  if (!array.ok()) return;
  const ArrayGroup group = array.Group("set", {"a", "b"});
  REQUIRE_OK(array.dialect->Warm(Patient()));

  // The reply is lost after the array made the snapshots: an error, and the
  // snapshots exist. Abort must therefore look at the inventory for
  // snapshots of the group's members, not trust the failed call.
  array.ArmFault(R"({"Operation":"ConsistencyGroup.CreateReplicaTarget","Mode":"DropConnection"})");
  const int before = int(array.dialect->counters().requests);
  Result<std::vector<ArrayVolume>> snaps =
      array.dialect->SnapshotGroup({group, {}, ""}, Within(milliseconds(5000), false));
  BOOST_REQUIRE(!snaps.ok());
  NoSecret(snaps);
  BOOST_TEST((snaps.status().code() == Code::kUnavailable), snaps.status().ToString());
  BOOST_TEST(snaps.status().message().find(group.id) != std::string::npos,
             snaps.status().message());
  BOOST_TEST(int(array.dialect->counters().requests) - before == 1);  // a POST is never resent
  std::vector<ArrayVolume> left = array.Snapshots();
  BOOST_TEST(left.size() == 2u);
  for (const ArrayVolume& s : left) REQUIRE_OK(array.dialect->DeleteSnapshot(s.id, Patient()));

  // An array that breaks all-or-none: a 500 naming what it left behind.
  array.ArmFault(R"({"Operation":"ConsistencyGroup.CreateReplicaTarget","Mode":"Partial"})");
  snaps = array.dialect->SnapshotGroup({group, {}, ""}, Within(milliseconds(5000), false));
  BOOST_REQUIRE(!snaps.ok());
  NoSecret(snaps);
  BOOST_TEST(snaps.status().message().find("500") != std::string::npos, snaps.status().message());
  BOOST_TEST(snaps.status().message().find("left on the array") != std::string::npos,
             snaps.status().message());
  left = array.Snapshots();
  BOOST_REQUIRE_EQUAL(left.size(), 1u);
  BOOST_TEST(left[0].source_id == group.member_ids[0]);
  REQUIRE_OK(array.dialect->DeleteSnapshot(left[0].id, Patient()));
}

BOOST_AUTO_TEST_CASE(an_expired_token_is_transparent) {
  Array array({"--token-ttl-s", "1"});
  if (!array.ok()) return;
  const ArrayGroup group = array.Group("set", {"a"});
  REQUIRE_OK(array.dialect->Warm(Patient()));
  std::this_thread::sleep_for(milliseconds(1500));
  Result<std::vector<ArrayVolume>> snaps =
      array.dialect->SnapshotGroup({group, {}, ""}, Within(milliseconds(5000), false));
  REQUIRE_OK(snaps);
  BOOST_TEST(snaps->size() == 1u);
  std::this_thread::sleep_for(milliseconds(1500));
  BOOST_TEST(array.Snapshots().size() == 1u);
}

BOOST_AUTO_TEST_CASE(https_works_with_the_arrays_ca_and_fails_on_another_naming_tls) {
  if (!MockArrayAvailable()) return;
  Pki pki;
  Pki other;
  if (!pki.ok || !other.ok) return;
  Array array({"--tls-cert", pki.cert, "--tls-key", pki.key}, pki.ca);
  BOOST_REQUIRE(array.process->rest().rfind("https://", 0) == 0u);
  const ArrayGroup group = array.Group("set", {"a", "b"});
  Result<std::vector<ArrayVolume>> snaps =
      array.dialect->SnapshotGroup({group, {}, ""}, Within(milliseconds(5000), false));
  REQUIRE_OK(snaps);
  BOOST_TEST(array.Snapshots().size() == 2u);

  SwordfishDriver untrusting(array.Endpoint(other.ca));
  const Status refused = untrusting.Warm(Within(milliseconds(5000)));
  BOOST_REQUIRE(!refused.ok());
  NoSecret(refused);
  BOOST_TEST_MESSAGE("wrong CA: " << refused.ToString());
  const std::string m = Lower(refused.message());
  BOOST_TEST((m.find("certificate") != std::string::npos || m.find("tls") != std::string::npos ||
              m.find("ssl") != std::string::npos),
             refused.message());
  BOOST_TEST(refused.message().find(array.process->rest()) != std::string::npos, refused.message());
}

// An array that answers what a test scripts, to give the dialect bodies no
// well-behaved array sends. Unscripted routes answer 404.
class ScriptedArray {
 public:
  ScriptedArray() {
    server_.Post(kSessions, [](const httplib::Request&, httplib::Response& res) {
      res.status = 201;
      res.set_header("X-Auth-Token", "scripted-token-0123456789abcdef");
      res.set_header("Location", std::string(kSessions) + "/1");
      res.set_content(R"({"Id":"1"})", "application/json");
    });
    auto handler = [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard<std::mutex> lock(mu_);
      seen_.push_back(req.method + " " + req.path);
      auto found = routes_.find(req.method + " " + req.path);
      if (found == routes_.end()) {
        res.status = 404;
        res.set_content(R"({"error":{"code":"Base.1.8.ResourceNotFound","message":"no"}})",
                        "application/json");
        return;
      }
      res.status = found->second.first;
      for (const auto& [name, value] : headers_[req.method + " " + req.path]) {
        res.set_header(name, value);
      }
      res.set_content(found->second.second, "application/json");
    };
    server_.Get(".*", handler);
    server_.Post(".*", handler);
    server_.Delete(".*", handler);
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(milliseconds(1));
    // A well-formed storage and fabric; cases replace what they break.
    Script("GET", kStorage, 200, R"({"Members":[{"@odata.id":"/redfish/v1/Storage/array"}]})");
    Script("GET", kFabrics, 200, R"({"Members":[{"@odata.id":"/redfish/v1/Fabrics/iSCSI"}]})");
    Script("GET", "/redfish/v1/Fabrics/iSCSI", 200,
           R"({"@odata.id":"/redfish/v1/Fabrics/iSCSI","FabricType":"iSCSI",)"
           R"("Connections":{"@odata.id":"/redfish/v1/Fabrics/iSCSI/Connections"}})");
    Script("GET", kVolumes, 200,
           R"({"Members":[{"@odata.id":"/redfish/v1/Storage/array/Volumes/1"}]})");
  }
  ~ScriptedArray() {
    server_.stop();
    thread_.join();
  }
  void Script(const std::string& method, const std::string& path, int status,
              const std::string& body,
              std::vector<std::pair<std::string, std::string>> headers = {}) {
    std::lock_guard<std::mutex> lock(mu_);
    routes_[method + " " + path] = {status, body};
    headers_[method + " " + path] = std::move(headers);
  }
  std::vector<std::string> seen() {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_;
  }
  RestEndpoint Endpoint() const {
    RestEndpoint e;
    e.base_url = "http://127.0.0.1:" + std::to_string(port_);
    e.user = kUser;
    e.password = kPassword;
    return e;
  }
  static constexpr char kStorage[] = "/redfish/v1/Storage";
  static constexpr char kFabrics[] = "/redfish/v1/Fabrics";

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::map<std::string, std::pair<int, std::string>> routes_;
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> headers_;
  std::vector<std::string> seen_;
};

// A volume body with `change` spliced in after its @odata.id.
std::string VolumeJson(const std::string& fields) {
  return R"({"@odata.id":"/redfish/v1/Storage/array/Volumes/1")" + fields + "}";
}
constexpr char kGoodFields[] =
    R"(,"Name":"v","CapacityBytes":1048576,"BlockSizeBytes":512,)"
    R"("Identifiers":[{"DurableName":"653534D6B7A31BF5E691000000000001","DurableNameFormat":"NAA"}])";

BOOST_AUTO_TEST_CASE(every_malformed_answer_is_an_error_naming_the_call_and_what_is_wrong) {
  const std::string volume = std::string(kVolumes) + "/1";
  struct Case {
    std::string path;  // GET path scripted
    std::string body;
    std::string error;  // expected in the message
  };
  const std::vector<Case> cases = {
      {ScriptedArray::kStorage, R"({"Members":[]})", "lists no storage"},
      {ScriptedArray::kStorage, R"({"Value":[]})", "Members is missing"},
      {ScriptedArray::kStorage, R"({"Members":{}})", "Members is not an array"},
      {kVolumes, R"({"Members":[{"@odata.id":5}]})", "Members[0].@odata.id is not a string"},
      {kVolumes, R"({"Members":["/redfish/v1/x"]})", "Members[0] is not an object"},
      {volume, "[1,2]", "not an object"},
      {volume, R"({"Name":"v")", "not JSON"},
      {volume, R"({"Name":"v"})", "@odata.id is missing"},
      {volume, VolumeJson(R"(,"Name":"v","CapacityBytes":1,"BlockSizeBytes":512)"),
       "Identifiers is missing"},
      {volume,
       VolumeJson(R"(,"Name":"v","CapacityBytes":1,"BlockSizeBytes":512,"Identifiers":[)"
                  R"({"DurableName":"x","DurableNameFormat":"EUI"}])"),
       "Identifiers has no DurableNameFormat \"NAA\" entry"},
      {volume,
       VolumeJson(R"(,"Name":"v","CapacityBytes":1,"BlockSizeBytes":512,"Identifiers":[)"
                  R"({"DurableName":"naa.60zz","DurableNameFormat":"NAA"}])"),
       "Identifiers[0].DurableName 'naa.60zz' is not an NAA identifier"},
      {volume,
       VolumeJson(R"(,"Name":"v","CapacityBytes":"big","BlockSizeBytes":512,"Identifiers":[)"
                  R"({"DurableName":"653534d6b7a31bf5","DurableNameFormat":"NAA"}])"),
       "CapacityBytes is not a non-negative integer"},
      {volume, VolumeJson(std::string(kGoodFields) + R"(,"Oem":{"Snapset":{"SerialNumber":7}})"),
       "Oem.Snapset.SerialNumber is not a string"},
      {volume, VolumeJson(std::string(kGoodFields) + R"(,"ReplicaInfo":{"ReplicaRole":"Target"})"),
       "ReplicaInfo.SourceReplica is missing"},
      {volume,
       VolumeJson(std::string(kGoodFields) + R"(,"ReplicaInfo":{"SourceReplica":{"@odata.id":1}})"),
       "ReplicaInfo.SourceReplica.@odata.id is not a string"},
  };
  for (const Case& c : cases) {
    ScriptedArray array;
    array.Script("GET", volume, 200, VolumeJson(kGoodFields));
    array.Script("GET", c.path, 200, c.body);
    SwordfishDriver dialect(array.Endpoint());
    Result<std::vector<ArrayVolume>> v = dialect.Inventory(Within(milliseconds(5000)));
    BOOST_TEST_CONTEXT(c.path << " " << c.body) {
      BOOST_REQUIRE(!v.ok());
      NoSecret(v);
      BOOST_TEST(v.status().message().find("GET " + array.Endpoint().base_url + c.path) !=
                     std::string::npos,
                 v.status().message());
      BOOST_TEST(v.status().message().find(c.error) != std::string::npos, v.status().message());
      BOOST_TEST(v.status().message().find("scripted-token") == std::string::npos);
      BOOST_TEST_MESSAGE(v.status().ToString());
    }
  }

  // The well-formed volume: the NAA loses its "naa." prefix and its capitals.
  ScriptedArray array;
  array.Script(
      "GET", volume, 200,
      VolumeJson(R"(,"Name":"v","CapacityBytes":1048576,"BlockSizeBytes":512,)"
                 R"("Identifiers":[{"DurableName":"naa.653534D6B7A31BF5E691000000000001",)"
                 R"("DurableNameFormat":"NAA"}],"Oem":{"Snapset":{"SerialNumber":" SN1 "}})"));
  SwordfishDriver dialect(array.Endpoint());
  Result<std::vector<ArrayVolume>> v = dialect.Inventory(Within(milliseconds(5000)));
  REQUIRE_OK(v);
  BOOST_REQUIRE_EQUAL(v->size(), 1u);
  BOOST_TEST((*v)[0].naa == "653534d6b7a31bf5e691000000000001");
  BOOST_TEST((*v)[0].serial == "SN1");
  BOOST_TEST((*v)[0].source_id.empty());
}

BOOST_AUTO_TEST_CASE(malformed_snapshot_and_exposure_answers_are_errors_and_leave_nothing_behind) {
  const std::string volume = std::string(kVolumes) + "/1";
  ArrayGroup group;
  group.id = "/redfish/v1/Storage/array/ConsistencyGroups/1";
  group.name = "g";
  group.member_ids = {volume, std::string(kVolumes) + "/2"};
  const std::string action = group.id + "/Actions/ConsistencyGroup.CreateReplicaTarget";
  const std::string snapshot =
      VolumeJson(std::string(kGoodFields) + R"(,"ReplicaInfo":{"SourceReplica":{"@odata.id":")" +
                 volume + R"("}})");

  ScriptedArray array;
  SwordfishDriver dialect(array.Endpoint());
  // One snapshot for two members.
  array.Script("POST", action, 201, R"({"Members":[)" + snapshot + "]}");
  Result<std::vector<ArrayVolume>> snaps =
      dialect.SnapshotGroup({group, {}, ""}, Within(milliseconds(5000)));
  BOOST_REQUIRE(!snaps.ok());
  BOOST_TEST(snaps.status().message().find("POST " + array.Endpoint().base_url + action) !=
                 std::string::npos,
             snaps.status().message());
  BOOST_TEST(snaps.status().message().find("has 1 snapshots for a group of 2") != std::string::npos,
             snaps.status().message());
  // Two snapshots, both of the first member.
  array.Script("POST", action, 201, R"({"Members":[)" + snapshot + "," + snapshot + "]}");
  snaps = dialect.SnapshotGroup({group, {}, ""}, Within(milliseconds(5000)));
  BOOST_REQUIRE(!snaps.ok());
  BOOST_TEST(snaps.status().message().find("no snapshot of the member " + group.member_ids[1]) !=
                 std::string::npos,
             snaps.status().message());
  // A 202 without a task monitor.
  array.Script("POST", action, 202, "{}");
  snaps = dialect.SnapshotGroup({group, {}, ""}, Within(milliseconds(5000)));
  BOOST_REQUIRE(!snaps.ok());
  BOOST_TEST(snaps.status().message().find("without a Location") != std::string::npos,
             snaps.status().message());
  BOOST_TEST(dialect.pending_tasks() == 0u);

  // A connection answered without its portal: an error, and the connection
  // (which exists) is deleted again.
  const std::string connections = "/redfish/v1/Fabrics/iSCSI/Connections";
  array.Script("POST", connections, 201,
               R"({"@odata.id":"/redfish/v1/Fabrics/iSCSI/Connections/9",)"
               R"("VolumeInfo":[{"Volume":{"@odata.id":")" +
                   volume + R"("},"LUN":1}],"Oem":{"Snapset":{"IscsiTarget":"iqn.x:conn-9"}}})",
               {{"Location", connections + "/9"}});
  array.Script("DELETE", connections + "/9", 204, "");
  ExposeRequest request;
  request.volume_ids = {volume};
  request.initiator_iqn = "iqn.2026-11.io.example:h";
  request.chap_user = kChapUser;
  request.chap_password = kChapSecret;
  Result<ArrayExposure> e = dialect.Expose(request, Within(milliseconds(5000)));
  BOOST_REQUIRE(!e.ok());
  NoSecret(e);
  BOOST_TEST(e.status().message().find("Oem.Snapset.Portal is missing") != std::string::npos,
             e.status().message());
  const std::vector<std::string> seen = array.seen();
  BOOST_TEST((std::find(seen.begin(), seen.end(), "DELETE " + connections + "/9") != seen.end()));
  // No fabric of type iSCSI: Expose says so.
  ScriptedArray no_iscsi;
  no_iscsi.Script("GET", "/redfish/v1/Fabrics/iSCSI", 200, R"({"FabricType":"NVMeOverFabrics"})");
  SwordfishDriver lost(no_iscsi.Endpoint());
  e = lost.Expose(request, Within(milliseconds(5000)));
  BOOST_REQUIRE(!e.ok());
  NoSecret(e);
  BOOST_TEST(e.status().message().find("FabricType \"iSCSI\"") != std::string::npos,
             e.status().message());
}

}  // namespace
}  // namespace snapset::test
