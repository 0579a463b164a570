#include "providers/software-cow/daemon/log.hpp"

#include <time.h>

#include <cstdio>
#include <mutex>

namespace snapset::cow::daemon {

void Log(const std::string& line) {
  static std::mutex mu;
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  tm utc{};
  ::gmtime_r(&ts.tv_sec, &utc);
  char stamp[96];
  std::snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                ts.tv_nsec / 1000000);
  std::lock_guard<std::mutex> lock(mu);
  std::fprintf(stderr, "%s snapset-cowd: %s\n", stamp, line.c_str());
  std::fflush(stderr);
}

}  // namespace snapset::cow::daemon
