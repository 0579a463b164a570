// The iSCSI provider's config: a good one parses into ready REST endpoints;
// every bad field is refused with its path, what is wrong and what to do;
// secret files must be owner-only; TLS is off only by an explicit, warned
// "insecure"; and no secret shows in any error or warning.
#define BOOST_TEST_MODULE iscsi_array_config
#include "providers/iscsi/array_config.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <functional>
#include <string>
#include <vector>

#include "tests/support/temp_dir.hpp"

namespace snapset::test {
namespace {

using iscsi::ParseProviderConfig;
using iscsi::ProviderConfig;
using Doc = rapidjson::Document;

constexpr char kPassword[] = "Sw0rdf1sh-pa55w0rd";
constexpr char kChapSecret[] = "chap-s3cret-0f-h0st7";
constexpr char kUrlPassword[] = "url-pa55-in-userinfo";

// Every message the tests get goes through here: none may carry a secret.
const std::string& NoSecret(const std::string& m) {
  BOOST_TEST(m.find(kPassword) == std::string::npos, m);
  BOOST_TEST(m.find(kChapSecret) == std::string::npos, m);
  BOOST_TEST(m.find(kUrlPassword) == std::string::npos, m);
  return m;
}

bool Has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Two arrays' files in a private directory, owner-only, and a config that
// names them.
struct Files {
  Files() {
    cred_a = Secret("a.cred",
                    std::string(R"({"UserName":"admin-a","Password":")") + kPassword + R"("})");
    cred_b = Secret("b.cred",
                    std::string(R"({"UserName":"admin-b","Password":")") + kPassword + R"("})");
    chap = Secret("a.chap", std::string(R"({"CHAPUsername":"host7","CHAPPassword":")") +
                                kChapSecret + R"("})");
    ca = dir.Write("a-ca.pem", "-----BEGIN CERTIFICATE-----\n");
  }
  std::string Secret(const std::string& name, const std::string& text, mode_t mode = 0600) const {
    const std::string path = dir.Write(name, text);
    ::chmod(path.c_str(), mode);
    return path;
  }
  // A good config of two arrays, as JSON text after `edit`.
  std::string Config(const std::function<void(Doc&)>& edit = {}) const {
    Doc d;
    const std::string text =
        R"({"initiator_iqn": "iqn.2026-11.io.example:host1", "arrays": [
      {"name": "a", "driver": "swordfish", "rest_url": "https://127.0.0.1:8443",
       "credentials_file": ")" +
        cred_a + R"(", "ca_file": ")" + ca + R"(", "insecure": false,
       "portals": ["127.0.0.1:3260", "[::1]"], "chap_file": ")" +
        chap + R"(",
       "timeouts_ms": {"connect": 4000, "request": 20000}},
      {"name": "b", "driver": "swordfish", "rest_url": "https://array-b.example/",
       "credentials_file": ")" +
        cred_b + R"(", "portals": ["array-b.example"]}]})";
    d.Parse(text.c_str());
    BOOST_REQUIRE(!d.HasParseError());
    if (edit) edit(d);
    rapidjson::StringBuffer out;
    rapidjson::Writer<rapidjson::StringBuffer> writer(out);
    d.Accept(writer);
    return out.GetString();
  }
  TempDir dir;
  std::string cred_a, cred_b, chap, ca;
};

// The config must be refused with a message holding every one of `parts`.
void Refused(const std::string& config, const std::vector<std::string>& parts) {
  Result<ProviderConfig> r = ParseProviderConfig(config, SNAPSET_ARRAY_DRIVER_DIR);
  BOOST_REQUIRE_MESSAGE(!r.ok(), "accepted: " + config);
  const std::string& m = NoSecret(r.status().message());
  BOOST_TEST(r.status().IsInvalidArgument(), m);
  for (const std::string& part : parts) BOOST_TEST(Has(m, part), "'" + part + "' not in: " + m);
}

ProviderConfig Accepted(const std::string& config) {
  Result<ProviderConfig> r = ParseProviderConfig(config, SNAPSET_ARRAY_DRIVER_DIR);
  BOOST_REQUIRE_MESSAGE(r.ok(), NoSecret(r.status().message()));
  for (const std::string& w : r->warnings) NoSecret(w);
  return *r;
}

// What the array's driver gets of its config, read as the REST toolkit
// reads it.
rest::EndpointConfig EndpointOf(const iscsi::ArrayConfig& a) {
  Doc d;
  d.Parse(a.driver_config.c_str());
  BOOST_REQUIRE(d.IsObject());
  Result<rest::EndpointConfig> e = rest::ParseEndpoint(d);
  BOOST_REQUIRE_MESSAGE(e.ok(), e.status().ToString());
  return *e;
}

void Set(Doc& d, rapidjson::Value& at, const char* key, const std::string& json) {
  Doc v(&d.GetAllocator());
  v.Parse(json.c_str());
  BOOST_REQUIRE(!v.HasParseError());
  if (at.HasMember(key)) {
    at[key].CopyFrom(v, d.GetAllocator());
  } else {
    rapidjson::Value name(key, d.GetAllocator());
    rapidjson::Value value(v, d.GetAllocator());
    at.AddMember(name, value, d.GetAllocator());
  }
}
std::function<void(Doc&)> SetTop(const char* key, std::string json) {
  return [=](Doc& d) { Set(d, d, key, json); };
}
std::function<void(Doc&)> SetB(const char* key, std::string json) {
  return [=](Doc& d) { Set(d, d["arrays"][1], key, json); };
}
std::function<void(Doc&)> DropB(const char* key) {
  return [=](Doc& d) { d["arrays"][1].RemoveMember(key); };
}

BOOST_AUTO_TEST_CASE(a_good_config_parses_into_ready_rest_endpoints) {
  Files f;
  const ProviderConfig c = Accepted(f.Config());
  BOOST_TEST(c.initiator_iqn == "iqn.2026-11.io.example:host1");
  BOOST_TEST(c.warnings.empty());
  BOOST_REQUIRE_EQUAL(c.arrays.size(), 2u);

  const iscsi::ArrayConfig& a = c.arrays[0];
  BOOST_TEST(a.name == "a");
  BOOST_TEST(a.driver == "swordfish");
  BOOST_TEST(a.library->path() ==
             std::string(SNAPSET_ARRAY_DRIVER_DIR) + "/libsnapset_array_swordfish.so");
  BOOST_TEST(EndpointOf(a).endpoint.base_url == "https://127.0.0.1:8443");
  BOOST_TEST(EndpointOf(a).endpoint.user == "admin-a");
  BOOST_TEST(EndpointOf(a).endpoint.password == kPassword);
  BOOST_TEST(EndpointOf(a).endpoint.ca_file == f.ca);
  BOOST_TEST(!EndpointOf(a).endpoint.insecure);
  BOOST_TEST(EndpointOf(a).endpoint.connect_timeout.count() == 4000);
  BOOST_TEST(EndpointOf(a).endpoint.request_timeout.count() == 20000);
  BOOST_TEST(a.portals == (std::vector<std::string>{"127.0.0.1:3260", "[::1]:3260"}));
  BOOST_REQUIRE(a.chap.has_value());
  BOOST_TEST(a.chap->user == "host7");
  BOOST_TEST(a.chap->password == kChapSecret);
  BOOST_TEST(EndpointOf(a).credentials_file == f.cred_a);
  BOOST_TEST(a.chap_file == f.chap);
  BOOST_TEST(iscsi::OpenDriver(a, ArrayCall{}, nullptr).ok());

  // The optional fields: system CAs, no CHAP, default timeouts, port 3260;
  // a trailing slash of the URL is dropped.
  const iscsi::ArrayConfig& b = c.arrays[1];
  BOOST_TEST(EndpointOf(b).endpoint.base_url == "https://array-b.example");
  BOOST_TEST(EndpointOf(b).endpoint.user == "admin-b");
  BOOST_TEST(EndpointOf(b).endpoint.ca_file == "");
  BOOST_TEST(!b.chap.has_value());
  BOOST_TEST(b.chap_file == "");
  BOOST_TEST(EndpointOf(b).endpoint.connect_timeout.count() == 5000);
  BOOST_TEST(EndpointOf(b).endpoint.request_timeout.count() == 30000);
  BOOST_TEST(b.portals == std::vector<std::string>{"array-b.example:3260"});
}

BOOST_AUTO_TEST_CASE(other_rfc_3720_initiator_names_are_accepted) {
  Files f;
  for (const char* name : {"iqn.2026-11.io.example", "eui.02004567A425678D", "naa.52004567BA64678D",
                           "iqn.1994-05.com.redhat:6d1b7ba5c2f"}) {
    BOOST_TEST(Accepted(f.Config(SetTop("initiator_iqn", std::string("\"") + name + "\"")))
                   .initiator_iqn == name);
  }
}

struct BadCase {
  const char* what;
  std::function<void(Doc&)> edit;
  std::vector<std::string> parts;  // the message must hold each
};

BOOST_AUTO_TEST_CASE(each_bad_field_is_refused_naming_its_path_and_what_to_do) {
  Files f;
  const std::vector<BadCase> cases = {
      {"typo at the top",
       SetTop("initator_iqn", "\"iqn.2026-11.io.example:h\""),
       {"initator_iqn", "unknown key", "initiator_iqn, arrays"}},
      {"no initiator",
       [](Doc& d) { d.RemoveMember("initiator_iqn"); },
       {"initiator_iqn", "missing"}},
      {"initiator not a string", SetTop("initiator_iqn", "7"), {"initiator_iqn", "string"}},
      {"initiator not an iqn",
       SetTop("initiator_iqn", "\"host1\""),
       {"initiator_iqn", "iqn.YYYY-MM"}},
      {"initiator upper case",
       SetTop("initiator_iqn", "\"iqn.2026-11.IO.example:h\""),
       {"initiator_iqn", "lower case"}},
      {"initiator month 13",
       SetTop("initiator_iqn", "\"iqn.2026-13.io.example:h\""),
       {"initiator_iqn", "month"}},
      {"initiator no domain",
       SetTop("initiator_iqn", "\"iqn.2026-11.:h\""),
       {"initiator_iqn", "reversed domain"}},
      {"no arrays", SetTop("arrays", "[]"), {"arrays", "non-empty"}},
      {"array not an object", SetTop("arrays", "[7]"), {"arrays[0]", "object"}},
      {"typo in an array",
       SetB("chap_fiel", "\"/x\""),
       {"arrays[1].chap_fiel", "unknown key", "chap_file"}},
      {"no name", DropB("name"), {"arrays[1].name", "missing"}},
      {"bad name", SetB("name", "\"b b\""), {"arrays[1].name", "letters, digits"}},
      {"same name", SetB("name", "\"a\""), {"arrays[1].name", "unique"}},
      {"no driver", DropB("driver"), {"arrays[1].driver", "missing"}},
      {"unknown driver",
       SetB("driver", "\"ontap\""),
       {"arrays[1].driver", "\"ontap\" is not a built-in driver", "\"swordfish\"",
        "absolute path"}},
      {"relative driver path", SetB("driver", "\"lib/x.so\""), {"arrays[1].driver", "relative"}},
      {"missing driver library",
       SetB("driver", "\"/nonexistent/libdriver.so\""),
       {"arrays[1].driver", "/nonexistent/libdriver.so"}},
      {"the old dialect key",
       SetB("dialect", "\"swordfish\""),
       {"arrays[1].dialect", "is now \"driver\""}},
      {"no url", DropB("rest_url"), {"arrays[1].rest_url", "missing"}},
      {"ftp url", SetB("rest_url", "\"ftp://array-b\""), {"arrays[1].rest_url", "https://"}},
      {"url with a path",
       SetB("rest_url", "\"https://array-b/redfish/v1\""),
       {"arrays[1].rest_url", "no path"}},
      {"url with a query",
       SetB("rest_url", "\"https://array-b?x=1\""),
       {"arrays[1].rest_url", "query"}},
      {"url with bad port",
       SetB("rest_url", "\"https://array-b:99999\""),
       {"arrays[1].rest_url", "port"}},
      {"url with no host", SetB("rest_url", "\"https://:8443\""), {"arrays[1].rest_url", "host"}},
      {"url of array a again",
       SetB("rest_url", "\"https://127.0.0.1:8443/\""),
       {"arrays[1].rest_url", "\"a\"", "twice"}},
      {"url with credentials",
       SetB("rest_url", std::string("\"https://admin:") + kUrlPassword + "@array-b\""),
       {"arrays[1].rest_url", "credentials_file"}},
      {"insecure not a bool", SetB("insecure", "\"yes\""), {"arrays[1].insecure", "true or false"}},
      {"no credentials",
       DropB("credentials_file"),
       {"arrays[1].credentials_file", "missing", "chmod 600"}},
      {"relative credentials",
       SetB("credentials_file", "\"b.cred\""),
       {"arrays[1].credentials_file", "absolute"}},
      {"credentials not there",
       SetB("credentials_file", "\"" + f.dir.str() + "/none\""),
       {"arrays[1].credentials_file", "not found"}},
      {"ca not there",
       SetB("ca_file", "\"" + f.dir.str() + "/none.pem\""),
       {"arrays[1].ca_file", "cannot be read"}},
      {"no portals", DropB("portals"), {"arrays[1].portals", "missing"}},
      {"empty portals", SetB("portals", "[]"), {"arrays[1].portals", "non-empty"}},
      {"portal not a string", SetB("portals", "[3260]"), {"arrays[1].portals[0]", "host[:port]"}},
      {"portal port 0", SetB("portals", "[\"h:1\", \"h:0\"]"), {"arrays[1].portals[1]", "port"}},
      {"portal bare ipv6", SetB("portals", "[\"fe80::1\"]"), {"arrays[1].portals[0]", "[address]"}},
      {"chap not there",
       SetB("chap_file", "\"" + f.dir.str() + "/none.chap\""),
       {"arrays[1].chap_file", "not found"}},
      {"timeouts not an object", SetB("timeouts_ms", "5000"), {"arrays[1].timeouts_ms", "object"}},
      {"timeout typo",
       SetB("timeouts_ms", R"({"conect": 5000})"),
       {"arrays[1].timeouts_ms.conect", "unknown key", "connect, request"}},
      {"connect 0",
       SetB("timeouts_ms", R"({"connect": 0})"),
       {"arrays[1].timeouts_ms.connect", "from 1 to 60000", "got 0"}},
      {"connect negative",
       SetB("timeouts_ms", R"({"connect": -5})"),
       {"arrays[1].timeouts_ms.connect", "from 1 to 60000"}},
      {"request too long",
       SetB("timeouts_ms", R"({"request": 3600000})"),
       {"arrays[1].timeouts_ms.request", "from 1 to 600000"}},
      {"request as text",
       SetB("timeouts_ms", R"({"request": "30s"})"),
       {"arrays[1].timeouts_ms.request", "whole number of milliseconds"}},
  };
  for (const BadCase& c : cases) {
    BOOST_TEST_CONTEXT(c.what) { Refused(f.Config(c.edit), c.parts); }
  }
}

BOOST_AUTO_TEST_CASE(bad_json_and_repeated_keys_are_refused) {
  Refused("{\"initiator_iqn\": ", {"config", "not valid JSON"});
  Refused("[]", {"config", "object"});
  Refused(
      R"({"initiator_iqn": "iqn.2026-11.io.example:a", "initiator_iqn": "iqn.2026-11.io.example:b",
              "arrays": []})",
      {"initiator_iqn", "given twice"});
}

BOOST_AUTO_TEST_CASE(secret_files_must_be_owner_only) {
  Files f;
  // Readable by group or others, or owned by someone else: refused, with
  // what to do.
  for (mode_t mode : {0644, 0640, 0604, 0660}) {
    ::chmod(f.cred_b.c_str(), mode);
    Refused(f.Config(), {"arrays[1].credentials_file", f.cred_b, "chmod 600"});
    ::chmod(f.chap.c_str(), mode);
    ::chmod(f.cred_b.c_str(), 0600);
    Refused(f.Config(), {"arrays[0].chap_file", f.chap, "chmod 600"});
    ::chmod(f.chap.c_str(), 0600);
  }
  if (::geteuid() == 0) {  // only root can give a file away
    BOOST_REQUIRE_EQUAL(::chown(f.cred_a.c_str(), 65534, 65534), 0);
    Refused(f.Config(), {"arrays[0].credentials_file", "owned by uid 65534", "chown"});
    BOOST_REQUIRE_EQUAL(::chown(f.cred_a.c_str(), ::geteuid(), ::getegid()), 0);
  }
  // 0600 and 0400 are accepted.
  ::chmod(f.chap.c_str(), 0400);
  Accepted(f.Config());
  // A directory is not a secret file.
  Refused(f.Config(SetB("credentials_file", "\"" + f.dir.str() + "\"")),
          {"arrays[1].credentials_file", "regular file"});
}

BOOST_AUTO_TEST_CASE(a_malformed_secret_file_is_refused_without_quoting_it) {
  Files f;
  const std::string p = kPassword;
  const std::vector<std::pair<std::string, std::string>> bodies = {
      {"{\"UserName\": \"u\", \"Password\": \"" + p + "\"", "not valid JSON"},
      {"[\"" + p + "\"]", "not a JSON object"},
      {"{\"UserName\": \"u\", \"Pasword\": \"" + p + "\"}", "a member other than"},
      {"{\"" + p + "\": \"u\", \"Password\": \"x\"}", "a member other than"},
      {"{\"UserName\": \"u\"}", "exactly"},
      {"{\"UserName\": \"u\", \"Password\": 7}", "Password must be a non-empty string"},
      {"{\"UserName\": \"\", \"Password\": \"" + p + "\"}", "UserName must be a non-empty"},
  };
  for (const auto& [body, part] : bodies) {
    BOOST_TEST_CONTEXT(body) {
      f.Secret("b.cred", body);
      Refused(f.Config(), {"arrays[1].credentials_file", part, "UserName"});
    }
  }
  f.Secret("a.chap",
           "{\"CHAPUsername\": \"host7\", \"CHAPSecret\": \"" + std::string(kChapSecret) + "\"}");
  f.Secret("b.cred", std::string(R"({"UserName":"admin-b","Password":")") + kPassword + "\"}");
  Refused(f.Config(), {"arrays[0].chap_file", "CHAPUsername", "CHAPPassword"});
}

BOOST_AUTO_TEST_CASE(tls_verification_is_off_only_by_an_explicit_and_warned_insecure) {
  Files f;
  // http:// without insecure: refused, saying what to do.
  Refused(f.Config(SetB("rest_url", "\"http://array-b:8080\"")),
          {"arrays[1].rest_url", "http://", "https://", "\"insecure\": true"});
  // http:// with insecure: accepted, and a loud warning naming the array.
  ProviderConfig plain = Accepted(f.Config([](Doc& d) {
    Set(d, d["arrays"][1], "rest_url", "\"http://array-b:8080\"");
    Set(d, d["arrays"][1], "insecure", "true");
  }));
  BOOST_TEST(EndpointOf(plain.arrays[1]).endpoint.insecure);
  BOOST_TEST(EndpointOf(plain.arrays[1]).endpoint.base_url == "http://array-b:8080");
  BOOST_REQUIRE_EQUAL(plain.warnings.size(), 1u);
  BOOST_TEST(Has(plain.warnings[0], "\"b\""), plain.warnings[0]);
  BOOST_TEST(Has(plain.warnings[0], "UNENCRYPTED"), plain.warnings[0]);
  // https:// with insecure: verification off, warned too.
  ProviderConfig unverified = Accepted(f.Config(SetB("insecure", "true")));
  BOOST_TEST(EndpointOf(unverified.arrays[1]).endpoint.insecure);
  BOOST_REQUIRE_EQUAL(unverified.warnings.size(), 1u);
  BOOST_TEST(Has(unverified.warnings[0], "verification is OFF"), unverified.warnings[0]);
  // A CA for an http:// URL is a mistake, not a no-op.
  Refused(f.Config([&](Doc& d) {
    Set(d, d["arrays"][1], "rest_url", "\"http://array-b:8080\"");
    Set(d, d["arrays"][1], "insecure", "true");
    Set(d, d["arrays"][1], "ca_file", "\"" + f.ca + "\"");
  }),
          {"arrays[1].ca_file", "http://"});
}

}  // namespace
}  // namespace snapset::test
