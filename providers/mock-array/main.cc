// snapset-mock-array: a storage-array simulator with a Redfish/Swordfish REST
// control plane and real iSCSI LUNs through its own tgtd. See
// docs/mock-array.md.
#include <httplib.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>
#include <thread>

#include "providers/mock-array/mock_array.hpp"
#include "providers/mock-array/sessions.hpp"
#include "providers/mock-array/store.hpp"
#include "providers/mock-array/tgt_daemon.hpp"

namespace {

using snapset::Result;
using snapset::Status;

struct HostPort {
  std::string host;
  int port = 0;
};

Result<HostPort> ParseHostPort(const std::string& text, const std::string& option) {
  const size_t colon = text.rfind(':');
  HostPort hp;
  if (colon != std::string::npos && colon > 0) {
    hp.host = text.substr(0, colon);
    try {
      size_t used = 0;
      hp.port = std::stoi(text.substr(colon + 1), &used);
      if (used == text.size() - colon - 1 && hp.port >= 0 && hp.port <= 65535) return hp;
    } catch (const std::exception&) {
    }
  }
  return Status::InvalidArgument(option + " must be HOST:PORT (port 0 picks a free one), not '" +
                                 text + "'");
}

std::string JsonEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

std::string OpensslError() {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "no PEM data";
  char text[256];
  ERR_error_string_n(code, text, sizeof(text));
  return text;
}

// Checks the certificate and key files before httplib, which only says
// whether all went well, gets them: an error names the file at fault.
Status CheckTlsFiles(const std::string& cert_file, const std::string& key_file) {
  FILE* cert_in = std::fopen(cert_file.c_str(), "r");
  if (cert_in == nullptr) {
    return Status::Config("--tls-cert " + cert_file + ": " + std::strerror(errno));
  }
  X509* cert = PEM_read_X509(cert_in, nullptr, nullptr, nullptr);
  std::fclose(cert_in);
  if (cert == nullptr) {
    return Status::Config("--tls-cert " + cert_file +
                          " holds no PEM certificate: " + OpensslError());
  }
  FILE* key_in = std::fopen(key_file.c_str(), "r");
  if (key_in == nullptr) {
    X509_free(cert);
    return Status::Config("--tls-key " + key_file + ": " + std::strerror(errno));
  }
  EVP_PKEY* key = PEM_read_PrivateKey(key_in, nullptr, nullptr, nullptr);
  std::fclose(key_in);
  Status status;
  if (key == nullptr) {
    status = Status::Config("--tls-key " + key_file +
                            " holds no PEM private key (or it is encrypted): " + OpensslError());
  } else if (X509_check_private_key(cert, key) != 1) {
    ERR_clear_error();
    status = Status::Config("--tls-key " + key_file + " is not the key of the certificate in " +
                            "--tls-cert " + cert_file);
  }
  EVP_PKEY_free(key);
  X509_free(cert);
  return status;
}

int Fail(const Status& status) {
  std::cerr << "snapset-mock-array: " << status.ToString() << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"snapset-mock-array: a storage array simulator (Redfish/Swordfish + iSCSI)"};
  std::string listen, portal, state_dir, users_file, name = "mock-array", tls_cert, tls_key;
  bool async_operations = false;
  int64_t token_ttl_s = 1800;
  uint64_t pool_bytes = 1ull << 40;
  app.add_option("--listen", listen, "REST address HOST:PORT")->required();
  app.add_option("--iscsi-portal", portal, "iSCSI portal HOST:PORT")->required();
  app.add_option("--state-dir", state_dir, "directory for the database and LUN files")->required();
  app.add_option("--users", users_file,
                 "JSON users file, mode 0600 (default: one user admin/admin)");
  app.add_option("--name", name, "array name, part of its target IQNs ([a-z0-9.-])");
  app.add_option("--token-ttl-s", token_ttl_s, "session idle timeout in seconds")
      ->check(CLI::Range(int64_t{1}, int64_t{86400 * 365}));
  app.add_option("--pool-capacity-bytes", pool_bytes, "size of the one storage pool")
      ->check(CLI::PositiveNumber);
  auto* cert_option = app.add_option("--tls-cert", tls_cert,
                                     "PEM certificate (chain) file: serve HTTPS (with --tls-key)");
  auto* key_option =
      app.add_option("--tls-key", tls_key, "PEM private key file of --tls-cert (unencrypted)");
  cert_option->needs(key_option);
  key_option->needs(cert_option);
  std::string dialect = "swordfish";
  app.add_option("--dialect", dialect,
                 "REST API to serve: swordfish (Redfish/Swordfish) or twophase (fences, then "
                 "commit; docs/mock-array.md)")
      ->check(CLI::IsMember({"swordfish", "twophase"}))
      ->capture_default_str();
  bool exclusive_groups = false;
  app.add_flag("--exclusive-groups", exclusive_groups,
               "a volume may be in one consistency group only: a second group of it is "
               "refused with 409 (as on arrays that nest volumes in one group)");
  app.add_flag("--async-operations", async_operations,
               "every state-changing operation runs as a task (202 + task monitor)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    return 0;
  } catch (const CLI::ParseError& e) {
    // Exit 2 for a usage error, as every snapset program does.
    std::cerr << "snapset-mock-array: usage error: " << e.what() << "\n\n" << app.help();
    return 2;
  }

  for (unsigned char c : name) {
    if (!(std::islower(c) || std::isdigit(c) || c == '-' || c == '.') || name.size() > 64) {
      return Fail(Status::InvalidArgument("--name must be 1 to 64 of [a-z0-9.-]"));
    }
  }
  if (name.empty()) return Fail(Status::InvalidArgument("--name must not be empty"));
  Result<HostPort> rest = ParseHostPort(listen, "--listen");
  if (!rest.ok()) return Fail(rest.status());
  Result<HostPort> iscsi = ParseHostPort(portal, "--iscsi-portal");
  if (!iscsi.ok()) return Fail(iscsi.status());

  const bool tls = !tls_cert.empty();
  if (tls != !tls_key.empty()) {
    std::cerr << "snapset-mock-array: usage error: --tls-cert and --tls-key go together\n";
    return 2;
  }
  if (tls) {
    Status checked = CheckTlsFiles(tls_cert, tls_key);
    if (!checked.ok()) return Fail(checked);
  }

  std::map<std::string, snapset::mock::User> users = {{"admin", {"admin"}}};
  if (!users_file.empty()) {
    auto loaded = snapset::mock::Sessions::LoadUsers(users_file);
    if (!loaded.ok()) return Fail(loaded.status());
    users = *loaded;
  }
  if (mkdir(state_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Fail(Status::Internal("creating " + state_dir + ": " + strerror(errno)));
  }
  char resolved[PATH_MAX];
  if (realpath(state_dir.c_str(), resolved) == nullptr) {
    return Fail(Status::Internal("resolving " + state_dir + ": " + strerror(errno)));
  }
  state_dir = resolved;

  // Signals go to one thread that stops the server; block them everywhere
  // before any thread starts.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto store = snapset::mock::Store::Open(state_dir + "/state.db");
  if (!store.ok()) return Fail(store.status());
  auto tgt = snapset::mock::TgtDaemon::Start(state_dir, iscsi->host, iscsi->port);
  if (!tgt.ok()) return Fail(tgt.status());

  snapset::mock::Sessions sessions(users, std::chrono::seconds(token_ttl_s));
  snapset::mock::ArrayOptions options;
  options.name = name;
  options.state_dir = state_dir;
  options.target_prefix = "iqn.2026-11.io.snapset.mock:" + name;
  options.iscsi_portal = iscsi->host + ":" + std::to_string((*tgt)->port());
  options.pool_capacity_bytes = pool_bytes;
  options.async_operations = async_operations;
  options.dialect = dialect;
  options.exclusive_groups = exclusive_groups;
  // The twophase dialect's fences hold writes in a FUSE gate that tgtd
  // serves the LUNs through. One left mounted by a killed array is stale.
  std::unique_ptr<snapset::mock::WriteGate> gate;
  if (dialect == "twophase") {
    const std::string gate_dir = state_dir + "/gate";
    umount2(gate_dir.c_str(), MNT_DETACH);
    if (mkdir(gate_dir.c_str(), 0700) != 0 && errno != EEXIST)
      return Fail(Status::Internal("creating " + gate_dir + ": " + strerror(errno)));
    auto mounted = snapset::mock::WriteGate::Mount(state_dir + "/volumes", gate_dir);
    if (!mounted.ok()) return Fail(mounted.status());
    gate = std::move(*mounted);
  }
  snapset::mock::MockArray array(options, store->get(), tgt->get(), &sessions);
  array.set_write_gate(gate.get());
  Status recovered = array.Recover();
  if (!recovered.ok()) return Fail(recovered);

  std::unique_ptr<httplib::Server> server_owner;
  if (tls) {
    auto ssl = std::make_unique<httplib::SSLServer>(tls_cert.c_str(), tls_key.c_str());
    if (!ssl->is_valid()) {
      return Fail(Status::Config("cannot set up TLS with --tls-cert " + tls_cert +
                                 " and --tls-key " + tls_key + ": " + OpensslError()));
    }
    server_owner = std::move(ssl);
  } else {
    server_owner = std::make_unique<httplib::Server>();
  }
  httplib::Server& server = *server_owner;
  // httplib writes headers and body separately; without TCP_NODELAY a
  // kept-alive client's delayed ACK holds the body back ~40 ms.
  server.set_tcp_nodelay(true);
  array.Register(server);
  int rest_port = rest->port;
  if (rest_port == 0) {
    rest_port = server.bind_to_any_port(rest->host);
  } else if (!server.bind_to_port(rest->host, rest_port)) {
    rest_port = -1;
  }
  if (rest_port <= 0) return Fail(Status::Unavailable("cannot listen on " + listen));

  std::thread stopper([&server, stop_signals] {
    int signal_number = 0;
    sigwait(&stop_signals, &signal_number);
    server.stop();
  });

  std::printf(
      "{\"ready\":true,\"pid\":%d,\"name\":\"%s\",\"rest\":\"%s://%s:%d\","
      "\"iscsi_portal\":\"%s:%d\",\"target_prefix\":\"%s\",\"state_dir\":\"%s\"}\n",
      static_cast<int>(getpid()), JsonEscape(name).c_str(), tls ? "https" : "http",
      rest->host.c_str(), rest_port, iscsi->host.c_str(), (*tgt)->port(),
      JsonEscape(options.target_prefix).c_str(), JsonEscape(state_dir).c_str());
  std::fflush(stdout);

  server.listen_after_bind();
  // listen_after_bind also returns on an error; make sure the stopper ends.
  kill(getpid(), SIGTERM);
  stopper.join();
  // No request is served any more; tasks already started finish against a
  // live tgtd, and the fault timer stops, before tgtd stops.
  array.Quiesce();
  (*tgt)->Stop();
  gate.reset();  // tgtd has closed the LUN files it served from it
  return 0;
}
