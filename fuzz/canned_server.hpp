// SPDX-License-Identifier: Apache-2.0
// A loopback HTTP server for the fuzz targets: it answers the requests of
// one iteration, in order, with answers cut from the fuzz input, so that
// code which parses an array's answers (a driver, the REST toolkit) reads
// them through libcurl exactly as from an array.
//
// Input format: answers separated by "\n%%\n"; each answer is
// "STATUS[ Retry-After]\n" then the body. An answer that does not parse is
// a 200 with the whole chunk as its body. Past the last answer: a 404.
#ifndef SNAPSET_FUZZ_CANNED_SERVER_HPP
#define SNAPSET_FUZZ_CANNED_SERVER_HPP

#include <httplib.h>

#include <cstdlib>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace snapset::fuzz {

struct Answer {
  int status = 200;
  std::string retry_after;
  std::string body;
};

inline std::vector<Answer> SplitAnswers(std::string_view input) {
  std::vector<Answer> out;
  for (size_t at = 0; at <= input.size() && out.size() < 64;) {
    size_t end = input.find("\n%%\n", at);
    std::string_view chunk =
        input.substr(at, end == std::string_view::npos ? input.npos : end - at);
    Answer a;
    const size_t nl = chunk.find('\n');
    const std::string first(chunk.substr(0, nl));
    char* rest = nullptr;
    const long status = std::strtol(first.c_str(), &rest, 10);
    if (nl != std::string_view::npos && status >= 100 && status <= 599) {
      a.status = int(status);
      while (rest && *rest == ' ') ++rest;
      a.retry_after = rest ? rest : "";
      a.body = std::string(chunk.substr(nl + 1));
    } else {
      a.body = std::string(chunk);
    }
    out.push_back(std::move(a));
    if (end == std::string_view::npos) break;
    at = end + 4;
  }
  return out;
}

class CannedServer {
 public:
  CannedServer() {
    auto answer = [this](const httplib::Request&, httplib::Response& res) {
      std::lock_guard<std::mutex> lock(mu_);
      if (next_ >= answers_.size()) {
        res.status = 404;
        return;
      }
      const Answer& a = answers_[next_++];
      res.status = a.status;
      if (!a.retry_after.empty()) res.set_header("Retry-After", a.retry_after);
      // A log-in answer needs a token to get any further.
      res.set_header("X-Auth-Token", "fuzz-token");
      res.set_content(a.body, "application/json");
    };
    server_.Get(".*", answer);
    server_.Post(".*", answer);
    server_.Delete(".*", answer);
    server_.Patch(".*", answer);
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::yield();
  }
  ~CannedServer() {
    server_.stop();
    thread_.join();
  }
  void Serve(std::vector<Answer> answers) {
    std::lock_guard<std::mutex> lock(mu_);
    answers_ = std::move(answers);
    next_ = 0;
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::vector<Answer> answers_;
  size_t next_ = 0;
};

}  // namespace snapset::fuzz

#endif  // SNAPSET_FUZZ_CANNED_SERVER_HPP
