// SPDX-License-Identifier: Apache-2.0
// ParseLunUrl: libiscsi's URL parser, with every malformed URL refused in
// one form of message that never quotes credentials.
#include <algorithm>
#include <cctype>
#include <charconv>
#include <snapset/iscsi_lun.hpp>
#include <string>
#include <utility>

#include "iscsi/libiscsi_handles.hpp"

namespace snapset::iscsi {
namespace {

constexpr std::string_view kUrlForm = "iscsi://host[:port]/target-iqn/lun";
constexpr std::string_view kUrlFormWithCredentials =
    "iscsi://host[:port]/target-iqn/lun (credentials as user%password@host)";
constexpr std::string_view kDefaultPort = "3260";
// libiscsi encodes LUNs with the flat space addressing method: 14 bits.
constexpr int kMaxLun = 16383;
// Only for iscsi_parse_full_url(), which needs a context: nothing logs in.
constexpr char kParserInitiator[] = "iqn.2026-11.io.snapset:url-parser";

// Drops a "user%password@" part: a malformed URL is quoted back to the
// caller, and must not carry a secret into a log.
std::string WithoutCredentials(std::string_view url) {
  const size_t scheme = url.find("://");
  if (scheme == std::string_view::npos) return std::string(url);
  const size_t start = scheme + 3;
  const size_t end = std::min(url.find('/', start), url.size());
  const size_t at = url.substr(0, end).rfind('@');
  if (at == std::string_view::npos || at < start) return std::string(url);
  return std::string(url.substr(0, start)) + std::string(url.substr(at + 1));
}

class UrlError {
 public:
  UrlError(std::string_view url, UrlCredentials credentials)
      : url_(url),
        form_(credentials == UrlCredentials::kAllowed ? kUrlFormWithCredentials : kUrlForm) {}

  Status operator()(std::string_view why) const {
    return Status::InvalidArgument("invalid iSCSI URL '" + WithoutCredentials(url_) +
                                   "': " + std::string(why) + "; expected " + std::string(form_));
  }

 private:
  std::string_view url_;
  std::string_view form_;
};

// libiscsi's parse error is three lines: "Invalid URL <url>" (which would
// quote credentials), the reason, and the expected form. Keeps the reason.
std::string ParseFailureReason(iscsi_context* ctx) {
  std::string_view error = iscsi_get_error(ctx);
  const size_t first = error.find('\n');
  if (first == std::string_view::npos) return "cannot parse it";
  error.remove_prefix(first + 1);
  const std::string_view reason = error.substr(0, error.find('\n'));
  if (reason.empty() || reason.starts_with("iSCSI URL must be")) return "cannot parse it";
  return std::string(reason);
}

// Splits libiscsi's "host[:port]", lower-casing the host and making the
// default port explicit, so that equal portals compare equal.
Status SplitPortal(std::string_view portal, const UrlError& bad, LunUrl& out) {
  const size_t bracket = portal.rfind(']');
  const size_t colon = portal.rfind(':');
  const bool has_port =
      colon != std::string_view::npos && (bracket == std::string_view::npos || colon > bracket);
  const std::string_view host = has_port ? portal.substr(0, colon) : portal;
  const std::string_view port = has_port ? portal.substr(colon + 1) : kDefaultPort;
  if (host.empty() || host == "[]") return bad("no host");
  int number = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), number);
  if (ec != std::errc() || end != port.data() + port.size() || number < 1 || number > 65535) {
    return bad("port must be a number from 1 to 65535");
  }
  out.host.assign(host);
  std::transform(out.host.begin(), out.host.end(), out.host.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  out.port = number;
  return Status::Ok();
}

}  // namespace

Result<LunUrl> ParseLunUrl(std::string_view url, UrlCredentials credentials) {
  const UrlError bad(url, credentials);
  const detail::ContextPtr ctx(iscsi_create_context(kParserInitiator));
  if (!ctx) return Status::Internal("cannot create a libiscsi context");
  const std::string text(url);
  // The fields are copied out: the parsed URL dies with its context.
  const detail::UrlPtr parsed(iscsi_parse_full_url(ctx.get(), text.c_str()));
  if (!parsed) return bad(ParseFailureReason(ctx.get()));
  if (credentials == UrlCredentials::kRefused &&
      (parsed->user[0] != '\0' || parsed->passwd[0] != '\0' || parsed->target_user[0] != '\0' ||
       parsed->target_passwd[0] != '\0')) {
    return bad("credentials belong in the login, not in the URL");
  }
  if (parsed->target[0] == '\0') return bad("no target IQN");
  if (parsed->lun < 0 || parsed->lun > kMaxLun) {
    return bad("LUN must be from 0 to " + std::to_string(kMaxLun));
  }
  LunUrl result;
  SNAPSET_RETURN_IF_ERROR(SplitPortal(parsed->portal, bad, result));
  result.target_iqn = parsed->target;
  result.lun = parsed->lun;
  if (credentials == UrlCredentials::kAllowed) {
    result.chap_user = parsed->user;
    result.chap_password = parsed->passwd;
    result.target_user = parsed->target_user;
    result.target_password = parsed->target_passwd;
  }
  result.canonical = "iscsi://" + result.host + ":" + std::to_string(result.port) + "/" +
                     result.target_iqn + "/" + std::to_string(result.lun);
  return result;
}

}  // namespace snapset::iscsi
