// Starting a program the test will kill (kill -9 at a random moment, say),
// with its output thrown away.
#ifndef SNAPSET_TESTS_SUPPORT_SPAWN_HPP
#define SNAPSET_TESTS_SUPPORT_SPAWN_HPP

#include <fcntl.h>
#include <spawn.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace snapset::test {

// Starts argv[0] (a path) with stdout and stderr on /dev/null; its pid, or
// -1 if it could not be started. The caller waits for it.
inline pid_t SpawnQuietly(std::vector<std::string> args) {
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  return rc == 0 ? pid : -1;
}

}  // namespace snapset::test

#endif  // SNAPSET_TESTS_SUPPORT_SPAWN_HPP
