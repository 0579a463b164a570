// SPDX-License-Identifier: Apache-2.0
#include <curl/curl.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cctype>
#include <mutex>
#include <snapset/rest.hpp>
#include <thread>

namespace snapset::rest {
namespace {

constexpr auto kFirstBackoff = std::chrono::milliseconds(200);
constexpr auto kMaxBackoff = std::chrono::seconds(5);
constexpr size_t kMaxQuotedBody = 200;

// curl_global_init is not thread-safe; do it once, before any handle.
void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

size_t OnBody(char* data, size_t size, size_t count, void* out) {
  static_cast<std::string*>(out)->append(data, size * count);
  return size * count;
}

size_t OnHeader(char* data, size_t size, size_t count, void* out) {
  const std::string line(data, size * count);
  auto* headers = static_cast<std::map<std::string, std::string>*>(out);
  if (line.rfind("HTTP/", 0) == 0) headers->clear();  // a new response (after a 100, say)
  const size_t colon = line.find(':');
  if (colon != std::string::npos) {
    std::string name = line.substr(0, colon);
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    std::string value = line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(" \t"));
    value.erase(value.find_last_not_of("\r\n \t") + 1);
    (*headers)[name] = value;
  }
  return size * count;
}

std::string Quote(const std::string& body) {
  std::string out = body.substr(0, kMaxQuotedBody);
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < ' ') c = ' ';
  }
  return body.size() > kMaxQuotedBody ? out + "..." : out;
}

std::string JsonString(const std::string& s) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  w.String(s.c_str(), static_cast<rapidjson::SizeType>(s.size()));
  return buffer.GetString();
}

}  // namespace

std::string RestResponse::Header(const std::string& name) const {
  auto found = headers.find(name);
  return found == headers.end() ? "" : found->second;
}

std::chrono::milliseconds RestResponse::RetryAfter(std::chrono::milliseconds fallback) const {
  const std::string value = Header("retry-after");
  if (value.empty() || value.size() > 6 ||
      !std::all_of(value.begin(), value.end(), [](unsigned char c) { return std::isdigit(c); })) {
    return fallback;
  }
  return std::chrono::seconds(std::stol(value));
}

RestSession::RestSession(RestEndpoint endpoint) : endpoint_(std::move(endpoint)) {
  GlobalInit();
  curl_ = curl_easy_init();
}

RestSession::~RestSession() {
  ArrayCall quick;
  quick.deadline = Clock::now() + std::chrono::seconds(2);
  quick.retry = false;
  Logout(quick);
  if (curl_ != nullptr) curl_easy_cleanup(curl_);
}

Result<RestResponse> RestSession::Send(const std::string& method, const std::string& path,
                                       const std::string& body, Clock::time_point deadline) {
  const std::string url = endpoint_.base_url + path;
  if (curl_ == nullptr) return Status::Internal("curl_easy_init failed");
  const auto now = Clock::now();
  if (now >= deadline) {
    return Status::Unavailable(method + " " + url + ": not sent, the deadline has passed");
  }
  auto timeout = std::min<Clock::duration>(endpoint_.request_timeout, deadline - now);
  // Rounded up, plus a millisecond for curl's own clock: a request that
  // times out has then reached the deadline, which callers tell from other
  // failures by the clock (the commit's HoldWritesTimeout). Truncating made
  // curl give up a fraction of a millisecond early, and such a timeout
  // looked like an array that failed.
  const long timeout_ms =
      static_cast<long>(std::chrono::ceil<std::chrono::milliseconds>(timeout).count()) + 1;

  // A reset keeps the open connection and the TLS session cache.
  curl_easy_reset(curl_);
  RestResponse response;
  curl_slist* headers = curl_slist_append(nullptr, "Accept: application/json");
  if (!body.empty()) headers = curl_slist_append(headers, "Content-Type: application/json");
  const RestLogin& login = endpoint_.login;
  if (login.scheme == RestLogin::Scheme::kSession && !token_.empty()) {
    headers = curl_slist_append(headers,
                                (login.token_header + ": " + login.token_prefix + token_).c_str());
  } else if (login.scheme == RestLogin::Scheme::kBearer) {
    headers = curl_slist_append(headers, ("Authorization: Bearer " + endpoint_.password).c_str());
  }
  curl_easy_setopt(curl_, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl_, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, headers);
  if (method == "GET") {
    curl_easy_setopt(curl_, CURLOPT_HTTPGET, 1L);
  } else {
    curl_easy_setopt(curl_, CURLOPT_CUSTOMREQUEST, method.c_str());
    if (!body.empty() || method == "POST") {
      curl_easy_setopt(curl_, CURLOPT_POSTFIELDS, body.c_str());
      curl_easy_setopt(curl_, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
    }
  }
  curl_easy_setopt(curl_, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(
      curl_, CURLOPT_CONNECTTIMEOUT_MS,
      std::min<long>(timeout_ms, static_cast<long>(endpoint_.connect_timeout.count())));
  curl_easy_setopt(curl_, CURLOPT_PROTOCOLS_STR, "http,https");
  if (!endpoint_.ca_file.empty())
    curl_easy_setopt(curl_, CURLOPT_CAINFO, endpoint_.ca_file.c_str());
  curl_easy_setopt(curl_, CURLOPT_SSL_VERIFYPEER, endpoint_.insecure ? 0L : 1L);
  curl_easy_setopt(curl_, CURLOPT_SSL_VERIFYHOST, endpoint_.insecure ? 0L : 2L);
  curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(curl_, CURLOPT_WRITEDATA, &response.body);
  curl_easy_setopt(curl_, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(curl_, CURLOPT_HEADERDATA, &response.headers);
  char error[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(curl_, CURLOPT_ERRORBUFFER, error);
  if (login.scheme == RestLogin::Scheme::kBasic) {
    curl_easy_setopt(curl_, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
    curl_easy_setopt(curl_, CURLOPT_USERNAME, endpoint_.user.c_str());
    curl_easy_setopt(curl_, CURLOPT_PASSWORD, endpoint_.password.c_str());
  }

  ++requests_;
  const CURLcode rc = curl_easy_perform(curl_);
  curl_slist_free_all(headers);
  if (rc != CURLE_OK) {
    // libcurl's messages name hosts, ports and certificates, never headers.
    return Status::Unavailable(method + " " + url + ": " +
                               (error[0] != '\0' ? error : curl_easy_strerror(rc)));
  }
  curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &response.status);
  return response;
}

Status RestSession::Login(const ArrayCall& call) {
  const RestLogin& login = endpoint_.login;
  if (login.scheme != RestLogin::Scheme::kSession) return Status::Ok();
  const std::string body = "{" + JsonString(login.user_field) + ":" + JsonString(endpoint_.user) +
                           "," + JsonString(login.password_field) + ":" +
                           JsonString(endpoint_.password) + "}";
  token_.clear();
  Result<RestResponse> r = Send("POST", login.path, body, call.deadline);
  if (!r.ok()) return r.status();
  const std::string url = endpoint_.base_url + login.path;
  if (r->status == 401 || r->status == 403) {
    return Status::Config("POST " + url + ": the array refused the log-in of user '" +
                          endpoint_.user + "' (" + std::to_string(r->status) +
                          "); check the credentials file that the config field "
                          "\"credentials_file\" names");
  }
  if (r->status != 201 && r->status != 200) return StatusFromResponse("POST", url, *r);
  if (!login.token_response_header.empty()) {
    std::string header = login.token_response_header;
    std::transform(header.begin(), header.end(), header.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    token_ = r->Header(header);
    if (token_.empty()) {
      return Status::Unavailable("POST " + url + ": the log-in answered " +
                                 std::to_string(r->status) + " without a " +
                                 login.token_response_header + " header");
    }
  } else {
    rapidjson::Document doc;
    doc.Parse(r->body.c_str());
    // Members are looked at only in an object (MemberEnd() of anything else
    // is undefined in RapidJSON).
    const rapidjson::Value* token = nullptr;
    if (doc.IsObject()) {
      auto it = doc.FindMember(login.token_field.c_str());
      if (it != doc.MemberEnd() && it->value.IsString() && it->value.GetStringLength() > 0)
        token = &it->value;
    }
    if (token == nullptr) {
      return Status::Unavailable("POST " + url + ": the log-in answered " +
                                 std::to_string(r->status) + " without a string \"" +
                                 login.token_field + "\" member holding the token");
    }
    token_.assign(token->GetString(), token->GetStringLength());
  }
  session_path_ = login.logout ? r->Header("location") : "";
  // A Location may be absolute; keep the path.
  if (session_path_.rfind(endpoint_.base_url, 0) == 0) {
    session_path_ = session_path_.substr(endpoint_.base_url.size());
  }
  ++logins_;
  return Status::Ok();
}

Status RestSession::Warm(const ArrayCall& call) {
  if (!logged_in()) return Redacted(Login(call));
  // A cheap authenticated GET: proves the token and opens the connection.
  const std::string& probe = endpoint_.login.probe_path;
  Result<RestResponse> r = Call("GET", probe, "", call);
  if (!r.ok()) return r.status();
  if (r->status != 200) return StatusFromResponse("GET", endpoint_.base_url + probe, *r);
  return Status::Ok();
}

std::string RestSession::Redact(std::string text) const {
  for (const std::string* secret : {&endpoint_.password, &token_}) {
    if (secret->empty()) continue;
    for (size_t at = text.find(*secret); at != std::string::npos;
         at = text.find(*secret, at + 10)) {
      text.replace(at, secret->size(), "<redacted>");
    }
  }
  return text;
}

Status RestSession::Redacted(Status s) const {
  if (s.ok()) return s;
  return Status(s.code(), Redact(s.message()));
}

Result<RestResponse> RestSession::Call(const std::string& method, const std::string& path,
                                       const std::string& body, const ArrayCall& policy) {
  bool logged_in_again = false;
  auto backoff = std::chrono::duration_cast<std::chrono::milliseconds>(kFirstBackoff);
  for (int attempt = 1;; ++attempt) {
    if (!logged_in()) SNAPSET_RETURN_IF_ERROR(Redacted(Login(policy)));
    Result<RestResponse> r = Send(method, path, body, policy.deadline);
    const bool more = policy.retry && attempt < kMaxAttempts;
    if (!r.ok()) {
      // A transport failure: only a GET is surely safe to send again.
      if (!more || method != "GET") return Redacted(r.status());
    } else if (r->status == 401 && !logged_in_again &&
               endpoint_.login.scheme == RestLogin::Scheme::kSession) {
      // The token expired or the array restarted: once, log in again.
      logged_in_again = true;
      token_.clear();
      continue;
    } else if ((r->status != 429 && r->status != 503) || !more) {
      return r;
    } else {
      backoff = r->RetryAfter(backoff);
    }
    if (Clock::now() + backoff >= policy.deadline) {
      if (r.ok()) return r;
      return Redacted(r.status());
    }
    std::this_thread::sleep_for(backoff);
    backoff = std::min<std::chrono::milliseconds>(backoff * 2, kMaxBackoff);
  }
}

void RestSession::Logout(const ArrayCall& policy) {
  if (token_.empty()) return;
  if (!session_path_.empty()) static_cast<void>(Send("DELETE", session_path_, "", policy.deadline));
  token_.clear();
  session_path_.clear();
}

Status StatusFromResponse(const std::string& method, const std::string& url,
                          const RestResponse& response) {
  std::string said;
  rapidjson::Document doc;
  doc.Parse(response.body.c_str());
  if (!doc.HasParseError() && doc.IsObject() && doc.HasMember("error") && doc["error"].IsObject()) {
    const auto& e = doc["error"];
    if (e.HasMember("code") && e["code"].IsString()) said = e["code"].GetString();
    if (e.HasMember("message") && e["message"].IsString()) {
      said += std::string(said.empty() ? "" : ": ") + e["message"].GetString();
    }
  }
  if (said.empty()) said = response.body.empty() ? "no body" : "body: " + Quote(response.body);
  const std::string message = method + " " + url + ": the array answered " +
                              std::to_string(response.status) + " (" + said + ")";
  switch (response.status) {
    case 400:
      return Status::InvalidArgument(message);
    case 401:
    case 403:
      return Status::Config(message);
    case 404:
      return Status::NotFound(message);
    case 409:
      return said.find("ResourceAlreadyExists") != std::string::npos
                 ? Status::AlreadyExists(message)
                 : Status::BadState(message);
    case 507:
      return Status::InsufficientStorage(message);
    default:
      return Status::Unavailable(message);
  }
}

Result<rapidjson::Document> JsonObject(const std::string& method, const std::string& url,
                                       const RestResponse& response) {
  rapidjson::Document doc;
  doc.Parse(response.body.c_str());
  if (doc.HasParseError()) {
    return Status::Unavailable(method + " " + url + ": the array's " +
                               std::to_string(response.status) + " body is not JSON (" +
                               rapidjson::GetParseError_En(doc.GetParseError()) + " at offset " +
                               std::to_string(doc.GetErrorOffset()) + ")");
  }
  if (!doc.IsObject()) {
    return Status::Unavailable(method + " " + url + ": the array's " +
                               std::to_string(response.status) + " body is JSON but not an object");
  }
  return doc;
}

}  // namespace snapset::rest
