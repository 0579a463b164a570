// SPDX-License-Identifier: Apache-2.0
// Fuzz target: the writer protocol's decoders (writer/writer_protocol.hpp) on
// arbitrary text, as a writer or a coordinator would receive it from the
// other process. The input goes, whole, to DecodeRequest, DecodeReply,
// MetadataFromJson and BlobFromJson; then through a LineChannel over a
// socketpair (written from the other end, then that end shut), and every
// line read goes to DecodeRequest and DecodeReply again. Nothing may crash,
// hang or leak, and it aborts if:
//   - a decoded value, encoded again and decoded again, is not the same
//     value (fields compared; metadata through MetadataToJson);
//   - an encoded request or reply is not one line ending in '\n';
//   - the lines the channel returns are not the input's lines, or it ends
//     with anything but kClosed once the peer has shut its end.
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>

#include "writer/line_channel.hpp"
#include "writer/writer_protocol.hpp"

namespace {

namespace wp = snapset::writer_protocol;

// At most this much of the input goes through the socket: it fits in a Unix
// socket's buffer, so writing it all before reading never blocks.
constexpr size_t kChannelBytes = 64 * 1024;

[[noreturn]] void Fail(const char* what, std::string_view a, std::string_view b) {
  std::fprintf(stderr, "writer_protocol_fuzz: %s\n  first:  %.*s\n  second: %.*s\n", what,
               static_cast<int>(a.size()), a.data(), static_cast<int>(b.size()), b.data());
  std::abort();
}

void CheckLine(const std::string& line) {
  if (line.empty() || line.back() != '\n' || line.find('\n') != line.size() - 1)
    Fail("an encoded message is not one line ending in a line end", line, "");
}

// An encoder may fill in defaults, so a re-encoding can outgrow the limit
// the decoder enforces even though the input was within it; that is not a
// round-trip failure.
bool TooLong(const std::string& encoded) { return encoded.size() > wp::kMaxMessage; }

void RoundTripRequest(std::string_view text) {
  auto first = wp::DecodeRequest(text);
  if (!first.ok()) return;
  const std::string line = wp::EncodeRequest(*first);
  CheckLine(line);
  if (TooLong(line)) return;
  auto second = wp::DecodeRequest(line);
  if (!second.ok()) Fail("an encoded request does not decode", line, second.status().ToString());
  const wp::Request& a = *first;
  const wp::Request& b = *second;
  if (a.protocol != b.protocol || a.event != b.event || a.set_id != b.set_id ||
      a.volumes != b.volumes || a.components != b.components || a.backup_type != b.backup_type ||
      a.timeout_ms != b.timeout_ms || a.backup_blob != b.backup_blob)
    Fail("a request changed in a round trip", line, wp::EncodeRequest(b));
}

void RoundTripReply(std::string_view text) {
  auto first = wp::DecodeReply(text);
  if (!first.ok()) return;
  const std::string line = wp::EncodeReply(*first);
  CheckLine(line);
  if (TooLong(line)) return;
  auto second = wp::DecodeReply(line);
  if (!second.ok()) Fail("an encoded reply does not decode", line, second.status().ToString());
  const wp::Reply& a = *first;
  const wp::Reply& b = *second;
  if (a.protocol != b.protocol || a.ok != b.ok || a.state != b.state || a.failure != b.failure ||
      a.message != b.message || a.metadata.has_value() != b.metadata.has_value() ||
      (a.metadata && wp::MetadataToJson(*a.metadata) != wp::MetadataToJson(*b.metadata)) ||
      a.backup_blob != b.backup_blob || a.set_id != b.set_id)
    Fail("a reply changed in a round trip", line, wp::EncodeReply(b));
}

void RoundTripMetadata(std::string_view text) {
  auto first = wp::MetadataFromJson(text);
  if (!first.ok()) return;
  const std::string json = wp::MetadataToJson(*first);
  if (TooLong(json)) return;
  auto second = wp::MetadataFromJson(json);
  if (!second.ok())
    Fail("an encoded metadata document does not decode", json, second.status().ToString());
  const std::string again = wp::MetadataToJson(*second);
  if (json != again) Fail("a metadata document changed in a round trip", json, again);
}

void RoundTripBlob(std::string_view text) {
  auto first = wp::BlobFromJson(text);
  if (!first.ok()) return;
  const std::string json = wp::BlobToJson(*first);
  if (TooLong(json)) return;
  auto second = wp::BlobFromJson(json);
  if (!second.ok()) Fail("an encoded blob does not decode", json, second.status().ToString());
  if (*first != *second) Fail("a blob changed in a round trip", json, wp::BlobToJson(*second));
}

void ThroughChannel(std::string_view text) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    std::perror("socketpair");
    std::abort();
  }
  using Clock = wp::LineChannel::Clock;
  wp::LineChannel reader(fds[0]);
  wp::LineChannel writer(fds[1]);
  // Nothing sent yet, deadline already past: the timeout path, at no cost.
  if (reader.ReadLine(Clock::now()).ok() || reader.error() != wp::LineChannel::Error::kTimeout)
    Fail("a read of an empty socket did not time out", "", "");
  const std::string_view sent = text.substr(0, kChannelBytes);
  const auto deadline = Clock::now() + std::chrono::milliseconds(50);
  if (!writer.Write(sent, deadline).ok()) Fail("writing to the socket failed", sent, "");
  ::shutdown(writer.fd(), SHUT_WR);
  // The peer has shut its end, so reads never wait: the lines in `sent`,
  // then kClosed (the bytes after the last '\n' are not a message).
  std::string_view expected = sent;
  for (;;) {
    auto line = reader.ReadLine(deadline);
    if (!line.ok()) {
      if (reader.error() != wp::LineChannel::Error::kClosed)
        Fail("the channel did not end with kClosed", line.status().ToString(), "");
      if (expected.find('\n') != std::string_view::npos)
        Fail("the channel lost lines", expected, "");
      break;
    }
    const size_t nl = expected.find('\n');
    if (nl == std::string_view::npos || expected.substr(0, nl) != *line)
      Fail("the channel returned a line that was not sent", *line, expected);
    expected.remove_prefix(nl + 1);
    RoundTripRequest(*line);
    RoundTripReply(*line);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  RoundTripRequest(text);
  RoundTripReply(text);
  RoundTripMetadata(text);
  RoundTripBlob(text);
  ThroughChannel(text);
  return 0;
}
