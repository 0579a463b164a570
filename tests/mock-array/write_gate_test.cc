// SPDX-License-Identifier: Apache-2.0
// The mock array's write gate, mounted for real (FUSE, needs root): a held
// file's writes wait until the hold is lifted or reaches its deadline, while
// its reads and every other file's writes go on; a write that waited lands
// in the file.
#define BOOST_TEST_MODULE mock_write_gate
#include "providers/mock-array/write_gate.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <string>
#include <thread>

#include "tests/support/temp_dir.hpp"

namespace snapset::test {
namespace {

using mock::WriteGate;
using std::chrono::milliseconds;

bool FuseAvailable() {
  if (::geteuid() == 0 && ::access("/dev/fuse", R_OK | W_OK) == 0) return true;
  BOOST_TEST_REQUIRE(std::getenv("CI") == nullptr, "CI must run the write gate test as root");
  BOOST_TEST_MESSAGE("skipped: the write gate needs root and /dev/fuse");
  return false;
}

struct Gate {
  Gate() {
    std::filesystem::create_directories(dir.path() / "volumes");
    std::filesystem::create_directories(dir.path() / "gate");
    for (const char* name : {"1.img", "2.img"}) {
      std::ofstream(dir.path() / "volumes" / name) << std::string(4096, 'o');
    }
    Result<std::unique_ptr<WriteGate>> g =
        WriteGate::Mount((dir.path() / "volumes").string(), (dir.path() / "gate").string());
    BOOST_TEST_REQUIRE(g.ok(), g.status().ToString());
    gate = std::move(*g);
  }
  // Writes `text` at offset 0 of `name` through the gate, as tgtd does.
  std::future<ssize_t> WriteAsync(const std::string& name, const std::string& text) {
    const std::string path = (dir.path() / "gate" / name).string();
    return std::async(std::launch::async, [path, text] {
      const int fd = ::open(path.c_str(), O_RDWR);
      if (fd < 0) return ssize_t(-1);
      const ssize_t n = ::pwrite(fd, text.data(), text.size(), 0);
      ::close(fd);
      return n;
    });
  }
  std::string ReadDirect(const std::string& name) {
    std::ifstream in(dir.path() / "volumes" / name);
    std::string s;
    std::getline(in, s, '\0');
    return s.substr(0, 5);
  }
  std::string ReadThroughGate(const std::string& name) {
    const int fd = ::open((dir.path() / "gate" / name).c_str(), O_RDONLY);
    char buf[5] = {};
    const ssize_t n = fd < 0 ? -1 : ::pread(fd, buf, sizeof buf, 0);
    if (fd >= 0) ::close(fd);
    return n == 5 ? std::string(buf, 5) : "";
  }

  TempDir dir;
  std::unique_ptr<WriteGate> gate;  // unmounted before dir goes
};

// Waits until the gate holds `n` writes, for at most 5 s.
bool WaitingBecomes(WriteGate& gate, int n) {
  for (int i = 0; i < 500; ++i) {
    if (gate.waiting() == n) return true;
    std::this_thread::sleep_for(milliseconds(10));
  }
  return false;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_held_write_waits_until_lifted_and_then_lands) {
  if (!FuseAvailable()) return;
  Gate g;
  const uint64_t hold = g.gate->Hold({"1.img"}, WriteGate::Clock::now() + std::chrono::seconds(30));
  std::future<ssize_t> held = g.WriteAsync("1.img", "HELD!");
  BOOST_TEST_REQUIRE(WaitingBecomes(*g.gate, 1));
  BOOST_TEST((held.wait_for(milliseconds(300)) == std::future_status::timeout));
  BOOST_TEST(g.ReadDirect("1.img") == "ooooo");  // nothing written yet

  // Reads of the held file and writes of another go on.
  BOOST_TEST(g.ReadThroughGate("1.img") == "ooooo");
  std::future<ssize_t> other = g.WriteAsync("2.img", "free!");
  BOOST_TEST_REQUIRE((other.wait_for(std::chrono::seconds(5)) == std::future_status::ready));
  BOOST_TEST(other.get() == 5);
  BOOST_TEST(g.ReadDirect("2.img") == "free!");

  g.gate->Lift(hold);
  BOOST_TEST_REQUIRE((held.wait_for(std::chrono::seconds(5)) == std::future_status::ready));
  BOOST_TEST(held.get() == 5);
  BOOST_TEST(g.ReadDirect("1.img") == "HELD!");
  BOOST_TEST(g.gate->Holds().empty());
}

BOOST_AUTO_TEST_CASE(a_hold_lifts_itself_at_its_deadline) {
  if (!FuseAvailable()) return;
  Gate g;
  const auto start = WriteGate::Clock::now();
  g.gate->Hold({"1.img", "2.img"}, start + milliseconds(400));
  BOOST_TEST(g.gate->Holds().size() == 1u);
  std::future<ssize_t> held = g.WriteAsync("2.img", "later");
  BOOST_TEST_REQUIRE((held.wait_for(std::chrono::seconds(5)) == std::future_status::ready));
  const auto waited = WriteGate::Clock::now() - start;
  BOOST_TEST(held.get() == 5);
  BOOST_TEST((waited >= milliseconds(350)), "the write waited for the hold");
  BOOST_TEST((waited < milliseconds(3000)), "the hold ended at its deadline");
  BOOST_TEST(g.gate->Holds().empty());
  BOOST_TEST(g.ReadDirect("2.img") == "later");
}

}  // namespace snapset::test
