// SPDX-License-Identifier: Apache-2.0
// One connected stream socket, read and written as lines within deadlines:
// the writer protocol's framing (one JSON object per line). Both sides use
// it. A read never waits past its deadline and never buffers more than
// writer_protocol::kMaxMessage bytes, whatever the peer sends.
//
// Thread-safety: none; one thread uses a channel at a time (Shutdown() may
// come from another thread to wake a blocked read).
#ifndef SNAPSET_WRITER_LINE_CHANNEL_HPP
#define SNAPSET_WRITER_LINE_CHANNEL_HPP

#include <snapset/status.hpp>

#include <chrono>
#include <string>
#include <string_view>

namespace snapset::writer_protocol {

class LineChannel {
 public:
  using Clock = std::chrono::steady_clock;
  enum class Error { kNone, kTimeout, kClosed, kTooLong, kSystem };

  explicit LineChannel(int fd) : fd_(fd) {}  // takes ownership
  ~LineChannel();
  LineChannel(LineChannel&& o) noexcept;
  LineChannel& operator=(LineChannel&&) = delete;
  LineChannel(const LineChannel&) = delete;
  LineChannel& operator=(const LineChannel&) = delete;

  int fd() const { return fd_; }
  // Why the last call failed.
  Error error() const { return error_; }

  // The next line, without its '\n'. Errors (error() says which): the peer
  // closed (kClosed), the deadline passed (kTimeout), a line longer than
  // kMaxMessage (kTooLong), a socket error (kSystem).
  Result<std::string> ReadLine(Clock::time_point deadline);
  // All of `data`, or an error as above (kClosed: the peer is gone).
  Status Write(std::string_view data, Clock::time_point deadline);
  // Wakes a ReadLine blocked in another thread; later calls fail kClosed.
  void Shutdown();

 private:
  Status Fail(Error e, std::string message);

  int fd_;
  std::string buffer_;
  Error error_ = Error::kNone;
};

}  // namespace snapset::writer_protocol

#endif  // SNAPSET_WRITER_LINE_CHANNEL_HPP
