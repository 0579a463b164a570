// iscsi_provider_bench: what the iSCSI hardware provider costs per snapshot
// set against real snapset-mock-array processes (docs/benchmarks.md,
// "iscsi_provider_bench"):
//   - commit latency: the provider's commit step (one ConsistencyGroup.
//     CreateReplicaTarget per array, the arrays in parallel), p50 and p99,
//     as a ratio of the baseline measured in the same runs: one warm REST
//     GET of the storage resource on a session that is already logged in
//     (the floor of any request to the array);
//   - REST requests per set, by phase (prepare, pre-commit, commit,
//     post-commit), and the requests inside the commit window per array,
//     which must be exactly 1.
// Configurations: 1, 8 and 32 LUNs on one array, and 8 LUNs over 2 arrays
// (4 + 4). The LUNs are created untimed and left unwritten (sparse): the
// copy work of the array is measured by mock_array_cg_bench; this measures
// the provider's path.
//
// It drives the same code the plugin runs for each array of a set
// (ArraySetPart over the Swordfish dialect, RunOnEveryPart for the arrays in
// parallel): Prepare (log in, find or create the group), Warm, Commit,
// Finish (remove the temporary group), each set with fresh sessions, as
// the plugin does. The replicas are deleted after each run, untimed.
//
// --dialect twophase measures the same over the mock's second dialect through
// the example driver (examples/twophase-driver, loaded with dlopen as the
// provider loads it), with the window as the provider runs it there: one
// fence per array (all up before any commit), the commits, the lifts. It
// adds the time the writes were fenced, as a ratio of the window (10 s).
// Its window requests include the fence, the job's polls and the lift.
//
// Usage: iscsi_provider_bench [--runs 30] [--warmup 2] [--dir DIR] [--quick]
//                             [--dialect swordfish|twophase]
// --quick: 3 runs, no warm-up, 1 and 2 LUNs on one array and 2 over 2 arrays
// (the smoke test). Output: a Markdown table, then one JSON line per
// configuration (starting with {"bench":"iscsi_provider_bench").
// Exit status: 0 measured (a missed target is reported, not an error),
// 1 error, 2 cannot run here (not root, no tgtd).
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>
#include <snapset/array.hpp>
#include <snapset/rest.hpp>
#include <string>
#include <vector>

#include "core/run_command.hpp"
#include "providers/iscsi/array_set_part.hpp"
#include "providers/iscsi/driver_library.hpp"
#include "swordfish_driver.hpp"
#include "tests/mock-array/mock_array_process.hpp"

namespace {

using snapset::ArrayCall;
using snapset::ArrayDriver;
using snapset::ArrayVolume;
using snapset::Result;
using snapset::Status;
using snapset::iscsi::ArraySetPart;
using snapset::rest::RestEndpoint;
using snapset::rest::RestSession;
using snapset::test::MockArrayProcess;
using Clock = std::chrono::steady_clock;

constexpr char kVolumes[] = "/redfish/v1/Storage/array/Volumes";

struct Options {
  int runs = 30;
  int warmup = 2;
  std::string dir = "/tmp";
  bool quick = false;
  std::string dialect = "swordfish";
};

// The twophase dialect's log-in, as the example driver makes it.
snapset::rest::RestLogin TwoPhaseLogin() {
  snapset::rest::RestLogin login;
  login.path = "/api/v2/auth/login";
  login.user_field = "username";
  login.password_field = "password";
  login.token_response_header = "";
  login.token_field = "access_token";
  login.token_header = "X-TP-Session";
  login.probe_path = "/api/v2/fences";
  return login;
}

struct Config {
  std::string name;
  std::vector<int> luns_per_array;  // {8} or {4, 4}
};

struct Phases {
  int prepare = 0, warm = 0, commit = 0, finish = 0;
  int total() const { return prepare + warm + commit + finish; }
};

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// Nearest rank: p99 of 30 samples is the largest.
double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  size_t rank = static_cast<size_t>(p / 100.0 * static_cast<double>(v.size()) + 0.999999);
  return v[std::clamp<size_t>(rank, 1, v.size()) - 1];
}

void Check(const Status& s, const std::string& what) {
  if (!s.ok()) throw std::runtime_error(what + ": " + s.ToString());
}

class Array {
 public:
  Array(const std::string& dir, const std::string& name, const std::string& dialect)
      : process_(dir, {"--name", name, "--dialect", dialect}),
        token_(process_.Login()),
        twophase_(dialect == "twophase") {
    endpoint_.base_url = process_.rest();
    endpoint_.user = "admin";
    endpoint_.password = "admin";
    endpoint_.insecure = true;  // loopback HTTP: the bench measures the provider, not TLS
    if (twophase_) {
      endpoint_.login = TwoPhaseLogin();
      // The driver's config, as the provider gives it.
      const std::string cred = dir + "/admin.cred";
      std::FILE* f = std::fopen(cred.c_str(), "w");
      if (!f) throw std::runtime_error("cannot write " + cred);
      std::fputs(R"({"UserName":"admin","Password":"admin"})", f);
      std::fclose(f);
      ::chmod(cred.c_str(), 0600);
      driver_config_ = R"({"rest_url":")" + endpoint_.base_url + R"(","credentials_file":")" +
                       cred + R"(","insecure":true})";
      Result<std::shared_ptr<const snapset::iscsi::DriverLibrary>> lib =
          snapset::iscsi::DriverLibrary::Load(SNAPSET_TWOPHASE_DRIVER);
      Check(lib.status(), "loading the twophase driver");
      library_ = *lib;
    }
  }
  // Volumes until it has `n`, in creation order.
  std::vector<ArrayVolume> Volumes(int n) {
    while (static_cast<int>(made_.size()) < n) {
      const std::string name = "lun" + std::to_string(made_.size() + 1);
      snapset::test::HttpOptions o;
      if (twophase_) o.headers.push_back("X-TP-Session: " + token_);
      snapset::test::HttpResponse r =
          twophase_
              ? snapset::test::Http("POST", process_.Url("/api/v2/luns"),
                                    R"({"label":")" + name + R"(","size_bytes":16777216})", "", o)
              : snapset::test::Http("POST", process_.Url(kVolumes),
                                    R"({"Name":")" + name + R"(","CapacityBytes":16777216})",
                                    token_);
      if (r.status != 201) throw std::runtime_error("creating " + name + ": " + r.body);
      made_.push_back(twophase_ ? r.Json()["id"].GetString() : r.Json()["@odata.id"].GetString());
    }
    std::unique_ptr<ArrayDriver> d = Dialect();
    Result<std::vector<ArrayVolume>> all = d->Inventory(ArrayCall{});
    Check(all.status(), "inventory");
    std::vector<ArrayVolume> out;
    for (int i = 0; i < n; ++i) {
      for (const ArrayVolume& v : *all) {
        if (v.id == made_[i]) out.push_back(v);
      }
    }
    return out;
  }
  std::unique_ptr<ArrayDriver> Dialect() const {
    if (!twophase_) return snapset::swordfish::MakeSwordfishDriver(endpoint_);
    Result<std::unique_ptr<ArrayDriver>> d = library_->Open(driver_config_, ArrayCall{}, nullptr);
    Check(d.status(), "opening the twophase driver");
    return std::move(*d);
  }
  const RestEndpoint& endpoint() const { return endpoint_; }
  bool twophase() const { return twophase_; }

 private:
  MockArrayProcess process_;
  std::string token_;
  bool twophase_;
  RestEndpoint endpoint_;
  std::string driver_config_;
  std::shared_ptr<const snapset::iscsi::DriverLibrary> library_;
  std::vector<std::string> made_;
};

// A UUID-shaped id for snapshot n of set `set` (both below 10^6).
std::string Uuid(int set, int n) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "00000000-0000-4000-8000-%06d%06d", set % 1000000, n % 1000000);
  return buf;
}

struct RunResult {
  double commit_ms = 0;
  double fenced_ms = 0;  // twophase: from the first fence sent to the last lift answered
  Phases requests;
  std::vector<int> commit_requests_per_array;
};

// One set over `arrays`, as the plugin runs it.
RunResult OneSet(std::vector<Array*>& arrays, const std::vector<std::vector<ArrayVolume>>& luns,
                 int set_number) {
  const std::string set_id = Uuid(set_number, 0);
  std::vector<std::shared_ptr<ArraySetPart>> parts;
  int n = 0;
  for (size_t a = 0; a < arrays.size(); ++a) {
    auto part =
        std::make_shared<ArraySetPart>("array" + std::to_string(a), set_id, arrays[a]->Dialect());
    for (const ArrayVolume& v : luns[a]) {
      Check(part->Add({Uuid(set_number, ++n), v.name, v}), "add");
    }
    parts.push_back(part);
  }
  auto count = [&] {
    int total = 0;
    for (const auto& p : parts) total += p->requests();
    return total;
  };
  RunResult r;
  const ArrayCall patient{Clock::now() + std::chrono::seconds(60), true};
  Check(snapset::iscsi::RunOnEveryPart(parts, [&](ArraySetPart& p) { return p.Prepare(patient); }),
        "prepare");
  r.requests.prepare = count();
  Check(snapset::iscsi::RunOnEveryPart(parts, [&](ArraySetPart& p) { return p.Warm(patient); }),
        "warm");
  r.requests.warm = count() - r.requests.prepare;
  std::vector<int> before;
  for (const auto& p : parts) before.push_back(p->requests());
  const ArrayCall window{Clock::now() + std::chrono::seconds(10), false, true};
  const bool fenced = arrays.front()->twophase();
  const Clock::time_point fenced_at = Clock::now();
  if (fenced)
    Check(snapset::iscsi::RunOnEveryPart(parts, [&](ArraySetPart& p) { return p.Fence(window); }),
          "fence");
  const Clock::time_point t0 = Clock::now();
  Check(snapset::iscsi::RunOnEveryPart(parts, [&](ArraySetPart& p) { return p.Commit(window); }),
        "commit");
  r.commit_ms = Ms(Clock::now() - t0);
  if (fenced) {
    Check(
        snapset::iscsi::RunOnEveryPart(parts, [&](ArraySetPart& p) { return p.LiftFence(window); }),
        "lift");
    r.fenced_ms = Ms(Clock::now() - fenced_at);
  }
  for (size_t i = 0; i < parts.size(); ++i) {
    r.commit_requests_per_array.push_back(parts[i]->requests() - before[i]);
  }
  r.requests.commit = count() - r.requests.prepare - r.requests.warm;
  const int before_finish = count();
  Check(snapset::iscsi::RunOnEveryPart(parts, [&](ArraySetPart& p) { return p.Finish(patient); }),
        "finish");
  r.requests.finish = count() - before_finish;
  // Untimed: the replicas go (Abort deletes by name).
  Check(snapset::iscsi::RunOnEveryPart(parts, [&](ArraySetPart& p) { return p.Abort(patient); }),
        "clean-up");
  return r;
}

// The baseline: one GET of a small resource on a warm session (Swordfish:
// the storage; twophase: the fences, an in-memory list).
double WarmGetMs(RestSession& session, bool twophase) {
  const Clock::time_point t0 = Clock::now();
  Result<snapset::rest::RestResponse> r =
      session.Call("GET", twophase ? "/api/v2/fences" : "/redfish/v1/Storage/array");
  const double ms = Ms(Clock::now() - t0);
  Check(r.status(), "GET storage");
  return ms;
}

int Main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error(a + " needs a value");
      return argv[++i];
    };
    if (a == "--runs") {
      o.runs = std::stoi(value());
    } else if (a == "--warmup") {
      o.warmup = std::stoi(value());
    } else if (a == "--dir") {
      o.dir = value();
    } else if (a == "--quick") {
      o.quick = true;
    } else if (a == "--dialect") {
      o.dialect = value();
      if (o.dialect != "swordfish" && o.dialect != "twophase")
        throw std::runtime_error("--dialect is swordfish or twophase, not " + o.dialect);
    } else {
      std::cerr << "usage: iscsi_provider_bench [--runs N] [--warmup N] [--dir DIR] [--quick] "
                   "[--dialect swordfish|twophase]\n";
      return 1;
    }
  }
  if (o.runs < 1 || o.warmup < 0) {
    std::cerr << "iscsi_provider_bench: --runs must be at least 1, --warmup at least 0\n";
    return 1;
  }
  if (o.quick) {
    o.runs = 3;
    o.warmup = 0;
  }
  if (geteuid() != 0 || !snapset::HaveProgram("tgtd")) {
    std::cerr << "iscsi_provider_bench: needs root and tgtd (Debian package tgt)\n";
    return 2;
  }
  std::vector<Config> configs;
  auto add = [&](const char* name, std::vector<int> luns) {
    configs.push_back(Config{name, std::move(luns)});
  };
  if (o.quick) {
    add("1 LUN, 1 array", {1});
    add("2 LUNs, 1 array", {2});
    add("2 LUNs, 2 arrays", {1, 1});
  } else {
    add("1 LUN, 1 array", {1});
    add("8 LUNs, 1 array", {8});
    add("32 LUNs, 1 array", {32});
    add("8 LUNs, 2 arrays", {4, 4});
  }
  const std::filesystem::path work =
      std::filesystem::path(o.dir) / ("snapset-iscsi-bench." + std::to_string(getpid()));
  std::filesystem::create_directories(work);
  struct Cleanup {
    std::filesystem::path dir;
    ~Cleanup() {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  } cleanup{work};
  {
    Array a((work / "a").string(), "a", o.dialect);
    Array b((work / "b").string(), "b", o.dialect);
    const bool twophase = o.dialect == "twophase";
    std::vector<Array*> both = {&a, &b};
    RestSession baseline(a.endpoint());  // the dialect's own log-in
    Check(baseline.Warm(), "warm");
    std::cout << "| configuration | commit p50 ms | commit p99 ms | warm GET p50 ms | commit p50 / "
                 "GET p50 | REST requests per set (prepare + pre-commit + commit + post-commit) "
                 "| in the window, per array |\n|---|---|---|---|---|---|---|\n";
    std::vector<std::string> json;
    int set_number = 0;
    for (const Config& c : configs) {
      std::vector<Array*> arrays(both.begin(), both.begin() + c.luns_per_array.size());
      std::vector<std::vector<ArrayVolume>> luns;
      for (size_t i = 0; i < arrays.size(); ++i)
        luns.push_back(arrays[i]->Volumes(c.luns_per_array[i]));
      std::vector<double> commit, get, fenced;
      Phases requests;
      int window_max = 0, window_min = 1 << 30;
      for (int run = 0; run < o.warmup + o.runs; ++run) {
        const double g = WarmGetMs(baseline, twophase);  // interleaved with the sets: same noise
        RunResult r = OneSet(arrays, luns, ++set_number);
        for (int n : r.commit_requests_per_array) {
          window_max = std::max(window_max, n);
          window_min = std::min(window_min, n);
        }
        if (run < o.warmup) continue;
        commit.push_back(r.commit_ms);
        fenced.push_back(r.fenced_ms);
        get.push_back(g);
        requests = r.requests;  // the same every run
      }
      const double c50 = Percentile(commit, 50), c99 = Percentile(commit, 99);
      const double g50 = Percentile(get, 50);
      // Swordfish: the commit is one request per array. twophase: the fence,
      // the commit, its job's polls and the lift are all in the window.
      const bool one_per_array = window_min == 1 && window_max == 1;
      const double f50 = Percentile(fenced, 50);
      char row[512];
      std::snprintf(
          row, sizeof row, "| %s | %.1f | %.1f | %.2f | %.1f× | %d = %d + %d + %d + %d | %s |\n",
          c.name.c_str(), c50, c99, g50, c50 / g50, requests.total(), requests.prepare,
          requests.warm, requests.commit, requests.finish,
          twophase
              ? (std::to_string(window_min) + "-" + std::to_string(window_max) +
                 " (fence, commit, polls; writes fenced p50 " + std::to_string(int(f50 + 0.5)) +
                 " ms = " + std::to_string(f50 / 100.0).substr(0, 5) + "% of the window)")
                    .c_str()
          : one_per_array ? "1 (target: 1)"
                          : "MISSED: not 1");
      std::cout << row;
      char line[512];
      std::snprintf(
          line, sizeof line,
          "{\"bench\":\"iscsi_provider_bench\",\"dialect\":\"%s\",\"config\":\"%s\",\"runs\":%d,"
          "\"commit_ms\":{\"p50\":%.3f,\"p99\":%.3f},\"warm_get_ms\":{\"p50\":%.3f},"
          "\"requests\":{\"prepare\":%d,\"pre_commit\":%d,\"commit\":%d,"
          "\"post_commit\":%d},\"window_requests_per_array\":%d,"
          "\"fenced_ms\":{\"p50\":%.3f},\"fenced_of_window\":%.5f}",
          o.dialect.c_str(), c.name.c_str(), o.runs, c50, c99, g50, requests.prepare, requests.warm,
          requests.commit, requests.finish, one_per_array ? 1 : window_max, f50, f50 / 10000.0);
      json.push_back(line);
    }
    for (const std::string& l : json) std::cout << l << "\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Main(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "iscsi_provider_bench: " << e.what() << "\n";
    return 1;
  }
}
