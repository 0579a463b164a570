#include "core/file_safety.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace snapset {

namespace {

Status CheckOne(const std::string& path, const char* what, const std::string& for_file) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status::NotFound(std::string(what) + " " + path + " does not exist");
    return Status::Config(std::string("cannot stat ") + what + " " + path + ": " +
                          std::strerror(errno));
  }
  const uid_t me = ::geteuid();
  const std::string subject =
      for_file.empty() ? std::string(what) + " " + path
                       : "directory " + path + " holding " + what + " " + for_file;
  if (st.st_uid != 0 && st.st_uid != me) {
    return Status::Config(subject + " is owned by uid " + std::to_string(st.st_uid) +
                          ", not by root or the current user (uid " + std::to_string(me) +
                          "); refusing to load it (chown it to root)");
  }
  if (st.st_mode & (S_IWGRP | S_IWOTH)) {
    return Status::Config(subject + " is writable by " +
                          ((st.st_mode & S_IWOTH) ? "anyone" : "its group") +
                          "; refusing to load it (run: chmod go-w " + path + ")");
  }
  return Status::Ok();
}

}  // namespace

Status CheckTrustedFile(const std::string& path, const char* what) {
  std::error_code ec;
  // Judge the file that will really be read, not a symlink to it.
  std::filesystem::path real = std::filesystem::canonical(path, ec);
  if (ec) {
    if (ec == std::errc::no_such_file_or_directory)
      return Status::NotFound(std::string(what) + " " + path + " does not exist");
    return Status::Config(std::string("cannot resolve ") + what + " " + path + ": " +
                          ec.message());
  }
  SNAPSET_RETURN_IF_ERROR(CheckOne(real.string(), what, ""));
  return CheckOne(real.parent_path().string(), what, real.string());
}

}  // namespace snapset
