// What the iSCSI provider's end-to-end tests share: two real mock arrays
// (REST + their own tgtd), LUNs on them mapped to this host's initiator,
// the provider registered with snapset as a user registers it (credentials
// files chmod 600, one array per entry), optionally snapset-cowd and the
// software-cow provider beside it, and the `snapset` CLI run against
// private config and state directories. Everything is stopped by pid at
// scope exit, also when the test fails.
#ifndef SNAPSET_TESTS_ISCSI_PROVIDER_FIXTURE_HPP
#define SNAPSET_TESTS_ISCSI_PROVIDER_FIXTURE_HPP

#include <rapidjson/document.h>

#include <memory>
#include <string>
#include <vector>

#include "tests/mock-array/connections.hpp"
#include "tests/mock-array/mock_array_process.hpp"
#include "tests/support/command.hpp"
#include "tests/support/temp_dir.hpp"

namespace snapset::test {

struct Pki;

// The initiator name the snapset host logs in with (core/iscsi_identity.hpp's
// default), so the host can read the LUNs the arrays map to it.
inline constexpr char kHostInitiator[] = "iqn.2026-11.io.snapset:host";

struct ArrayLun {
  int array = 0;     // 0: array "a", 1: array "b"
  std::string path;  // the volume's id on its array (Swordfish: its @odata.id)
  std::string naa;   // its DurableName, lower case
  std::string url;   // iscsi://portal/target/lun, mapped to kHostInitiator
};

struct ProviderFixtureOptions {
  // The arrays' API and the driver the provider manages them with:
  // "swordfish" (the built-in driver) or "twophase" (--dialect twophase and
  // the out-of-tree example driver, examples/twophase-driver).
  std::string dialect = "swordfish";
  int luns_a = 3;
  int luns_b = 2;
  uint64_t lun_bytes = 16 << 20;
  bool cow = false;  // snapset-cowd with cow:db, and the software-cow provider
  // Extra options of each mock array (e.g. --token-ttl-s).
  std::vector<std::string> extra_a, extra_b;
  // Extra members of each array's entry in the provider's config, e.g.
  // R"("timeouts_ms": {"request": 2000})" (with no leading comma).
  std::string config_a, config_b;
  // Array b's "driver" in the registration (a driver library's path) when
  // not the fixture's own: a vendor's driver beside the bundled one.
  std::string driver_b;
  bool tls = false;  // https with a test CA given as ca_file
  // The arrays' administrator (both arrays). Other than admin/admin, each
  // array runs with a users file (--users, chmod 600) holding only this
  // user, and the provider's credentials files name it.
  std::string user = "admin", password = "admin";
  // Target CHAP on the host's LUN mapping (both arrays): an initiator must
  // log in with this user and password to reach the source LUNs. Empty:
  // none.
  std::string host_chap_user, host_chap_password;
};

class ProviderFixture {
 public:
  explicit ProviderFixture(ProviderFixtureOptions options = {});
  ~ProviderFixture();
  ProviderFixture(const ProviderFixture&) = delete;
  ProviderFixture& operator=(const ProviderFixture&) = delete;

  MockArrayProcess& array(int i) { return *arrays_[i]; }
  const std::string& token(int i) const { return tokens_[i]; }
  const std::vector<ArrayLun>& luns() const { return luns_; }
  std::vector<std::string> Urls() const;  // every LUN's URL, array a first
  const TempDir& dir() const { return dir_; }
  const std::string& config_dir() const { return config_; }
  const std::string& state_dir() const { return state_; }
  const std::string& dialect() const { return options_.dialect; }
  bool twophase() const { return options_.dialect == "twophase"; }
  // The "driver" of every array's entry in the registration: "swordfish"
  // or the twophase example driver's path.
  std::string driver() const;

  // REST on array i as admin (with the test CA under tls); logs in again
  // when the token has expired.
  HttpResponse Rest(int i, const std::string& method, const std::string& path,
                    const std::string& body = "");
  // GET /mock/state of array i.
  rapidjson::Document State(int i);
  // What array i holds that a snapshot set could leave behind: snapshots,
  // groups, and connections other than the host's own LUN mapping.
  int Snapshots(int i);
  int Groups(int i);
  int ExtraConnections(int i);
  // The fences up on array i (twophase; none ever in Swordfish): each holds
  // the writes of its LUNs.
  int Fences(int i);
  // Neither array holds a snapshot, a group, a fence or a connection other
  // than the host's own LUN mapping: what every set must leave once it is
  // gone.
  void ExpectNothingLeft();
  // A write to every LUN is acknowledged within two seconds: no fence (or
  // frozen array) holds them.
  void ExpectEveryLunWritable();
  // POST /mock/faults on array i; fails the test unless 201.
  void Fault(int i, const std::string& body);
  void ClearFaults(int i);

  // A new session on array i as the fixture's user: its token.
  std::string Login(int i);

  // Rewrites the provider's registration with `ca_file` as every array's
  // CA ("" goes back to the fixture's own).
  void SetRegisteredCaFile(const std::string& ca_file);
  // Replaces the provider's registration with this "config" object.
  void WriteProviderConfig(const std::string& config_json);

  // Restarts array i on the same state directory (new ports), re-registers
  // the provider with the new URLs and returns the new LUN URLs.
  void RestartArray(int i);

  // The snapset command line for `args` with this fixture's directories.
  std::vector<std::string> CliArgv(const std::vector<std::string>& args) const;
  CommandResult Cli(const std::vector<std::string>& args) const;
  // `snapset --json create VOLUMES...`: the parsed document, or fails the test.
  rapidjson::Document Create(const std::vector<std::string>& volumes) const;
  // `snapset --json ARGS...` that must succeed: the parsed document.
  rapidjson::Document Json(const std::vector<std::string>& args) const;

 private:
  void StartArray(int i);
  void MapLuns(int i);
  // Array i's LUN URLs from the twophase export that maps them to the host.
  void SetTwoPhaseUrls(int i, const rapidjson::Value& export_record);
  void WriteRegistration();

  ProviderFixtureOptions options_;
  TempDir dir_;
  std::string config_, state_;
  std::unique_ptr<Pki> pki_;  // under tls: the test CA and the arrays' certificate
  std::string ca_file_;
  std::string registered_ca_file_;  // "" : ca_file_
  std::vector<std::unique_ptr<MockArrayProcess>> arrays_;
  std::vector<std::string> tokens_;
  std::vector<std::string> host_connections_;  // per array: the LUN mapping's @odata.id
  std::vector<ArrayLun> luns_;
  struct CowDaemon;
  std::unique_ptr<CowDaemon> cow_;
};

// True when everything the fixture needs is here (root, tgt, the mock
// array); false (a skip) outside CI, a failure in CI.
bool ProviderFixtureAvailable(bool cow = false);

// The string member `key` of `v`, or "" when `v` is no object or has none.
std::string Field(const rapidjson::Value& v, const char* key);

// A target CHAP credentials file (chmod 600) in `dir`, as `expose
// --chap-file` and the provider's config take it.
std::string WriteChapFile(const TempDir& dir, const std::string& name, const char* user,
                          const char* secret);

// The JSON document in a CLI's output, which also holds the log lines the
// command wrote to stderr (the provider's loud warning about an http://
// array, for one): it starts at the first line that starts with '{'.
rapidjson::Document JsonOfOutput(const std::string& output);

}  // namespace snapset::test

#endif  // SNAPSET_TESTS_ISCSI_PROVIDER_FIXTURE_HPP
