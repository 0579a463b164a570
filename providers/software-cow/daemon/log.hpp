// The daemon's log: one line per event on stderr, with a UTC timestamp, so
// that journald or a test's captured stderr shows what happened and when.
// Thread-safe (one mutex around each line).
#ifndef SNAPSET_COW_DAEMON_LOG_HPP
#define SNAPSET_COW_DAEMON_LOG_HPP

#include <string>

namespace snapset::cow::daemon {

void Log(const std::string& line);

}  // namespace snapset::cow::daemon

#endif  // SNAPSET_COW_DAEMON_LOG_HPP
