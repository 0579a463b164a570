// SPDX-License-Identifier: Apache-2.0
// The writer protocol's messages (docs/writer-protocol.md): one JSON object
// per line, each way, at most kMaxMessage bytes. Shared by the writer
// library (writer side) and the coordinator (core/socket_writer.cc), so the
// two cannot disagree about the wire. Decoding never trusts its input: every
// error names the field and what was wrong, for a message that came from
// another program.
#ifndef SNAPSET_WRITER_WRITER_PROTOCOL_HPP
#define SNAPSET_WRITER_WRITER_PROTOCOL_HPP

#include <snapset/status.hpp>
#include <snapset/writer.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace snapset::writer_protocol {

using writer::Event;
using writer::Failure;
using writer::Metadata;
using writer::State;

inline constexpr size_t kMaxMessage = 1 << 20;

// Coordinator -> writer.
struct Request {
  int protocol = writer::kProtocolVersion;
  Event event = Event::kIdentify;
  std::string set_id;
  std::vector<std::string> volumes;
  std::vector<std::string> components;
  std::string backup_type = "full";
  int64_t timeout_ms = 0;  // time the writer has to answer (freeze: until thawed)
  std::map<std::string, std::string> backup_blob;
  // post-restore: "reverted", "not-reverted" or "partly-reverted" (absent
  // from a coordinator older than it; "" then).
  std::string restore_status;
};

// Writer -> coordinator: one per request.
struct Reply {
  int protocol = writer::kProtocolVersion;
  bool ok = true;
  State state = State::kStable;
  Failure failure = Failure::kNone;
  std::string message;               // on failure; for status: the last error
  std::optional<Metadata> metadata;  // identify
  std::map<std::string, std::string> backup_blob;
  std::string set_id;  // status: the set the writer is in, if any
};

// Each encodes to one line ending in '\n' (JSON escapes newlines in strings).
std::string EncodeRequest(const Request& r);
std::string EncodeReply(const Reply& r);
Result<Request> DecodeRequest(std::string_view line);
Result<Reply> DecodeReply(std::string_view line);

// A metadata document on its own (writers.d express writers, the catalog).
std::string MetadataToJson(const Metadata& m);
Result<Metadata> MetadataFromJson(std::string_view json);
std::string BlobToJson(const std::map<std::string, std::string>& blob);
Result<std::map<std::string, std::string>> BlobFromJson(std::string_view json);

// Writer names: letters, digits, '-', '_', '.', not starting with '.', at
// most 64 characters (they name a socket file).
bool IsValidWriterName(std::string_view name);

}  // namespace snapset::writer_protocol

#endif  // SNAPSET_WRITER_WRITER_PROTOCOL_HPP
