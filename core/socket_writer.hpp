// SPDX-License-Identifier: Apache-2.0
// The coordinator's end of one writer process's socket
// (docs/writer-protocol.md): connect, check who is listening, and send one
// event at a time within a deadline. Every error names the writer and the
// event, and says what happened: it refused, it hung, it went away, it
// answered garbage.
//
// Thread-safety: none; one thread drives a connection.
#ifndef SNAPSET_CORE_SOCKET_WRITER_HPP
#define SNAPSET_CORE_SOCKET_WRITER_HPP

#include <snapset/status.hpp>
#include <snapset/writer.hpp>

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "writer/line_channel.hpp"
#include "writer/writer_protocol.hpp"

namespace snapset {

class SocketWriter {
 public:
  using Clock = std::chrono::steady_clock;

  // Connects to `socket_path` (a writer named `name`) and checks with
  // SO_PEERCRED that the process listening runs as root or as one of
  // `allowed_uids`. Errors: Unavailable when nothing listens (a stale socket
  // of a writer that died), Config for a writer of a user not allowed.
  static Result<std::unique_ptr<SocketWriter>> Connect(const std::string& name,
                                                       const std::string& socket_path,
                                                       const std::vector<uid_t>& allowed_uids,
                                                       Clock::time_point deadline);

  const std::string& name() const { return name_; }
  pid_t pid() const { return pid_; }
  uid_t uid() const { return uid_; }

  // Sends `request` and reads the reply by `deadline`. The reply may be a
  // failure (reply.ok false): that is the writer's answer, not an error.
  // Errors: WriterTimeout (no answer in time; the connection is closed, so
  // the writer aborts), WriterFailed (it closed the connection, or answered
  // something that is not a reply). After an error the connection is
  // closed and every later call fails.
  Result<writer_protocol::Reply> Call(const writer_protocol::Request& request,
                                      Clock::time_point deadline);
  // Closes the connection: a writer still in a set aborts it.
  void Close();

 private:
  SocketWriter(std::string name, int fd) : name_(std::move(name)), channel_(fd) {}

  std::string name_;
  writer_protocol::LineChannel channel_;
  pid_t pid_ = 0;
  uid_t uid_ = 0;
  bool closed_ = false;
};

}  // namespace snapset

#endif  // SNAPSET_CORE_SOCKET_WRITER_HPP
