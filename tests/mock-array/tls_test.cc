#define BOOST_TEST_MODULE mock_array_tls
#include <boost/test/unit_test.hpp>
#include <string>
#include <vector>

#include "tests/mock-array/mock_array_process.hpp"
#include "tests/mock-array/test_pki.hpp"
#include "tests/support/command.hpp"
#include "tests/support/prerequisites.hpp"
#include "tests/support/temp_dir.hpp"

namespace snapset::test {
namespace {

constexpr char kVolumes[] = "/redfish/v1/Storage/array/Volumes";

// Runs the binary to its exit (it must fail before it serves).
CommandResult RunArray(const TempDir& dir, const std::vector<std::string>& extra) {
  std::vector<std::string> args = {MockArrayBinary(),   "--listen",    "127.0.0.1:0",
                                   "--iscsi-portal",    "127.0.0.1:0", "--state-dir",
                                   dir.str() + "/state"};
  args.insert(args.end(), extra.begin(), extra.end());
  return RunCommand(args);
}

BOOST_AUTO_TEST_CASE(with_a_certificate_the_array_serves_https_to_clients_trusting_its_ca) {
  if (!MockArrayAvailable()) return;
  Pki pki;
  if (!pki.ok) return;
  MockArrayProcess array(pki.dir.str() + "/state", {"--tls-cert", pki.cert, "--tls-key", pki.key});
  BOOST_TEST(array.rest().rfind("https://127.0.0.1:", 0) == 0u, array.rest());
  HttpOptions trusted;
  trusted.ca_file = pki.ca;
  const std::string token = array.Login(trusted);
  BOOST_TEST(token.size() >= 32u);
  HttpResponse created = Http("POST", array.Url(kVolumes),
                              R"({"Name":"secure","CapacityBytes":1048576})", token, trusted);
  BOOST_TEST(created.status == 201, created.body);
  BOOST_TEST(Http("GET", array.Url(created.headers["location"]), "", token, trusted).status == 200);
  // Tasks work over https too.
  HttpOptions async = trusted;
  async.headers.push_back("Prefer: respond-async");
  HttpResponse accepted = Http("POST", array.Url(kVolumes),
                               R"({"Name":"later","CapacityBytes":1048576})", token, async);
  BOOST_REQUIRE_EQUAL(accepted.status, 202);
  BOOST_TEST(PollTaskMonitor(array.Url(accepted.headers["location"]), token, trusted).status ==
             201);
}

BOOST_AUTO_TEST_CASE(a_client_that_does_not_trust_the_ca_or_speaks_plain_http_gets_no_answer) {
  if (!MockArrayAvailable()) return;
  Pki pki;
  if (!pki.ok) return;
  MockArrayProcess array(pki.dir.str() + "/state", {"--tls-cert", pki.cert, "--tls-key", pki.key});
  HttpOptions untrusting;
  untrusting.throw_on_transport_error = false;
  untrusting.timeout_ms = 5000;
  HttpResponse refused = Http("GET", array.Url("/redfish/v1"), "", "", untrusting);
  BOOST_TEST(refused.status == 0);
  BOOST_TEST(!refused.transport_error.empty());
  BOOST_TEST_MESSAGE("untrusted CA: " << refused.transport_error);

  const std::string plain = "http://" + array.rest().substr(std::string("https://").size());
  HttpResponse garbled = Http("GET", plain + "/redfish/v1", "", "", untrusting);
  BOOST_TEST(garbled.status == 0, garbled.body);
  BOOST_TEST(!garbled.transport_error.empty());
  BOOST_TEST_MESSAGE("plain http: " << garbled.transport_error);

  // The array still serves a client that does it right.
  HttpOptions trusted;
  trusted.ca_file = pki.ca;
  BOOST_TEST(Http("GET", array.Url("/redfish/v1"), "", "", trusted).status == 200);
}

BOOST_AUTO_TEST_CASE(tls_cert_without_tls_key_or_the_reverse_is_a_usage_error) {
  TempDir dir;
  const std::string file = dir.Write("some.pem", "x");
  for (const char* option : {"--tls-cert", "--tls-key"}) {
    const CommandResult r = RunArray(dir, {option, file});
    BOOST_TEST(r.exit_code == 2, option << ": " << r.output);
    BOOST_TEST(r.output.find("usage error") != std::string::npos, r.output);
  }
}

BOOST_AUTO_TEST_CASE(a_missing_or_invalid_certificate_or_key_exits_1_naming_the_file) {
  Pki pki;
  if (!pki.ok) return;
  const std::string missing = pki.Path("missing.pem");
  const std::string garbage = pki.dir.Write("garbage.pem", "not a certificate\n");
  const std::string other_key = pki.Path("other.key");
  Openssl({"genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-out",
           other_key});
  struct Case {
    std::string cert, key, named;
  };
  const Case cases[] = {
      {missing, pki.key, missing},  {pki.cert, missing, missing},     {garbage, pki.key, garbage},
      {pki.cert, garbage, garbage}, {pki.cert, other_key, other_key},
  };
  for (const Case& c : cases) {
    const CommandResult r = RunArray(pki.dir, {"--tls-cert", c.cert, "--tls-key", c.key});
    BOOST_TEST(r.exit_code == 1, c.cert << " " << c.key << ": " << r.output);
    BOOST_TEST(r.output.find(c.named) != std::string::npos, r.output);
  }
}

}  // namespace
}  // namespace snapset::test
