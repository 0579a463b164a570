// SPDX-License-Identifier: Apache-2.0
// A TCP port on 127.0.0.1 for tests of what a client does against a portal
// that misbehaves: one that refuses connections (bound, not listening), or
// one that accepts them (the kernel completes the handshake of a listening
// socket) and never reads a byte, like a hung service.
#ifndef SNAPSET_TESTS_SUPPORT_LOOPBACK_PORT_HPP
#define SNAPSET_TESTS_SUPPORT_LOOPBACK_PORT_HPP

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>

namespace snapset::test {

class LoopbackPort {
 public:
  enum Mode { kRefusing, kSilent };

  explicit LoopbackPort(Mode mode) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    BOOST_REQUIRE(fd_ >= 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    BOOST_REQUIRE(bind(fd_, reinterpret_cast<sockaddr*>(&address), length) == 0);
    BOOST_REQUIRE(getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length) == 0);
    if (mode == kSilent) BOOST_REQUIRE(listen(fd_, 4) == 0);
    port_ = ntohs(address.sin_port);
  }
  ~LoopbackPort() { close(fd_); }
  LoopbackPort(const LoopbackPort&) = delete;
  LoopbackPort& operator=(const LoopbackPort&) = delete;

  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

}  // namespace snapset::test

#endif  // SNAPSET_TESTS_SUPPORT_LOOPBACK_PORT_HPP
