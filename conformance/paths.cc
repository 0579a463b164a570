// SPDX-License-Identifier: Apache-2.0
#include "conformance/paths.hpp"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>

namespace snapset::conformance {

namespace fs = std::filesystem;

namespace {

struct Where {
  const char* env;        // SNAPSET_CONFORMANCE_<NAME>
  const char* installed;  // relative to the installed binary's directory
  const char* build;      // the build tree's file (compile definitions)
};

// SNAPSET_INSTALL_LIBDIR and the SNAPSET_BUILD_* paths come from
// conformance/CMakeLists.txt.
Where WhereOf(Bundled what) {
  switch (what) {
    case Bundled::kLoopCloneProvider:
      return {"SNAPSET_CONFORMANCE_LOOP_CLONE",
              "../" SNAPSET_INSTALL_LIBDIR "/snapset/providers/libsnapset_loop_clone.so",
              SNAPSET_BUILD_LOOP_CLONE};
    case Bundled::kCowProvider:
      return {"SNAPSET_CONFORMANCE_COW_PROVIDER",
              "../" SNAPSET_INSTALL_LIBDIR "/snapset/providers/libsnapset_cow_provider.so",
              SNAPSET_BUILD_COW_PROVIDER};
    case Bundled::kIscsiProvider:
      return {"SNAPSET_CONFORMANCE_ISCSI_PROVIDER",
              "../" SNAPSET_INSTALL_LIBDIR "/snapset/providers/libsnapset_iscsi_provider.so",
              SNAPSET_BUILD_ISCSI_PROVIDER};
    case Bundled::kSwordfishDriver:
      return {"SNAPSET_CONFORMANCE_SWORDFISH_DRIVER",
              "../" SNAPSET_INSTALL_LIBDIR "/snapset/array-drivers/libsnapset_array_swordfish.so",
              SNAPSET_BUILD_SWORDFISH_DRIVER};
    case Bundled::kTwophaseDriver:
      return {"SNAPSET_CONFORMANCE_TWOPHASE_DRIVER",
              "../" SNAPSET_INSTALL_LIBDIR "/snapset/array-drivers/libsnapset_array_twophase.so",
              SNAPSET_BUILD_TWOPHASE_DRIVER};
    case Bundled::kCowDaemon:
      return {"SNAPSET_CONFORMANCE_COWD", "snapset-cowd", SNAPSET_BUILD_COWD};
    case Bundled::kMockArray:
      return {"SNAPSET_CONFORMANCE_MOCK_ARRAY", "snapset-mock-array", SNAPSET_BUILD_MOCK_ARRAY};
  }
  return {"", "", ""};
}

fs::path OwnDirectory() {
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path() : self.parent_path();
}

}  // namespace

Result<std::string> BundledPath(Bundled what) {
  const Where w = WhereOf(what);
  if (const char* env = std::getenv(w.env); env && *env) {
    if (::access(env, R_OK) == 0) return std::string(env);
    return Status::NotFound(std::string(w.env) + "=" + env + " names no readable file");
  }
  std::error_code ec;
  const fs::path installed = (OwnDirectory() / w.installed).lexically_normal();
  if (fs::exists(installed, ec)) return installed.string();
  if (fs::exists(w.build, ec)) return std::string(w.build);
  return Status::NotFound(std::string("cannot find ") + fs::path(w.build).filename().string() +
                          ": looked in " + installed.string() + " and " + w.build + "; set " +
                          w.env + " to its path");
}

}  // namespace snapset::conformance
