#include "providers/software-cow/client/protocol.hpp"

namespace snapset::cow::protocol {

namespace {

void Key(Writer& w, const char* k) { w.Key(k); }
void Str(Writer& w, const std::string& s) { w.String(s.data(), rapidjson::SizeType(s.size())); }

}  // namespace

std::string ErrorReply(const Status& status) {
  rapidjson::StringBuffer sb;
  Writer w(sb);
  w.StartObject();
  Key(w, "ok");
  w.Bool(false);
  Key(w, "code");
  std::string_view name = CodeName(status.ok() ? Code::kInternal : status.code());
  w.String(name.data(), rapidjson::SizeType(name.size()));
  Key(w, "message");
  Str(w, status.ok() ? std::string("error reported without a message") : status.message());
  w.EndObject();
  return sb.GetString();
}

Result<std::string> RequiredString(const rapidjson::Value& obj, const char* field) {
  auto it = obj.FindMember(field);
  if (it == obj.MemberEnd()) {
    return Status::InvalidArgument(std::string("missing field \"") + field + "\" (a string)");
  }
  if (!it->value.IsString()) {
    return Status::InvalidArgument(std::string("field \"") + field + "\" must be a string");
  }
  return std::string(it->value.GetString(), it->value.GetStringLength());
}

Result<std::string> OptionalString(const rapidjson::Value& obj, const char* field) {
  auto it = obj.FindMember(field);
  if (it == obj.MemberEnd() || it->value.IsNull()) return std::string();
  if (!it->value.IsString()) {
    return Status::InvalidArgument(std::string("field \"") + field + "\" must be a string");
  }
  return std::string(it->value.GetString(), it->value.GetStringLength());
}

Result<uint64_t> OptionalUint(const rapidjson::Value& obj, const char* field, uint64_t dflt) {
  auto it = obj.FindMember(field);
  if (it == obj.MemberEnd() || it->value.IsNull()) return dflt;
  if (!it->value.IsUint64()) {
    return Status::InvalidArgument(std::string("field \"") + field +
                                   "\" must be a non-negative integer");
  }
  return it->value.GetUint64();
}

Code CodeFromName(std::string_view name) {
  for (Code c : {Code::kOk, Code::kInvalidArgument, Code::kNotFound, Code::kAlreadyExists,
                 Code::kVolumeNotSupported, Code::kProviderVeto, Code::kBadState,
                 Code::kHoldWritesTimeout, Code::kWriterTimeout, Code::kWriterFailed,
                 Code::kInsufficientStorage, Code::kMaxSnapshots, Code::kMaxVolumes,
                 Code::kUnavailable, Code::kInternal, Code::kNotImplemented, Code::kConfig}) {
    if (CodeName(c) == name) return c;
  }
  return Code::kInternal;
}

void WriteVolumeMembers(Writer& w, const CowVolumeStatus& v) {
  Key(w, "name");
  Str(w, v.name);
  Key(w, "origin_path");
  Str(w, v.origin_path);
  Key(w, "diff_path");
  Str(w, v.diff_path);
  Key(w, "served_origin");
  Str(w, v.served_origin);
  Key(w, "size_bytes");
  w.Uint64(v.size_bytes);
  Key(w, "chunk_size");
  w.Uint(v.chunk_size);
  Key(w, "diff_bytes_max");
  w.Uint64(v.diff_bytes_max);
  Key(w, "diff_bytes_used");
  w.Uint64(v.diff_bytes_used);
  Key(w, "chunks_copied");
  w.Uint64(v.chunks_copied);
  Key(w, "snapshots");
  w.Uint64(v.snapshots);
  Key(w, "snapshots_deleted_by_overflow");
  w.Uint64(v.snapshots_deleted_by_overflow);
  Key(w, "writes_held");
  w.Bool(v.writes_held);
  Key(w, "overflow_events");
  w.StartArray();
  for (const auto& e : v.overflow_events) {
    w.StartObject();
    Key(w, "snapshot_id");
    Str(w, e.snapshot_id);
    Key(w, "when_unix_ns");
    w.Int64(e.when_unix_ns);
    Key(w, "reason");
    Str(w, e.reason);
    w.EndObject();
  }
  w.EndArray();
}

void WriteSnapshotMembers(Writer& w, const CowSnapshot& s) {
  Key(w, "id");
  Str(w, s.id);
  Key(w, "epoch");
  w.Uint64(s.epoch);
  Key(w, "created_unix_ns");
  w.Int64(s.created_unix_ns);
  Key(w, "valid");
  w.Bool(s.valid);
  Key(w, "invalid_reason");
  Str(w, s.invalid_reason);
  Key(w, "path");
  Str(w, s.path);
}

namespace {

// Lenient readers for replies: a missing member keeps the default, a member
// of the wrong type is an error (the daemon and client disagree).
Status ReadStr(const rapidjson::Value& v, const char* k, std::string* out) {
  auto r = OptionalString(v, k);
  if (!r.ok()) return r.status();
  *out = std::move(r).value();
  return Status::Ok();
}

Status ReadU64(const rapidjson::Value& v, const char* k, uint64_t* out) {
  auto r = OptionalUint(v, k, *out);
  if (!r.ok()) return r.status();
  *out = r.value();
  return Status::Ok();
}

Status ReadI64(const rapidjson::Value& v, const char* k, int64_t* out) {
  auto it = v.FindMember(k);
  if (it == v.MemberEnd()) return Status::Ok();
  if (!it->value.IsInt64()) return Status::InvalidArgument(std::string("field \"") + k + "\" must be an integer");
  *out = it->value.GetInt64();
  return Status::Ok();
}

Status ReadBool(const rapidjson::Value& v, const char* k, bool* out) {
  auto it = v.FindMember(k);
  if (it == v.MemberEnd()) return Status::Ok();
  if (!it->value.IsBool()) return Status::InvalidArgument(std::string("field \"") + k + "\" must be a boolean");
  *out = it->value.GetBool();
  return Status::Ok();
}

}  // namespace

Result<CowVolumeStatus> ParseVolume(const rapidjson::Value& v) {
  if (!v.IsObject()) return Status::InvalidArgument("a volume must be a JSON object");
  CowVolumeStatus s;
  uint64_t chunk = 0;
  SNAPSET_RETURN_IF_ERROR(ReadStr(v, "name", &s.name));
  SNAPSET_RETURN_IF_ERROR(ReadStr(v, "origin_path", &s.origin_path));
  SNAPSET_RETURN_IF_ERROR(ReadStr(v, "diff_path", &s.diff_path));
  SNAPSET_RETURN_IF_ERROR(ReadStr(v, "served_origin", &s.served_origin));
  SNAPSET_RETURN_IF_ERROR(ReadU64(v, "size_bytes", &s.size_bytes));
  SNAPSET_RETURN_IF_ERROR(ReadU64(v, "chunk_size", &chunk));
  s.chunk_size = uint32_t(chunk);
  SNAPSET_RETURN_IF_ERROR(ReadU64(v, "diff_bytes_max", &s.diff_bytes_max));
  SNAPSET_RETURN_IF_ERROR(ReadU64(v, "diff_bytes_used", &s.diff_bytes_used));
  SNAPSET_RETURN_IF_ERROR(ReadU64(v, "chunks_copied", &s.chunks_copied));
  SNAPSET_RETURN_IF_ERROR(ReadU64(v, "snapshots", &s.snapshots));
  SNAPSET_RETURN_IF_ERROR(
      ReadU64(v, "snapshots_deleted_by_overflow", &s.snapshots_deleted_by_overflow));
  SNAPSET_RETURN_IF_ERROR(ReadBool(v, "writes_held", &s.writes_held));
  auto ev = v.FindMember("overflow_events");
  if (ev != v.MemberEnd()) {
    if (!ev->value.IsArray()) return Status::InvalidArgument("\"overflow_events\" must be an array");
    for (const auto& e : ev->value.GetArray()) {
      if (!e.IsObject()) return Status::InvalidArgument("an overflow event must be an object");
      CowOverflowEvent o;
      SNAPSET_RETURN_IF_ERROR(ReadStr(e, "snapshot_id", &o.snapshot_id));
      SNAPSET_RETURN_IF_ERROR(ReadI64(e, "when_unix_ns", &o.when_unix_ns));
      SNAPSET_RETURN_IF_ERROR(ReadStr(e, "reason", &o.reason));
      s.overflow_events.push_back(std::move(o));
    }
  }
  return s;
}

Result<CowSnapshot> ParseSnapshot(const rapidjson::Value& v) {
  if (!v.IsObject()) return Status::InvalidArgument("a snapshot must be a JSON object");
  CowSnapshot s;
  SNAPSET_RETURN_IF_ERROR(ReadStr(v, "id", &s.id));
  SNAPSET_RETURN_IF_ERROR(ReadU64(v, "epoch", &s.epoch));
  SNAPSET_RETURN_IF_ERROR(ReadI64(v, "created_unix_ns", &s.created_unix_ns));
  SNAPSET_RETURN_IF_ERROR(ReadBool(v, "valid", &s.valid));
  SNAPSET_RETURN_IF_ERROR(ReadStr(v, "invalid_reason", &s.invalid_reason));
  SNAPSET_RETURN_IF_ERROR(ReadStr(v, "path", &s.path));
  return s;
}

}  // namespace snapset::cow::protocol
