// The host log behind snapset_host.log must never block a provider, even
// when its sink is slow: lines are queued or dropped and counted.
#define BOOST_TEST_MODULE host_log
#include <boost/test/unit_test.hpp>

#include <snapset/provider.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "core/host_log.hpp"

using namespace snapset;

BOOST_AUTO_TEST_CASE(lines_reach_the_sink_in_order_from_one_thread) {
  std::mutex mu;
  std::vector<std::string> seen;
  {
    HostLog log([&](const LogLine& l) {
      std::lock_guard<std::mutex> lock(mu);
      seen.push_back(l.source + ":" + l.message);
    });
    for (int i = 0; i < 100; ++i) log.Push(SNAPSET_LOG_INFO, "p", std::to_string(i));
    log.Flush();
  }
  BOOST_TEST_REQUIRE(seen.size() == 100u);
  for (int i = 0; i < 100; ++i) BOOST_TEST(seen[i] == "p:" + std::to_string(i));
}

BOOST_AUTO_TEST_CASE(a_stuck_sink_never_blocks_push) {
  // The sink blocks until released, as a stalled terminal or disk would.
  std::atomic<bool> release{false};
  std::atomic<uint64_t> written{0};
  uint64_t dropped = 0;
  const int kThreads = 4, kPerThread = 5000;
  {
    HostLog log(
        [&](const LogLine&) {
          while (!release.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
          written++;
        },
        /*capacity=*/256);
    std::vector<std::thread> threads;
    std::atomic<int> done{0};
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&] {
        for (int i = 0; i < kPerThread; ++i) log.Push(SNAPSET_LOG_DEBUG, "p", "line");
        done++;
      });
    }
    for (auto& th : threads) th.join();
    // Every Push returned while the sink was still stuck.
    BOOST_TEST(done.load() == kThreads);
    BOOST_TEST(written.load() == 0u);
    dropped = log.dropped();
    BOOST_TEST(dropped > 0u);
    release = true;
    log.Flush();
  }
  // Nothing lost silently: each line was either written or counted dropped.
  BOOST_TEST(written.load() + dropped == uint64_t(kThreads) * kPerThread);
}
