// The wire format of snapset-cowd's control socket, shared by the client
// (cowd_client.cc) and the daemon so that both spell every op and field the
// same way. docs/software-cow.md describes each request and reply.
//
// Framing: one JSON object per line ('\n'), UTF-8, each way. A request has a
// string "op"; a reply has a boolean "ok" and, when false, "code" (a
// snapset::CodeName) and "message".
//
// Thread-safety: free functions without shared state.
#ifndef SNAPSET_COW_PROTOCOL_HPP
#define SNAPSET_COW_PROTOCOL_HPP

#include <snapset/status.hpp>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "providers/software-cow/client/cowd_client.hpp"

namespace snapset::cow::protocol {

// Longest request or reply line either side accepts, newline excluded.
constexpr size_t kMaxLineBytes = 4 * 1024 * 1024;

// Ops.
inline constexpr const char* kOpInfo = "info";
inline constexpr const char* kOpVolumeCreate = "volume.create";
inline constexpr const char* kOpVolumeDelete = "volume.delete";
inline constexpr const char* kOpVolumeList = "volume.list";
inline constexpr const char* kOpVolumeGet = "volume.get";
inline constexpr const char* kOpSnapshotCreate = "snapshot.create";
inline constexpr const char* kOpSnapshotDelete = "snapshot.delete";
inline constexpr const char* kOpSnapshotList = "snapshot.list";
inline constexpr const char* kOpWritesHold = "writes.hold";
inline constexpr const char* kOpWritesRelease = "writes.release";
inline constexpr const char* kOpRevert = "revert";
inline constexpr const char* kOpChanged = "changed";

// The longest hold a request may ask for. The commit window is 10 s
// (DESIGN §4); this only bounds mistakes.
constexpr uint64_t kMaxHoldMs = 300'000;

// Builds a request or reply line with RapidJSON (escaping done right).
using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

// {"ok":false,"code":...,"message":...}
std::string ErrorReply(const Status& status);

// Field accessors on a parsed request or reply. Each returns InvalidArgument
// naming the field when it is present with the wrong type (or, for the
// Required* forms, missing).
Result<std::string> RequiredString(const rapidjson::Value& obj, const char* field);
Result<std::string> OptionalString(const rapidjson::Value& obj, const char* field);
Result<uint64_t> OptionalUint(const rapidjson::Value& obj, const char* field, uint64_t dflt);

// Code from its CodeName; unknown names become kInternal.
Code CodeFromName(std::string_view name);

// Struct <-> JSON for the reply bodies, so both ends agree on field names.
// The Write* functions write the members only (no braces), so the daemon can
// add members of its own to the same object.
void WriteVolumeMembers(Writer& w, const CowVolumeStatus& v);
void WriteSnapshotMembers(Writer& w, const CowSnapshot& s);
Result<CowVolumeStatus> ParseVolume(const rapidjson::Value& v);
Result<CowSnapshot> ParseSnapshot(const rapidjson::Value& v);

}  // namespace snapset::cow::protocol

#endif  // SNAPSET_COW_PROTOCOL_HPP
