// A CA of its own and a server certificate it signed for 127.0.0.1, made
// with the openssl command in a private directory: for tests of HTTPS.
#ifndef SNAPSET_TESTS_MOCK_ARRAY_TEST_PKI_HPP
#define SNAPSET_TESTS_MOCK_ARRAY_TEST_PKI_HPP

#include <string>
#include <vector>

#include "tests/support/temp_dir.hpp"

namespace snapset::test {

// Runs `openssl ARGS...`; fails the test unless it exits 0.
void Openssl(std::vector<std::string> args);

struct Pki {
  // ok stays false (the test returns) when openssl is missing outside CI;
  // in CI that is a failure (tests/support/prerequisites.hpp).
  Pki();
  std::string Path(const std::string& name) const { return dir.str() + "/" + name; }

  TempDir dir;
  const std::string ca = Path("ca.pem");
  const std::string cert = Path("server.pem");
  const std::string key = Path("server.key");
  bool ok = false;
};

}  // namespace snapset::test

#endif  // SNAPSET_TESTS_MOCK_ARRAY_TEST_PKI_HPP
