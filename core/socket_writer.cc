// SPDX-License-Identifier: Apache-2.0
#include "core/socket_writer.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace snapset {

namespace {

std::string Errno() { return std::strerror(errno); }

std::string Millis(SocketWriter::Clock::duration d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) + " ms";
}

}  // namespace

Result<std::unique_ptr<SocketWriter>> SocketWriter::Connect(const std::string& name,
                                                            const std::string& socket_path,
                                                            const std::vector<uid_t>& allowed_uids,
                                                            Clock::time_point deadline) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof addr.sun_path)
    return Status::InvalidArgument("writer socket path " + socket_path + " is too long");
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return Status::Internal("cannot create a socket: " + Errno());
  std::unique_ptr<SocketWriter> w(new SocketWriter(name, fd));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    if (errno != EINPROGRESS && errno != EAGAIN) {
      return Status::Unavailable("writer " + name + " is not running (" + socket_path + ": " +
                                 Errno() + ")");
    }
    // A listener with a full backlog: wait for it, within the deadline.
    pollfd p{fd, POLLOUT, 0};
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    if (::poll(&p, 1, static_cast<int>(std::max<int64_t>(0, left.count()))) <= 0)
      return Status::WriterTimeout("writer " + name + " did not accept a connection in time");
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0)
      return Status::Unavailable("writer " + name + " is not running (" + socket_path + ": " +
                                 std::strerror(err) + ")");
  }
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
    return Status::Internal("cannot read the credentials of writer " + name + ": " + Errno());
  const bool allowed = cred.uid == 0 || std::find(allowed_uids.begin(), allowed_uids.end(),
                                                  cred.uid) != allowed_uids.end();
  if (!allowed)
    return Status::Config("writer socket " + socket_path + " is served by pid " +
                          std::to_string(cred.pid) + " of uid " + std::to_string(cred.uid) +
                          ", which is neither root nor an allowed writer user; ignored (allow "
                          "the user in writers.json \"allowed_users\" if it is trusted)");
  w->pid_ = cred.pid;
  w->uid_ = cred.uid;
  return w;
}

Result<writer_protocol::Reply> SocketWriter::Call(const writer_protocol::Request& request,
                                                  Clock::time_point deadline) {
  const std::string event(writer::EventName(request.event));
  const std::string who = "writer " + name_ + " (pid " + std::to_string(pid_) + ")";
  if (closed_) return Status::WriterFailed(who + ": the connection is already closed");
  const auto started = Clock::now();
  auto fail = [&](const Status& io) -> Status {
    Close();
    using E = writer_protocol::LineChannel::Error;
    switch (channel_.error()) {
      case E::kTimeout:
        return Status::WriterTimeout(who + " did not answer " + event + " within " +
                                     Millis(deadline - started) + "; disconnected, so it aborts");
      case E::kClosed:
        return Status::WriterFailed(who + " went away during " + event +
                                    " (closed the connection: crashed or exited)");
      case E::kTooLong:
        return Status::WriterFailed(who + " answered " + event + " with garbage: " + io.message());
      default:
        return Status::WriterFailed(who + ", " + event + ": " + io.message());
    }
  };
  if (Status s = channel_.Write(writer_protocol::EncodeRequest(request), deadline); !s.ok())
    return fail(s);
  auto line = channel_.ReadLine(deadline);
  if (!line.ok()) return fail(line.status());
  auto reply = writer_protocol::DecodeReply(*line);
  if (!reply.ok()) {
    Close();
    std::string shown = line->substr(0, 120);
    return Status::WriterFailed(who + " answered " + event + " with garbage (" +
                                reply.status().message() + "): \"" + shown +
                                (line->size() > 120 ? "..." : "") + "\"");
  }
  return reply;
}

void SocketWriter::Close() {
  if (closed_) return;
  closed_ = true;
  channel_.Shutdown();
}

}  // namespace snapset
