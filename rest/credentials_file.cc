// SPDX-License-Identifier: Apache-2.0
#include <fcntl.h>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <snapset/rest.hpp>

namespace snapset::rest {
namespace {

using Json = rapidjson::Value;

constexpr size_t kMaxSecretFileBytes = 64 * 1024;

Status Bad(const std::string& what, const std::string& why) {
  return Status::InvalidArgument(what + ": " + why);
}

}  // namespace

Result<Credentials> ReadCredentialsFile(const std::string& path, const std::string& field,
                                        const char* user_key, const char* password_key) {
  const std::string what = field + " (" + path + ")";
  const std::string shape =
      std::string("expected {\"") + user_key + "\": ..., \"" + password_key + "\": ...}";
  // Checked on the open descriptor, so the file read is the file checked.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return Bad(what, errno == ENOENT ? "not found" : "cannot be opened by this user");
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return Bad(what, "is not a regular file");
  if (st.st_uid != ::geteuid() || (st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return Bad(what, std::string("holds a secret, so it must be owned by this user (uid ") +
                         std::to_string(::geteuid()) +
                         ") and not readable by group or others; it is owned by uid " +
                         std::to_string(st.st_uid) + " with mode " + mode +
                         ": chown it and chmod 600 it");
  }
  if (st.st_size > static_cast<off_t>(kMaxSecretFileBytes)) {
    return Bad(what, "is larger than 64 KiB; " + shape);
  }
  std::string text(static_cast<size_t>(st.st_size), '\0');
  size_t got = 0;
  while (got < text.size()) {
    const ssize_t n = ::read(fd, text.data() + got, text.size() - got);
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  text.resize(got);
  rapidjson::Document doc;
  doc.Parse(text.c_str(), text.size());
  std::fill(text.begin(), text.end(), '\0');
  // No part of the file is ever quoted back: any of it may be the secret.
  if (doc.HasParseError()) {
    return Bad(what, std::string("is not valid JSON (") +
                         rapidjson::GetParseError_En(doc.GetParseError()) + " at offset " +
                         std::to_string(doc.GetErrorOffset()) + "); " + shape);
  }
  if (!doc.IsObject()) return Bad(what, "is not a JSON object; " + shape);
  for (const auto& m : doc.GetObject()) {
    const std::string key(m.name.GetString(), m.name.GetStringLength());
    if (key != user_key && key != password_key) {
      return Bad(what, std::string("has a member other than ") + user_key + " and " + password_key +
                           "; " + shape);
    }
  }
  if (doc.MemberCount() != 2) return Bad(what, "must hold exactly " + shape.substr(9));
  Credentials out;
  for (const char* key : {user_key, password_key}) {
    const Json& v = doc[key];
    if (!v.IsString() || v.GetStringLength() == 0) {
      return Bad(what, std::string(key) + " must be a non-empty string; " + shape);
    }
    (key == user_key ? out.user : out.password).assign(v.GetString(), v.GetStringLength());
  }
  return out;
}

}  // namespace snapset::rest
