#include "tests/mock-array/test_pki.hpp"

#include <boost/test/unit_test.hpp>
#include <vector>

#include "tests/support/command.hpp"
#include "tests/support/prerequisites.hpp"

namespace snapset::test {
namespace {

// The extensions of a CA and of a server certificate for 127.0.0.1.
constexpr char kOpensslConfig[] = R"([req]
distinguished_name = dn
prompt = no
[dn]
CN = snapset test
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
)";

}  // namespace

void Openssl(std::vector<std::string> args) {
  args.insert(args.begin(), "openssl");
  const CommandResult r = RunCommand(args);
  BOOST_REQUIRE_MESSAGE(r.exit_code == 0, "openssl " << args[1] << ": " << r.output);
}

Pki::Pki() {
  if (!Available(HaveProgram("openssl") ? "" : "the openssl command (package openssl)")) return;
  const std::string config = dir.Write("openssl.cnf", kOpensslConfig);
  const std::vector<std::string> ec = {"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                                       "-nodes"};
  std::vector<std::string> args = {"req",         "-x509", "-config", config,
                                   "-extensions", "ca",    "-subj",   "/CN=snapset test CA",
                                   "-days",       "2",     "-keyout", Path("ca.key"),
                                   "-out",        ca};
  args.insert(args.end(), ec.begin(), ec.end());
  Openssl(args);
  args = {"req",           "-new",    "-config", config, "-subj",
          "/CN=127.0.0.1", "-keyout", key,       "-out", Path("server.csr")};
  args.insert(args.end(), ec.begin(), ec.end());
  Openssl(args);
  Openssl({"x509", "-req", "-in", Path("server.csr"), "-CA", ca, "-CAkey", Path("ca.key"),
           "-set_serial", "2", "-days", "2", "-extfile", config, "-extensions", "server", "-out",
           cert});
  ok = true;
}

}  // namespace snapset::test
