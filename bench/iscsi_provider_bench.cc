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
// Usage: iscsi_provider_bench [--runs 30] [--warmup 2] [--dir DIR] [--quick]
// --quick: 3 runs, no warm-up, 1 and 2 LUNs on one array and 2 over 2 arrays
// (the smoke test). Output: a Markdown table, then one JSON line per
// configuration (starting with {"bench":"iscsi_provider_bench").
// Exit status: 0 measured (a missed target is reported, not an error),
// 1 error, 2 cannot run here (not root, no tgtd).
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
};

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
  Array(const std::string& dir, const std::string& name)
      : process_(dir, {"--name", name}), token_(process_.Login()) {
    endpoint_.base_url = process_.rest();
    endpoint_.user = "admin";
    endpoint_.password = "admin";
    endpoint_.insecure = true;  // loopback HTTP: the bench measures the provider, not TLS
  }
  // Volumes until it has `n`, in creation order.
  std::vector<ArrayVolume> Volumes(int n) {
    while (static_cast<int>(made_.size()) < n) {
      const std::string name = "lun" + std::to_string(made_.size() + 1);
      snapset::test::HttpResponse r =
          snapset::test::Http("POST", process_.Url(kVolumes),
                              R"({"Name":")" + name + R"(","CapacityBytes":16777216})", token_);
      if (r.status != 201) throw std::runtime_error("creating " + name + ": " + r.body);
      made_.push_back(r.Json()["@odata.id"].GetString());
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
    return snapset::swordfish::MakeSwordfishDriver(endpoint_);
  }
  const RestEndpoint& endpoint() const { return endpoint_; }

 private:
  MockArrayProcess process_;
  std::string token_;
  RestEndpoint endpoint_;
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
  const ArrayCall window{Clock::now() + std::chrono::seconds(10), false, 1};
  const Clock::time_point t0 = Clock::now();
  Check(snapset::iscsi::RunOnEveryPart(parts, [&](ArraySetPart& p) { return p.Commit(window); }),
        "commit");
  r.commit_ms = Ms(Clock::now() - t0);
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

// The baseline: one GET of the storage resource on a warm session.
double WarmGetMs(RestSession& session) {
  const Clock::time_point t0 = Clock::now();
  Result<snapset::rest::RestResponse> r = session.Call("GET", "/redfish/v1/Storage/array");
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
    } else {
      std::cerr << "usage: iscsi_provider_bench [--runs N] [--warmup N] [--dir DIR] [--quick]\n";
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
    Array a((work / "a").string(), "a");
    Array b((work / "b").string(), "b");
    std::vector<Array*> both = {&a, &b};
    RestSession baseline(a.endpoint());
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
      std::vector<double> commit, get;
      Phases requests;
      int window_max = 0, window_min = 1 << 30;
      for (int run = 0; run < o.warmup + o.runs; ++run) {
        const double g = WarmGetMs(baseline);  // interleaved with the sets: same noise
        RunResult r = OneSet(arrays, luns, ++set_number);
        for (int n : r.commit_requests_per_array) {
          window_max = std::max(window_max, n);
          window_min = std::min(window_min, n);
        }
        if (run < o.warmup) continue;
        commit.push_back(r.commit_ms);
        get.push_back(g);
        requests = r.requests;  // the same every run
      }
      const double c50 = Percentile(commit, 50), c99 = Percentile(commit, 99);
      const double g50 = Percentile(get, 50);
      const bool one_per_array = window_min == 1 && window_max == 1;
      char row[512];
      std::snprintf(row, sizeof row,
                    "| %s | %.1f | %.1f | %.2f | %.1f× | %d = %d + %d + %d + %d | %s |\n",
                    c.name.c_str(), c50, c99, g50, c50 / g50, requests.total(), requests.prepare,
                    requests.warm, requests.commit, requests.finish,
                    one_per_array ? "1 (target: 1)" : "MISSED: not 1");
      std::cout << row;
      char line[512];
      std::snprintf(line, sizeof line,
                    "{\"bench\":\"iscsi_provider_bench\",\"config\":\"%s\",\"runs\":%d,"
                    "\"commit_ms\":{\"p50\":%.3f,\"p99\":%.3f},\"warm_get_ms\":{\"p50\":%.3f},"
                    "\"requests\":{\"prepare\":%d,\"pre_commit\":%d,\"commit\":%d,"
                    "\"post_commit\":%d},\"window_requests_per_array\":%d}",
                    c.name.c_str(), o.runs, c50, c99, g50, requests.prepare, requests.warm,
                    requests.commit, requests.finish, one_per_array ? 1 : window_max);
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
