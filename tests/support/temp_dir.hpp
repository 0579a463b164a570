// Test helpers: a private temporary directory removed at scope exit, and a
// config directory with providers.d for registering test plugins.
#ifndef SNAPSET_TESTS_SUPPORT_TEMP_DIR_HPP
#define SNAPSET_TESTS_SUPPORT_TEMP_DIR_HPP

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <system_error>

#include <sys/stat.h>

namespace snapset::test {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "snapset-test-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;  // mode 0700: safe for the loader's permission checks
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::string str() const { return path_.string(); }

  // Writes `text` to path()/relative with mode 0644, creating parents (0755).
  std::string Write(const std::string& relative, const std::string& text) const {
    auto file = path_ / relative;
    std::filesystem::create_directories(file.parent_path());
    ::chmod(file.parent_path().c_str(), 0755);
    std::ofstream(file) << text;
    ::chmod(file.c_str(), 0644);
    return file.string();
  }

 private:
  std::filesystem::path path_;
};

// A registration JSON for tests.
inline std::string Registration(const std::string& id, const std::string& name,
                                const std::string& type, const std::string& library,
                                const std::string& config = "{}", int priority = 0) {
  return "{\"id\": \"" + id + "\", \"name\": \"" + name + "\", \"type\": \"" + type +
         "\", \"library\": \"" + library + "\", \"priority\": " + std::to_string(priority) +
         ", \"config\": " + config + "}";
}

// True when CI=true: a missing dependency must then fail, not skip.
inline bool InCi() {
  const char* ci = std::getenv("CI");
  return ci && std::string(ci) == "true";
}

}  // namespace snapset::test

#endif  // SNAPSET_TESTS_SUPPORT_TEMP_DIR_HPP
