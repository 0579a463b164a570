// SPDX-License-Identifier: Apache-2.0
// Fuzz target: the REST toolkit's log-in and job polling on an array's
// answers (status, Retry-After, body), served from a loopback server. PollJob
// must end by its deadline whatever the answers say; nothing may crash or
// leak.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <snapset/rest.hpp>
#include <string_view>

#include "fuzz/canned_server.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static snapset::fuzz::CannedServer server;
  server.Serve(
      snapset::fuzz::SplitAnswers(std::string_view(reinterpret_cast<const char*>(data), size)));
  snapset::rest::RestEndpoint e;
  e.base_url = server.url();
  e.user = "u";
  e.password = "p";
  e.insecure = true;
  // Every other input logs in through a token in a JSON member.
  if (size > 0 && (data[0] & 1)) {
    e.login.token_response_header = "";
    e.login.token_field = "access_token";
  }
  snapset::rest::RestSession session(e);
  snapset::ArrayCall call;
  const auto start = std::chrono::steady_clock::now();
  call.deadline = start + std::chrono::milliseconds(300);
  call.in_window = size > 1 && (data[1] & 1);
  (void)snapset::rest::PollJob(session, "fuzz job", "/job", std::chrono::milliseconds(1), call);
  // The bound a caller relies on: never much past the deadline.
  if (std::chrono::steady_clock::now() - start > std::chrono::milliseconds(2500)) {
    std::fprintf(stderr, "PollJob ran past its deadline\n");
    std::abort();
  }
  return 0;
}
