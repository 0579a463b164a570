// SPDX-License-Identifier: Apache-2.0
#include "iscsi/portal.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>

#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>

namespace snapset::iscsi::detail {
namespace {

bool IsNumericHost(const std::string& host) {
  unsigned char address[sizeof(in6_addr)];
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    return inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), address) == 1;
  }
  return inet_pton(AF_INET, host.c_str(), address) == 1;
}

}  // namespace

Result<std::string> ResolvePortal(const LunUrl& url,
                                  std::chrono::steady_clock::time_point deadline) {
  const std::string port = std::to_string(url.port);
  if (IsNumericHost(url.host)) return url.host + ":" + port;
  struct Lookup {
    std::mutex mutex;
    std::condition_variable done_cv;
    bool done = false;
    int error = 0;
    std::string address;
  };
  auto lookup = std::make_shared<Lookup>();
  std::thread([lookup, host = url.host] {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    const int error = getaddrinfo(host.c_str(), nullptr, &hints, &found);
    std::string address;
    if (error == 0) {
      char text[INET6_ADDRSTRLEN] = "";
      getnameinfo(found->ai_addr, found->ai_addrlen, text, sizeof(text), nullptr, 0,
                  NI_NUMERICHOST);
      freeaddrinfo(found);
      address = std::strchr(text, ':') != nullptr ? "[" + std::string(text) + "]" : text;
    }
    std::lock_guard lock(lookup->mutex);
    lookup->error = error;
    lookup->address = std::move(address);
    lookup->done = true;
    lookup->done_cv.notify_all();
  }).detach();
  std::unique_lock lock(lookup->mutex);
  if (!lookup->done_cv.wait_until(lock, deadline, [&] { return lookup->done; })) {
    return Status::Unavailable(url.canonical + ": timed out resolving " + url.host);
  }
  if (lookup->error != 0) {
    return Status::Unavailable(url.canonical + ": cannot resolve " + url.host + ": " +
                               gai_strerror(lookup->error));
  }
  return lookup->address + ":" + port;
}

}  // namespace snapset::iscsi::detail
