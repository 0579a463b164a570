// RunCommand: output and exit status of a helper program, and a timeout that
// kills a hung one instead of hanging its caller.
#define BOOST_TEST_MODULE run_command
#include "core/run_command.hpp"

#include <boost/test/unit_test.hpp>
#include <chrono>

namespace snapset {
namespace {

using Clock = std::chrono::steady_clock;

BOOST_AUTO_TEST_CASE(output_and_exit_status_come_back) {
  CommandResult r = RunCommand({"sh", "-c", "echo out; echo err >&2; exit 3"});
  BOOST_TEST(r.exit_code == 3);
  BOOST_TEST(r.output == "out\nerr\n");
  BOOST_TEST(!r.timed_out);
}

BOOST_AUTO_TEST_CASE(a_program_within_its_timeout_is_not_disturbed) {
  CommandResult r = RunCommand({"sh", "-c", "sleep 0.1; echo done"}, std::chrono::seconds(10));
  BOOST_TEST(r.exit_code == 0);
  BOOST_TEST(r.output == "done\n");
  BOOST_TEST(!r.timed_out);
}

BOOST_AUTO_TEST_CASE(a_hung_program_is_killed_at_its_timeout) {
  const auto start = Clock::now();
  CommandResult r = RunCommand({"sleep", "30"}, std::chrono::milliseconds(200));
  const auto elapsed = Clock::now() - start;
  BOOST_TEST(r.timed_out);
  BOOST_TEST(r.exit_code == -1);
  BOOST_TEST(r.output.find("sleep timed out after 200 ms") != std::string::npos, r.output);
  // Killed, not waited for: well under the 30 s it asked for.
  BOOST_TEST((elapsed >= std::chrono::milliseconds(200) && elapsed < std::chrono::seconds(5)));
}

BOOST_AUTO_TEST_CASE(a_missing_program_is_an_error_not_a_hang) {
  CommandResult r =
      RunCommand({"/nonexistent/snapset-no-such-program"}, std::chrono::milliseconds(500));
  BOOST_TEST(r.exit_code != 0);
  BOOST_TEST(!r.timed_out);
}

}  // namespace
}  // namespace snapset
