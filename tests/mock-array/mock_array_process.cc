#include "tests/mock-array/mock_array_process.hpp"

#include <curl/curl.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <cerrno>
#include <chrono>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "tests/support/prerequisites.hpp"
#include "tests/support/tgtd.hpp"

namespace snapset::test {
namespace {

size_t OnBody(char* data, size_t size, size_t count, void* out) {
  static_cast<std::string*>(out)->append(data, size * count);
  return size * count;
}

size_t OnHeader(char* data, size_t size, size_t count, void* out) {
  std::string line(data, size * count);
  const size_t colon = line.find(':');
  if (colon != std::string::npos) {
    std::string name = line.substr(0, colon);
    std::transform(name.begin(), name.end(), name.begin(), ::tolower);
    std::string value = line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(' '));
    value.erase(value.find_last_not_of("\r\n ") + 1);
    (*static_cast<std::map<std::string, std::string>*>(out))[name] = value;
  }
  return size * count;
}

// The children of a process's main thread: the array forks its tgtd there.
std::vector<pid_t> ChildrenOf(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children");
  std::vector<pid_t> out;
  pid_t child;
  while (in >> child) out.push_back(child);
  return out;
}

void WaitGone(pid_t pid, int grace_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(grace_ms);
  for (;;) {
    const pid_t r = waitpid(pid, nullptr, WNOHANG);
    if (r == pid || (r < 0 && errno == ECHILD)) return;
    if (std::chrono::steady_clock::now() >= deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace

rapidjson::Document HttpResponse::Json() const {
  rapidjson::Document doc;
  doc.Parse(body.c_str());
  return doc;
}

std::string HttpResponse::ErrorCode() const {
  rapidjson::Document doc = Json();
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("error")) return "";
  return doc["error"]["code"].GetString();
}

std::string HttpResponse::RelatedProperty() const {
  rapidjson::Document doc = Json();
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("error")) return "";
  const auto& info = doc["error"]["@Message.ExtendedInfo"];
  if (!info.IsArray() || info.Empty()) return "";
  const auto& related = info[0]["RelatedProperties"];
  if (!related.IsArray() || related.Empty()) return "";
  return related[0].GetString();
}

HttpResponse Http(const std::string& method, const std::string& url, const std::string& body,
                  const std::string& token, const HttpOptions& options) {
  HttpResponse response;
  CURL* curl = curl_easy_init();
  if (curl == nullptr) throw std::runtime_error("curl_easy_init");
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  if (!token.empty()) headers = curl_slist_append(headers, ("X-Auth-Token: " + token).c_str());
  for (const std::string& h : options.headers) headers = curl_slist_append(headers, h.c_str());
  if (!options.ca_file.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, options.ca_file.c_str());
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  if (!body.empty() || method == "POST") {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  }
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &response.body);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &response.headers);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, options.timeout_ms);
  const CURLcode rc = curl_easy_perform(curl);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response.status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  if (rc != CURLE_OK && !options.throw_on_transport_error) {
    response.status = 0;
    response.transport_error = curl_easy_strerror(rc);
  } else if (rc != CURLE_OK) {
    throw std::runtime_error(method + " " + url + ": " + curl_easy_strerror(rc));
  }
  return response;
}

HttpResponse PollTaskMonitor(const std::string& url, const std::string& token,
                             const HttpOptions& options, long timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    HttpResponse r = Http("GET", url, "", token, options);
    if (r.status != 202) return r;
    if (std::chrono::steady_clock::now() >= deadline) {
      throw std::runtime_error("task monitor " + url + " still answers 202 after " +
                               std::to_string(timeout_ms) + " ms");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

std::string MockArrayBinary() { return SNAPSET_MOCK_ARRAY; }

bool MockArrayAvailable() {
  const Status tgt = Tgtd::CheckPrerequisites();
  return Available(tgt.ok() ? "" : tgt.message());
}

MockArrayProcess::MockArrayProcess(const std::string& state_dir,
                                   const std::vector<std::string>& extra) {
  // A killed array's tgtd is reparented to us, not to a PID 1 that never
  // reaps, so that Kill9() can wait for it.
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  std::vector<std::string> args = {SNAPSET_MOCK_ARRAY, "--listen",    "127.0.0.1:0",
                                   "--iscsi-portal",   "127.0.0.1:0", "--state-dir",
                                   state_dir};
  args.insert(args.end(), extra.begin(), extra.end());
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
  pid_ = fork();
  if (pid_ == 0) {
    dup2(out[1], STDOUT_FILENO);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(out[1]);
  std::string line;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (line.find('\n') == std::string::npos && std::chrono::steady_clock::now() < deadline) {
    pollfd pfd{out[0], POLLIN, 0};
    if (poll(&pfd, 1, 100) <= 0) continue;
    char buffer[1024];
    const ssize_t n = read(out[0], buffer, sizeof(buffer));
    if (n <= 0) break;
    line.append(buffer, static_cast<size_t>(n));
  }
  close(out[0]);
  rapidjson::Document doc;
  doc.Parse(line.c_str());
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("ready")) {
    Stop();
    throw std::runtime_error("snapset-mock-array did not get ready; it printed: " + line);
  }
  rest_ = doc["rest"].GetString();
  portal_ = doc["iscsi_portal"].GetString();
  name_ = doc["name"].GetString();
}

MockArrayProcess::~MockArrayProcess() { Stop(); }

void MockArrayProcess::Reap(int signal_number, int grace_ms) {
  if (pid_ <= 0) return;
  const std::vector<pid_t> children = ChildrenOf(pid_);
  kill(pid_, signal_number);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(grace_ms);
  for (;;) {
    int status = 0;
    const pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      exit_status_ = status;
      break;
    }
    if (r < 0 && errno != EINTR) break;
    if (std::chrono::steady_clock::now() >= deadline) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      exit_status_ = status;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  pid_ = -1;
  for (pid_t child : children) WaitGone(child, 3000);
}

int MockArrayProcess::Stop() {
  Reap(SIGTERM, 5000);
  return exit_status_;
}

void MockArrayProcess::Kill9() { Reap(SIGKILL, 5000); }

std::string MockArrayProcess::Login() const { return Login(HttpOptions{}); }

std::string MockArrayProcess::Login(const HttpOptions& options) const {
  HttpResponse r = Http("POST", Url("/redfish/v1/SessionService/Sessions"),
                        R"({"UserName":"admin","Password":"admin"})", "", options);
  if (r.status != 201) throw std::runtime_error("login failed: " + r.body);
  return r.headers["x-auth-token"];
}

}  // namespace snapset::test
