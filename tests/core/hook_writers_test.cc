// Hook writers: the scripts in writers.d that an administrator relies on to
// quiesce an application before its volumes are held, and to resume it
// afterwards -- in order, with the set described in the environment, never
// left frozen, and never allowed to stall the set past the writer window.
#define BOOST_TEST_MODULE hook_writers
#include <boost/test/unit_test.hpp>

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/hook_writers.hpp"
#include "core/timeline.hpp"
#include "tests/support/temp_dir.hpp"

using namespace snapset;
using snapset::test::TempDir;
using Clock = std::chrono::steady_clock;

namespace {

// A hook that appends "<its name> <phase>" to `log`, then runs `body`.
std::string WriteHook(const TempDir& config, const std::string& name, const std::string& log,
                      const std::string& body = "") {
  std::string path = config.Write(
      "writers.d/" + name, "#!/bin/sh\necho \"$(basename \"$0\") $1\" >> " + log + "\n" + body);
  ::chmod(path.c_str(), 0755);
  return path;
}

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::string> ReadLines(const std::filesystem::path& path) {
  std::vector<std::string> lines;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

HookWriters MustDiscover(const TempDir& config) {
  auto writers = HookWriters::Discover(config.str());
  BOOST_TEST_REQUIRE(writers.ok(), writers.status().ToString());
  return std::move(writers).value();
}

// Dead, or a zombie waiting for whatever adopted it to reap it (in a
// container, PID 1 may never do so).
bool ProcessIsGone(pid_t pid) {
  if (::kill(pid, 0) != 0) return errno == ESRCH;
  std::string stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  auto paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] == 'Z';
}

bool BecomesGone(pid_t pid, std::chrono::milliseconds within) {
  const auto end = Clock::now() + within;
  while (!ProcessIsGone(pid)) {
    if (Clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

pid_t ReadPid(const std::filesystem::path& file) {
  return pid_t(std::atoi(ReadFile(file).c_str()));
}

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

}  // namespace

BOOST_AUTO_TEST_CASE(hooks_freeze_in_name_order_and_thaw_in_reverse) {
  TempDir config;
  const std::string log = (config.path() / "log").string();
  // Created out of order: the order is the name's, not the directory's.
  WriteHook(config, "20-db", log);
  WriteHook(config, "10-app", log);
  WriteHook(config, "30-cache", log);
  // Not hooks, and not errors even though they are not executable.
  config.Write("writers.d/.20-db.swp", "junk");
  config.Write("writers.d/20-db~", "#!/bin/sh\necho backup >> " + log + "\n");

  HookWriters writers = MustDiscover(config);
  BOOST_TEST_REQUIRE(writers.hooks().size() == 3u);
  const auto dir = std::filesystem::canonical(config.path() / "writers.d");
  BOOST_TEST(writers.hooks()[0] == (dir / "10-app").string());
  BOOST_TEST(writers.hooks()[2] == (dir / "30-cache").string());

  Timeline timeline;
  Status frozen = writers.Freeze("set-1", {"/mnt/a"}, &timeline);
  BOOST_TEST_REQUIRE(frozen.ok(), frozen.ToString());
  BOOST_TEST(ReadLines(log) == (std::vector<std::string>{"10-app freeze", "20-db freeze",
                                                         "30-cache freeze"}),
             boost::test_tools::per_element());
  Status thawed = writers.Thaw(&timeline);
  BOOST_TEST_REQUIRE(thawed.ok(), thawed.ToString());
  BOOST_TEST(ReadLines(log) ==
                 (std::vector<std::string>{"10-app freeze", "20-db freeze", "30-cache freeze",
                                           "30-cache thaw", "20-db thaw", "10-app thaw"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(hooks_learn_the_set_id_volumes_and_phase_from_their_environment) {
  TempDir config;
  const std::string out = config.str();
  WriteHook(config, "10-env", out + "/log",
            "cd " + out + "\n" +
                R"(printf '%s' "$SNAPSET_SET_ID" > id.$1
printf '%s' "$SNAPSET_VOLUMES" > volumes.$1
printf '%s' "$SNAPSET_PHASE" > phase.$1
printf '%s' "$HOOK_TEST_INHERITED" > inherited.$1
readlink /proc/$$/fd/0 > stdin.$1
)");
  HookWriters writers = MustDiscover(config);

  // The coordinator's own environment passes through, but a stale value of
  // ours must not shadow the real one.
  ::setenv("HOOK_TEST_INHERITED", "yes", 1);
  ::setenv("SNAPSET_PHASE", "stale", 1);
  Status frozen = writers.Freeze("8d2f-set", {"/mnt/data", "/dev/sdb"}, nullptr);
  Status thawed = writers.Thaw(nullptr);
  ::unsetenv("HOOK_TEST_INHERITED");
  ::unsetenv("SNAPSET_PHASE");
  BOOST_TEST_REQUIRE(frozen.ok(), frozen.ToString());
  BOOST_TEST_REQUIRE(thawed.ok(), thawed.ToString());

  for (std::string phase : {"freeze", "thaw"}) {
    BOOST_TEST_CONTEXT("phase " << phase) {
      BOOST_TEST(ReadFile(out + "/id." + phase) == "8d2f-set");
      BOOST_TEST(ReadFile(out + "/volumes." + phase) == "/mnt/data\n/dev/sdb");
      BOOST_TEST(ReadFile(out + "/phase." + phase) == phase);
      BOOST_TEST(ReadFile(out + "/inherited." + phase) == "yes");
      BOOST_TEST(ReadFile(out + "/stdin." + phase) == "/dev/null\n");
    }
  }
}

BOOST_AUTO_TEST_CASE(a_non_executable_file_in_writers_d_is_an_error_naming_it) {
  TempDir config;
  WriteHook(config, "10-ok", config.str() + "/log");
  config.Write("writers.d/20-notes", "#!/bin/sh\n");  // 0644: would silently never run
  auto writers = HookWriters::Discover(config.str());
  BOOST_TEST_REQUIRE(!writers.ok());
  BOOST_TEST(writers.status().IsInvalidArgument(), writers.status().ToString());
  BOOST_TEST(Contains(writers.status().message(), "20-notes"));
  BOOST_TEST(Contains(writers.status().message(), "chmod +x"));
  BOOST_TEST(Contains(writers.status().message(), "remove it"));
}

BOOST_AUTO_TEST_CASE(a_directory_or_dangling_link_in_writers_d_is_an_error_naming_it) {
  {
    TempDir config;
    std::filesystem::create_directories(config.path() / "writers.d" / "10-subdir");
    auto writers = HookWriters::Discover(config.str());
    BOOST_TEST_REQUIRE(!writers.ok());
    BOOST_TEST(writers.status().IsInvalidArgument(), writers.status().ToString());
    BOOST_TEST(Contains(writers.status().message(), "10-subdir"));
  }
  {
    TempDir config;
    std::filesystem::create_directories(config.path() / "writers.d");
    std::filesystem::create_symlink(config.path() / "nowhere",
                                    config.path() / "writers.d" / "10-dangling");
    auto writers = HookWriters::Discover(config.str());
    BOOST_TEST_REQUIRE(!writers.ok());
    BOOST_TEST(writers.status().IsInvalidArgument(), writers.status().ToString());
    BOOST_TEST(Contains(writers.status().message(), "10-dangling"));
  }
}

BOOST_AUTO_TEST_CASE(a_symlink_to_an_executable_is_a_hook_named_after_the_link) {
  TempDir config;
  const std::string log = config.str() + "/log";
  std::string target =
      config.Write("libexec/fsfreeze-hook", "#!/bin/sh\necho \"$(basename \"$0\") $1\" >> " +
                                                log + "\n");
  ::chmod(target.c_str(), 0755);
  std::filesystem::create_directories(config.path() / "writers.d");
  std::filesystem::create_symlink(target, config.path() / "writers.d" / "10-fsfreeze");

  HookWriters writers = MustDiscover(config);
  BOOST_TEST_REQUIRE(writers.hooks().size() == 1u);
  BOOST_TEST(std::filesystem::path(writers.hooks()[0]).filename() == "10-fsfreeze");
  Timeline timeline;
  BOOST_TEST_REQUIRE(writers.Freeze("s", {}, &timeline).ok());
  BOOST_TEST_REQUIRE(writers.Thaw(&timeline).ok());
  BOOST_TEST(ReadLines(log) == (std::vector<std::string>{"10-fsfreeze freeze", "10-fsfreeze thaw"}),
             boost::test_tools::per_element());
  BOOST_TEST(timeline.events().front().lane == "writer:10-fsfreeze");
}

BOOST_AUTO_TEST_CASE(a_world_writable_hook_is_refused_as_unsafe) {
  TempDir config;
  std::string hook = WriteHook(config, "10-open", config.str() + "/log");
  ::chmod(hook.c_str(), 0777);
  auto writers = HookWriters::Discover(config.str());
  BOOST_TEST_REQUIRE(!writers.ok());
  BOOST_TEST(writers.status().Is(Code::kConfig), writers.status().ToString());
  BOOST_TEST(Contains(writers.status().message(), "10-open"));
  BOOST_TEST(Contains(writers.status().message(), "chmod go-w"));
}

BOOST_AUTO_TEST_CASE(a_group_writable_writers_d_is_refused_as_unsafe) {
  TempDir config;
  WriteHook(config, "10-ok", config.str() + "/log");
  ::chmod((config.path() / "writers.d").c_str(), 0775);
  auto writers = HookWriters::Discover(config.str());
  BOOST_TEST_REQUIRE(!writers.ok());
  BOOST_TEST(writers.status().Is(Code::kConfig), writers.status().ToString());
  BOOST_TEST(Contains(writers.status().message(), "writers.d"));
}

BOOST_AUTO_TEST_CASE(no_writers_d_means_no_hooks_and_nothing_to_do) {
  TempDir config;
  HookWriters writers = MustDiscover(config);
  BOOST_TEST(writers.empty());
  Timeline timeline;
  BOOST_TEST(writers.Freeze("s", {"/mnt/a"}, &timeline).ok());
  BOOST_TEST(writers.Thaw(&timeline).ok());
  BOOST_TEST(timeline.events().empty());
}

BOOST_AUTO_TEST_CASE(a_failing_freeze_fails_the_set_and_thaws_only_the_hooks_that_froze) {
  TempDir config;
  const std::string log = config.str() + "/log";
  WriteHook(config, "10-app", log);
  WriteHook(config, "20-db", log,
            "if [ \"$1\" = freeze ]; then echo 'database refused: lock held' >&2; exit 7; fi\n");
  WriteHook(config, "30-cache", log);
  HookWriters writers = MustDiscover(config);

  Status s = writers.Freeze("s", {"/mnt/a"}, nullptr);
  BOOST_TEST(s.Is(Code::kWriterFailed), s.ToString());
  BOOST_TEST(Contains(s.message(), "writer hook "));
  BOOST_TEST(Contains(s.message(), "20-db failed with exit status 7: database refused: lock held"));
  // 20-db never froze, so it gets no thaw; 30-cache never ran.
  BOOST_TEST(ReadLines(log) ==
                 (std::vector<std::string>{"10-app freeze", "20-db freeze", "10-app thaw"}),
             boost::test_tools::per_element());

  // The coordinator's usual Thaw afterwards has nothing left to do.
  BOOST_TEST(writers.Thaw(nullptr).ok());
  BOOST_TEST(ReadLines(log).size() == 3u);
}

BOOST_AUTO_TEST_CASE(a_hook_killed_by_a_signal_fails_the_set) {
  TempDir config;
  WriteHook(config, "10-crash", config.str() + "/log", "echo dying\nkill -TERM $$\nsleep 5\n");
  HookWriters writers = MustDiscover(config);
  Status s = writers.Freeze("s", {}, nullptr);
  BOOST_TEST(s.Is(Code::kWriterFailed), s.ToString());
  BOOST_TEST(Contains(s.message(), "10-crash was killed by signal 15 (SIGTERM): dying"));
}

BOOST_AUTO_TEST_CASE(a_script_without_a_shebang_fails_with_a_hint) {
  TempDir config;
  std::string hook = config.Write("writers.d/10-noshebang", "echo hi\n");
  ::chmod(hook.c_str(), 0755);
  HookWriters writers = MustDiscover(config);
  Status s = writers.Freeze("s", {}, nullptr);
  BOOST_TEST(s.Is(Code::kWriterFailed), s.ToString());
  BOOST_TEST(Contains(s.message(), "10-noshebang"));
  BOOST_TEST(Contains(s.message(), "#!"));
}

BOOST_AUTO_TEST_CASE(only_the_first_4_kib_of_a_chatty_hook_is_kept_and_it_never_blocks) {
  TempDir config;
  // 256 KiB: far more than a pipe holds, so the hook would block forever if
  // its output were not drained.
  WriteHook(config, "10-chatty", config.str() + "/log",
            "head -c 262144 /dev/zero | tr '\\0' x\nexit 3\n");
  HookWriters writers = MustDiscover(config);
  Status s = writers.Freeze("s", {}, nullptr, std::chrono::seconds(20));
  BOOST_TEST(s.Is(Code::kWriterFailed), s.ToString().substr(0, 200));
  BOOST_TEST(Contains(s.message(), "exit status 3: xxxx"));
  BOOST_TEST(Contains(s.message(), "truncated"));
  BOOST_TEST(s.message().size() < 4096u + 512u);
}

BOOST_AUTO_TEST_CASE(a_hook_writing_nonstop_is_still_killed_at_the_window_end) {
  TempDir config;
  WriteHook(config, "10-flood", config.str() + "/log", "exec yes\n");
  HookWriters writers = MustDiscover(config);
  const auto start = Clock::now();
  Status s = writers.Freeze("s", {}, nullptr, std::chrono::milliseconds(300));
  const auto elapsed = Clock::now() - start;
  BOOST_TEST(s.Is(Code::kWriterTimeout), s.ToString().substr(0, 200));
  BOOST_TEST(elapsed < std::chrono::seconds(5));
}

BOOST_AUTO_TEST_CASE(an_overrunning_hook_is_killed_with_its_children_at_the_window_end) {
  TempDir config;
  const std::string log = config.str() + "/log";
  const auto pid_file = config.path() / "child.pid";
  WriteHook(config, "10-app", log);
  WriteHook(config, "20-stuck", log,
            "sleep 1000 &\necho $! > " + pid_file.string() + "\necho waiting for the lock\n"
            "sleep 30\n");
  WriteHook(config, "30-cache", log);
  HookWriters writers = MustDiscover(config);

  const auto start = Clock::now();
  Status s = writers.Freeze("s", {"/mnt/a"}, nullptr, std::chrono::milliseconds(300));
  const auto elapsed = Clock::now() - start;
  BOOST_TEST(s.Is(Code::kWriterTimeout), s.ToString());
  BOOST_TEST(Contains(s.message(), "20-stuck did not finish freeze within the writer window of "
                                   "300 ms; killed"));
  BOOST_TEST(Contains(s.message(), "waiting for the lock"));
  // 300 ms window, then the thaw of 10-app; nowhere near the hook's 30 s.
  BOOST_TEST(elapsed < std::chrono::seconds(5));

  const pid_t child = ReadPid(pid_file);
  BOOST_TEST_REQUIRE(child > 0);
  BOOST_TEST(BecomesGone(child, std::chrono::seconds(2)), "background child " << child
                                                                              << " survived");
  if (!ProcessIsGone(child)) ::kill(child, SIGKILL);

  BOOST_TEST(ReadLines(log) ==
                 (std::vector<std::string>{"10-app freeze", "20-stuck freeze", "10-app thaw"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_background_child_holding_the_output_does_not_stall_the_hook) {
  TempDir config;
  const auto pid_file = config.path() / "child.pid";
  // The child inherits stdout, so the pipe stays open after the hook exits.
  WriteHook(config, "10-daemon", config.str() + "/log",
            "if [ \"$1\" = freeze ]; then sleep 30 & echo $! > " + pid_file.string() +
                "; fi\nexit 0\n");
  HookWriters writers = MustDiscover(config);

  const auto start = Clock::now();
  Status s = writers.Freeze("s", {}, nullptr, std::chrono::seconds(20));
  const auto elapsed = Clock::now() - start;
  if (pid_t child = ReadPid(pid_file); child > 0) ::kill(child, SIGKILL);
  BOOST_TEST(s.ok(), s.ToString());
  BOOST_TEST(elapsed < std::chrono::seconds(5));
  BOOST_TEST(writers.Thaw(nullptr).ok());
}

BOOST_AUTO_TEST_CASE(a_failing_thaw_is_reported_but_every_hook_still_thaws) {
  TempDir config;
  const std::string log = config.str() + "/log";
  WriteHook(config, "10-app", log, "if [ \"$1\" = thaw ]; then echo app stuck; exit 4; fi\n");
  WriteHook(config, "20-db", log, "if [ \"$1\" = thaw ]; then echo db stuck; exit 5; fi\n");
  WriteHook(config, "30-cache", log);
  HookWriters writers = MustDiscover(config);

  BOOST_TEST_REQUIRE(writers.Freeze("s", {}, nullptr).ok());
  Status s = writers.Thaw(nullptr);
  BOOST_TEST(s.Is(Code::kWriterFailed), s.ToString());
  // The first to fail, in thaw order (reverse).
  BOOST_TEST(Contains(s.message(), "20-db failed with exit status 5: db stuck"));
  BOOST_TEST(ReadLines(log) == (std::vector<std::string>{"10-app freeze", "20-db freeze",
                                                         "30-cache freeze", "30-cache thaw",
                                                         "20-db thaw", "10-app thaw"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(thaw_gets_time_even_when_the_window_is_used_up) {
  TempDir config;
  WriteHook(config, "10-slow-thaw", config.str() + "/log",
            "if [ \"$1\" = thaw ]; then sleep 1; fi\n");
  HookWriters writers = MustDiscover(config);
  BOOST_TEST_REQUIRE(writers.Freeze("s", {}, nullptr, std::chrono::milliseconds(200)).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the window is over
  Status s = writers.Thaw(nullptr);
  BOOST_TEST(s.ok(), s.ToString());
}

BOOST_AUTO_TEST_CASE(freezing_twice_without_a_thaw_is_refused) {
  TempDir config;
  const std::string log = config.str() + "/log";
  WriteHook(config, "10-app", log);
  HookWriters writers = MustDiscover(config);
  BOOST_TEST_REQUIRE(writers.Freeze("s1", {}, nullptr).ok());
  Status again = writers.Freeze("s2", {}, nullptr);
  BOOST_TEST(again.IsBadState(), again.ToString());
  BOOST_TEST(writers.Thaw(nullptr).ok());
  BOOST_TEST(ReadLines(log) == (std::vector<std::string>{"10-app freeze", "10-app thaw"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(the_timeline_has_a_span_per_hook_run) {
  TempDir config;
  const std::string log = config.str() + "/log";
  WriteHook(config, "10-app", log);
  WriteHook(config, "20-db", log, "if [ \"$1\" = thaw ]; then exit 2; fi\n");
  HookWriters writers = MustDiscover(config);
  Timeline timeline;
  BOOST_TEST_REQUIRE(writers.Freeze("s", {}, &timeline).ok());
  BOOST_TEST(!writers.Thaw(&timeline).ok());

  struct Expected {
    TimelineKind kind;
    std::string lane, step;
  };
  const std::vector<Expected> expected = {
      {TimelineKind::kBegin, "writer:10-app", "freeze"},
      {TimelineKind::kEnd, "writer:10-app", "freeze"},
      {TimelineKind::kBegin, "writer:20-db", "freeze"},
      {TimelineKind::kEnd, "writer:20-db", "freeze"},
      {TimelineKind::kBegin, "writer:20-db", "thaw"},
      {TimelineKind::kEnd, "writer:20-db", "thaw"},
      {TimelineKind::kBegin, "writer:10-app", "thaw"},
      {TimelineKind::kEnd, "writer:10-app", "thaw"},
  };
  const auto events = timeline.events();
  BOOST_TEST_REQUIRE(events.size() == expected.size());
  for (size_t i = 0; i < events.size(); ++i) {
    BOOST_TEST_CONTEXT("event " << i) {
      BOOST_TEST((events[i].kind == expected[i].kind));
      BOOST_TEST(events[i].lane == expected[i].lane);
      BOOST_TEST(events[i].step == expected[i].step);
      if (i > 0) BOOST_TEST(events[i].t_ns >= events[i - 1].t_ns);
    }
  }
  BOOST_TEST(events[1].detail == "ok");
  BOOST_TEST(Contains(events[5].detail, "writer-failed: "));
  BOOST_TEST(Contains(events[5].detail, "20-db failed with exit status 2"));
  BOOST_TEST(events[7].detail == "ok");
}
