// snapset-demo-lun: the demo's application on array LUNs, over libiscsi (no
// kernel iSCSI needed). It writes an increasing counter to block 0 of every
// LUN in turn, each write acknowledged before the next, so that at any
// instant the LUNs, in the order given, hold c, ..., c, c-1, ..., c-1. A
// snapshot of them taken at one instant shows such a cut; one taken LUN by
// LUN while the writer runs shows a gap or an inversion. `check` reads the
// LUNs (snapshots exposed by snapset) and says which it is.
//
//   snapset-demo-lun write --initiator IQN [--status FILE] URL...
//       writes rounds until SIGINT/SIGTERM; FILE holds the last round every
//       LUN acknowledged (rewritten after each round)
//   snapset-demo-lun check --initiator IQN URL...
//       prints each LUN's counter and whether they form one instant;
//       exit 0 if they do, 1 if not, 2 on an error
//
// Not part of snapset: a small libiscsi program for scripts/demo.sh.
#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

constexpr int kBlock = 512;
std::atomic<bool> g_stop{false};

// One logged-in session to one LUN (libiscsi: this thread only).
class Lun {
 public:
  Lun(const std::string& url, const std::string& initiator) : url_(url) {
    ctx_ = iscsi_create_context(initiator.c_str());
    if (ctx_ == nullptr) throw std::runtime_error("iscsi_create_context failed");
    iscsi_url* u = iscsi_parse_full_url(ctx_, url.c_str());
    if (u == nullptr) Fail("bad URL");
    iscsi_set_targetname(ctx_, u->target);
    iscsi_set_session_type(ctx_, ISCSI_SESSION_NORMAL);
    iscsi_set_header_digest(ctx_, ISCSI_HEADER_DIGEST_NONE_CRC32C);
    iscsi_set_timeout(ctx_, 10);
    lun_ = u->lun;
    const std::string portal = u->portal;
    iscsi_destroy_url(u);
    if (iscsi_full_connect_sync(ctx_, portal.c_str(), lun_) != 0) Fail("login failed");
  }
  ~Lun() {
    if (iscsi_is_logged_in(ctx_)) iscsi_logout_sync(ctx_);
    iscsi_destroy_context(ctx_);
  }
  Lun(const Lun&) = delete;
  Lun& operator=(const Lun&) = delete;

  void WriteCounter(unsigned long long n) {
    std::vector<unsigned char> block(kBlock, 0);
    std::snprintf(reinterpret_cast<char*>(block.data()), kBlock, "counter=%llu;", n);
    scsi_task* t = iscsi_write16_sync(ctx_, lun_, 0, block.data(), kBlock, kBlock, 0, 0, 0, 0, 0);
    Check(t, "WRITE16");
  }
  unsigned long long ReadCounter() {
    scsi_task* t = iscsi_read16_sync(ctx_, lun_, 0, kBlock, kBlock, 0, 0, 0, 0, 0);
    Check(t, "READ16", false);
    std::string text(reinterpret_cast<const char*>(t->datain.data),
                     std::min<size_t>(t->datain.size, 64));
    scsi_free_scsi_task(t);
    if (text.rfind("counter=", 0) != 0) return 0;  // never written
    return std::stoull(text.substr(8));
  }
  const std::string& url() const { return url_; }

 private:
  [[noreturn]] void Fail(const std::string& what) {
    std::string msg = url_ + ": " + what + ": " + iscsi_get_error(ctx_);
    throw std::runtime_error(msg);
  }
  void Check(scsi_task* t, const char* op, bool free_it = true) {
    if (t == nullptr) Fail(op);
    if (t->status != SCSI_STATUS_GOOD) {
      scsi_free_scsi_task(t);
      Fail(std::string(op) + " was refused");
    }
    if (free_it) scsi_free_scsi_task(t);
  }

  std::string url_;
  iscsi_context* ctx_ = nullptr;
  int lun_ = 0;
};

int Usage() {
  std::cerr << "usage: snapset-demo-lun write --initiator IQN [--status FILE] URL...\n"
               "       snapset-demo-lun check --initiator IQN URL...\n";
  return 2;
}

int Write(const std::string& initiator, const std::string& status,
          const std::vector<std::string>& urls) {
  std::vector<std::unique_ptr<Lun>> luns;
  for (const std::string& url : urls) luns.push_back(std::make_unique<Lun>(url, initiator));
  unsigned long long round = 0;
  while (!g_stop) {
    ++round;
    for (auto& lun : luns) lun->WriteCounter(round);
    if (!status.empty()) {  // replaced whole, so a reader never sees it half written
      std::ofstream(status + ".new", std::ios::trunc) << round << "\n";
      std::rename((status + ".new").c_str(), status.c_str());
    }
  }
  std::cout << "snapset-demo-lun: stopped after round " << round << "\n";
  return 0;
}

int Check(const std::string& initiator, const std::vector<std::string>& urls) {
  std::vector<unsigned long long> seen;
  for (const std::string& url : urls) {
    Lun lun(url, initiator);
    seen.push_back(lun.ReadCounter());
    std::cout << "  " << url << "  counter=" << seen.back() << "\n";
  }
  // One instant: c..c then c-1..c-1, in write order.
  bool one_instant = true;
  bool dropped = false;
  for (unsigned long long v : seen) {
    if (v + 1 == seen.front()) {
      dropped = true;
    } else if (v != seen.front() || dropped) {
      one_instant = false;
    }
  }
  std::cout << (one_instant ? "  one instant: every LUN holds the round of the same moment\n"
                            : "  NOT one instant: the LUNs hold rounds no single moment had\n");
  return one_instant ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return Usage();
  const std::string mode = argv[1];
  std::string initiator, status;
  std::vector<std::string> urls;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    if ((a == "--initiator" || a == "--status") && i + 1 < argc) {
      (a == "--initiator" ? initiator : status) = argv[++i];
    } else if (a.rfind("iscsi://", 0) == 0) {
      urls.push_back(a);
    } else {
      return Usage();
    }
  }
  if (initiator.empty() || urls.empty() || (mode != "write" && mode != "check")) return Usage();
  struct sigaction sa {};
  sa.sa_handler = [](int) { g_stop = true; };
  sa.sa_flags = SA_RESTART;  // a signal ends the loop, not the I/O under way
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  try {
    return mode == "write" ? Write(initiator, status, urls) : Check(initiator, urls);
  } catch (const std::exception& e) {
    std::cerr << "snapset-demo-lun: " << e.what() << "\n";
    return 2;
  }
}
