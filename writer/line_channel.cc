// SPDX-License-Identifier: Apache-2.0
#include "writer/line_channel.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "writer/writer_protocol.hpp"

namespace snapset::writer_protocol {

namespace {

int MillisUntil(LineChannel::Clock::time_point deadline) {
  const auto left =
      std::chrono::ceil<std::chrono::milliseconds>(deadline - LineChannel::Clock::now());
  return static_cast<int>(std::clamp<int64_t>(left.count(), 0, 1 << 30));
}

}  // namespace

LineChannel::~LineChannel() {
  if (fd_ >= 0) ::close(fd_);
}

LineChannel::LineChannel(LineChannel&& o) noexcept
    : fd_(o.fd_), buffer_(std::move(o.buffer_)), error_(o.error_) {
  o.fd_ = -1;
}

Status LineChannel::Fail(Error e, std::string message) {
  error_ = e;
  return Status::Unavailable(std::move(message));
}

Result<std::string> LineChannel::ReadLine(Clock::time_point deadline) {
  error_ = Error::kNone;
  for (;;) {
    const size_t nl = buffer_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      return line;
    }
    if (buffer_.size() > kMaxMessage)
      return Fail(Error::kTooLong, "sent a message longer than " + std::to_string(kMaxMessage) +
                                       " bytes without a line end");
    if (fd_ < 0) return Fail(Error::kClosed, "the connection is closed");
    pollfd p{fd_, POLLIN, 0};
    const int ready = ::poll(&p, 1, MillisUntil(deadline));
    if (ready < 0) {
      if (errno == EINTR) continue;
      return Fail(Error::kSystem, std::string("poll failed: ") + std::strerror(errno));
    }
    if (ready == 0) return Fail(Error::kTimeout, "did not answer in time");
    char chunk[16384];
    const ssize_t n = ::recv(fd_, chunk, sizeof chunk, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      if (errno == ECONNRESET) return Fail(Error::kClosed, "closed the connection");
      return Fail(Error::kSystem, std::string("read failed: ") + std::strerror(errno));
    }
    if (n == 0) return Fail(Error::kClosed, "closed the connection");
    buffer_.append(chunk, static_cast<size_t>(n));
  }
}

Status LineChannel::Write(std::string_view data, Clock::time_point deadline) {
  error_ = Error::kNone;
  while (!data.empty()) {
    if (fd_ < 0) return Fail(Error::kClosed, "the connection is closed");
    pollfd p{fd_, POLLOUT, 0};
    const int ready = ::poll(&p, 1, MillisUntil(deadline));
    if (ready < 0) {
      if (errno == EINTR) continue;
      return Fail(Error::kSystem, std::string("poll failed: ") + std::strerror(errno));
    }
    if (ready == 0) return Fail(Error::kTimeout, "did not take the message in time");
    // MSG_NOSIGNAL: a peer that went away is an error here, not SIGPIPE.
    const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      if (errno == EPIPE || errno == ECONNRESET)
        return Fail(Error::kClosed, "closed the connection");
      return Fail(Error::kSystem, std::string("write failed: ") + std::strerror(errno));
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

void LineChannel::Shutdown() {
  if (fd_ >= 0) ::shutdown(fd_, SHUT_RDWR);
}

}  // namespace snapset::writer_protocol
