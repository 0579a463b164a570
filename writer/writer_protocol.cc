// SPDX-License-Identifier: Apache-2.0
#include "writer/writer_protocol.hpp"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <array>
#include <initializer_list>
#include <utility>

namespace snapset::writer {

namespace {

constexpr std::array<std::pair<Event, std::string_view>, 11> kEvents{{
    {Event::kIdentify, "identify"},
    {Event::kPrepareBackup, "prepare-backup"},
    {Event::kPrepareSnapshot, "prepare-snapshot"},
    {Event::kFreeze, "freeze"},
    {Event::kThaw, "thaw"},
    {Event::kPostSnapshot, "post-snapshot"},
    {Event::kAbort, "abort"},
    {Event::kBackupComplete, "backup-complete"},
    {Event::kPreRestore, "pre-restore"},
    {Event::kPostRestore, "post-restore"},
    {Event::kStatus, "status"},
}};

constexpr std::array<std::pair<State, std::string_view>, 14> kStates{{
    {State::kStable, "stable"},
    {State::kWaitingForFreeze, "waiting-for-freeze"},
    {State::kWaitingForThaw, "waiting-for-thaw"},
    {State::kWaitingForPostSnapshot, "waiting-for-post-snapshot"},
    {State::kWaitingForBackupComplete, "waiting-for-backup-complete"},
    {State::kFailedAtIdentify, "failed-at-identify"},
    {State::kFailedAtPrepareBackup, "failed-at-prepare-backup"},
    {State::kFailedAtPrepareSnapshot, "failed-at-prepare-snapshot"},
    {State::kFailedAtFreeze, "failed-at-freeze"},
    {State::kFailedAtThaw, "failed-at-thaw"},
    {State::kFailedAtPostSnapshot, "failed-at-post-snapshot"},
    {State::kFailedAtBackupComplete, "failed-at-backup-complete"},
    {State::kFailedAtPreRestore, "failed-at-pre-restore"},
    {State::kFailedAtPostRestore, "failed-at-post-restore"},
}};

constexpr std::array<std::pair<Failure, std::string_view>, 6> kFailures{{
    {Failure::kNone, "none"},
    {Failure::kInconsistentSnapshot, "inconsistent-snapshot"},
    {Failure::kOutOfResources, "out-of-resources"},
    {Failure::kTimeout, "timeout"},
    {Failure::kRetryable, "retryable"},
    {Failure::kNonRetryable, "non-retryable"},
}};

template <typename E, size_t N>
std::string_view NameOf(const std::array<std::pair<E, std::string_view>, N>& table, E e) {
  for (const auto& [k, v] : table)
    if (k == e) return v;
  return "unknown";
}

template <typename E, size_t N>
std::optional<E> Parse(const std::array<std::pair<E, std::string_view>, N>& table,
                       std::string_view name) {
  for (const auto& [k, v] : table)
    if (v == name) return k;
  return std::nullopt;
}

}  // namespace

std::string_view EventName(Event e) { return NameOf(kEvents, e); }
std::string_view StateName(State s) { return NameOf(kStates, s); }
std::string_view FailureName(Failure f) { return NameOf(kFailures, f); }
std::optional<Event> ParseEvent(std::string_view n) { return Parse(kEvents, n); }
std::optional<State> ParseState(std::string_view n) { return Parse(kStates, n); }
std::optional<Failure> ParseFailure(std::string_view n) { return Parse(kFailures, n); }

State FailedAt(Event e) {
  switch (e) {
    case Event::kIdentify:
      return State::kFailedAtIdentify;
    case Event::kPrepareBackup:
      return State::kFailedAtPrepareBackup;
    case Event::kPrepareSnapshot:
      return State::kFailedAtPrepareSnapshot;
    case Event::kFreeze:
      return State::kFailedAtFreeze;
    case Event::kThaw:
      return State::kFailedAtThaw;
    case Event::kPostSnapshot:
      return State::kFailedAtPostSnapshot;
    case Event::kBackupComplete:
      return State::kFailedAtBackupComplete;
    case Event::kPreRestore:
      return State::kFailedAtPreRestore;
    case Event::kPostRestore:
      return State::kFailedAtPostRestore;
    case Event::kAbort:
    case Event::kStatus:
      return State::kStable;
  }
  return State::kStable;
}

bool IsFailed(State s) {
  return s != State::kStable && s != State::kWaitingForFreeze && s != State::kWaitingForThaw &&
         s != State::kWaitingForPostSnapshot && s != State::kWaitingForBackupComplete;
}

}  // namespace snapset::writer

namespace snapset::writer_protocol {

namespace {

using rapidjson::Value;
using Json = rapidjson::Writer<rapidjson::StringBuffer>;

void Str(Json& w, const char* key, std::string_view v) {
  w.Key(key);
  w.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
}

void StrList(Json& w, const char* key, const std::vector<std::string>& list) {
  w.Key(key);
  w.StartArray();
  for (const auto& s : list) w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
  w.EndArray();
}

void Blob(Json& w, const std::map<std::string, std::string>& blob) {
  w.StartObject();
  for (const auto& [k, v] : blob) {
    // The name with its length, not as a C string: a decoded name may hold
    // "\u0000", and cut there it came back as another name (writer_protocol_fuzz).
    w.Key(k.data(), static_cast<rapidjson::SizeType>(k.size()));
    w.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
  }
  w.EndObject();
}

void Groups(Json& w, const char* key, const std::vector<writer::FileGroup>& groups) {
  w.Key(key);
  w.StartArray();
  for (const auto& g : groups) {
    w.StartObject();
    Str(w, "path", g.path);
    Str(w, "filespec", g.filespec);
    w.Key("recursive");
    w.Bool(g.recursive);
    w.EndObject();
  }
  w.EndArray();
}

void WriteMetadata(Json& w, const Metadata& m) {
  w.StartObject();
  Str(w, "writer_id", m.writer_id);
  Str(w, "name", m.name);
  Str(w, "instance", m.instance);
  Str(w, "restore_method", m.restore_method);
  StrList(w, "backup_types", m.backup_types);
  w.Key("components");
  w.StartArray();
  for (const auto& c : m.components) {
    w.StartObject();
    Str(w, "logical_path", c.logical_path);
    Str(w, "caption", c.caption);
    w.Key("selectable");
    w.Bool(c.selectable);
    Groups(w, "files", c.files);
    Groups(w, "database_files", c.database_files);
    Groups(w, "log_files", c.log_files);
    Groups(w, "exclusions", c.exclusions);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
}

// Reads fields of one JSON object, collecting the first error with the
// path of the field ("components[1].files[0].path").
class Reader {
 public:
  Reader(const Value& v, std::string where) : v_(v), where_(std::move(where)) {}

  bool IsObject() const { return v_.IsObject(); }
  std::string Field(const char* key) const { return where_.empty() ? key : where_ + "." + key; }

  Status String(const char* key, std::string* out, bool required) const {
    auto it = v_.FindMember(key);
    if (it == v_.MemberEnd()) {
      return required ? Status::InvalidArgument(Field(key) + " is missing") : Status::Ok();
    }
    if (!it->value.IsString()) return Status::InvalidArgument(Field(key) + " must be a string");
    out->assign(it->value.GetString(), it->value.GetStringLength());
    return Status::Ok();
  }
  Status Bool(const char* key, bool* out) const {
    auto it = v_.FindMember(key);
    if (it == v_.MemberEnd()) return Status::Ok();
    if (!it->value.IsBool()) return Status::InvalidArgument(Field(key) + " must be true or false");
    *out = it->value.GetBool();
    return Status::Ok();
  }
  Status Int(const char* key, int64_t* out, bool required) const {
    auto it = v_.FindMember(key);
    if (it == v_.MemberEnd())
      return required ? Status::InvalidArgument(Field(key) + " is missing") : Status::Ok();
    if (!it->value.IsInt64()) return Status::InvalidArgument(Field(key) + " must be an integer");
    *out = it->value.GetInt64();
    return Status::Ok();
  }
  Status StringList(const char* key, std::vector<std::string>* out) const {
    auto it = v_.FindMember(key);
    if (it == v_.MemberEnd()) return Status::Ok();
    if (!it->value.IsArray())
      return Status::InvalidArgument(Field(key) + " must be a list of strings");
    out->clear();
    for (rapidjson::SizeType i = 0; i < it->value.Size(); ++i) {
      const Value& e = it->value[i];
      if (!e.IsString())
        return Status::InvalidArgument(Field(key) + "[" + std::to_string(i) + "] must be a string");
      out->emplace_back(e.GetString(), e.GetStringLength());
    }
    return Status::Ok();
  }
  Status Blob(const char* key, std::map<std::string, std::string>* out) const {
    auto it = v_.FindMember(key);
    if (it == v_.MemberEnd()) return Status::Ok();
    return ReadBlob(it->value, Field(key), out);
  }
  static Status ReadBlob(const Value& v, const std::string& where,
                         std::map<std::string, std::string>* out) {
    if (!v.IsObject())
      return Status::InvalidArgument(where + " must be an object of named strings");
    for (auto m = v.MemberBegin(); m != v.MemberEnd(); ++m) {
      const std::string name(m->name.GetString(), m->name.GetStringLength());
      if (!m->value.IsString())
        return Status::InvalidArgument(where + "." + name + " must be a string");
      (*out)[name] = std::string(m->value.GetString(), m->value.GetStringLength());
    }
    return Status::Ok();
  }
  const Value* Member(const char* key) const {
    auto it = v_.FindMember(key);
    return it == v_.MemberEnd() ? nullptr : &it->value;
  }

 private:
  const Value& v_;
  std::string where_;
};

// Unknown keys are errors: a misspelt "recursive" silently ignored would
// leave files out of every backup.
Status OnlyKeys(const Value& v, const std::string& where, std::initializer_list<const char*> keys) {
  for (auto m = v.MemberBegin(); m != v.MemberEnd(); ++m) {
    const std::string key(m->name.GetString(), m->name.GetStringLength());
    bool known = false;
    std::string list;
    for (const char* k : keys) {
      known = known || key == k;
      list += std::string(list.empty() ? "" : ", ") + k;
    }
    if (!known)
      return Status::InvalidArgument((where.empty() ? "" : where + ": ") + "unknown key \"" + key +
                                     "\" (known: " + list + ")");
  }
  return Status::Ok();
}

Status ReadGroups(const Reader& parent, const char* key, std::vector<writer::FileGroup>* out) {
  const Value* list = parent.Member(key);
  if (!list) return Status::Ok();
  if (!list->IsArray()) return Status::InvalidArgument(parent.Field(key) + " must be a list");
  for (rapidjson::SizeType i = 0; i < list->Size(); ++i) {
    const std::string where = parent.Field(key) + "[" + std::to_string(i) + "]";
    Reader r((*list)[i], where);
    if (!r.IsObject()) return Status::InvalidArgument(where + " must be an object");
    SNAPSET_RETURN_IF_ERROR(OnlyKeys((*list)[i], where, {"path", "filespec", "recursive"}));
    writer::FileGroup g;
    SNAPSET_RETURN_IF_ERROR(r.String("path", &g.path, true));
    if (g.path.empty() || g.path.front() != '/')
      return Status::InvalidArgument(where + ".path \"" + g.path + "\" must be an absolute path");
    SNAPSET_RETURN_IF_ERROR(r.String("filespec", &g.filespec, false));
    if (g.filespec.empty() || g.filespec.find('/') != std::string::npos)
      return Status::InvalidArgument(where + ".filespec \"" + g.filespec +
                                     "\" must be a file-name pattern without '/' (\"*\" for all)");
    SNAPSET_RETURN_IF_ERROR(r.Bool("recursive", &g.recursive));
    out->push_back(std::move(g));
  }
  return Status::Ok();
}

constexpr std::string_view kRestoreMethods[] = {"restore-if-not-there", "restore-if-can-replace",
                                                "stop-restore-start",
                                                "restore-to-alternate-location", "custom"};
constexpr std::string_view kBackupTypes[] = {"full", "incremental", "differential", "log"};

template <size_t N>
bool OneOf(const std::string_view (&list)[N], std::string_view v) {
  for (auto e : list)
    if (e == v) return true;
  return false;
}

Status ReadMetadata(const Value& v, const std::string& where, Metadata* m) {
  Reader r(v, where);
  if (!r.IsObject())
    return Status::InvalidArgument((where.empty() ? "metadata" : where) + " must be a JSON object");
  SNAPSET_RETURN_IF_ERROR(OnlyKeys(
      v, where, {"writer_id", "name", "instance", "restore_method", "backup_types", "components"}));
  SNAPSET_RETURN_IF_ERROR(r.String("writer_id", &m->writer_id, false));
  SNAPSET_RETURN_IF_ERROR(r.String("name", &m->name, true));
  if (m->name.empty()) return Status::InvalidArgument(r.Field("name") + " must not be empty");
  SNAPSET_RETURN_IF_ERROR(r.String("instance", &m->instance, false));
  SNAPSET_RETURN_IF_ERROR(r.String("restore_method", &m->restore_method, false));
  if (!OneOf(kRestoreMethods, m->restore_method))
    return Status::InvalidArgument(r.Field("restore_method") + " \"" + m->restore_method +
                                   "\" is not one of restore-if-not-there, "
                                   "restore-if-can-replace, stop-restore-start, "
                                   "restore-to-alternate-location, custom");
  SNAPSET_RETURN_IF_ERROR(r.StringList("backup_types", &m->backup_types));
  for (const auto& t : m->backup_types)
    if (!OneOf(kBackupTypes, t))
      return Status::InvalidArgument(r.Field("backup_types") + " has \"" + t +
                                     "\", which is not one of full, incremental, differential, "
                                     "log");
  const Value* list = r.Member("components");
  if (list && !list->IsArray())
    return Status::InvalidArgument(r.Field("components") + " must be a list");
  for (rapidjson::SizeType i = 0; list && i < list->Size(); ++i) {
    const std::string cw = r.Field("components") + "[" + std::to_string(i) + "]";
    Reader c((*list)[i], cw);
    if (!c.IsObject()) return Status::InvalidArgument(cw + " must be an object");
    SNAPSET_RETURN_IF_ERROR(OnlyKeys((*list)[i], cw,
                                     {"logical_path", "caption", "selectable", "files",
                                      "database_files", "log_files", "exclusions"}));
    writer::Component comp;
    SNAPSET_RETURN_IF_ERROR(c.String("logical_path", &comp.logical_path, true));
    if (comp.logical_path.empty())
      return Status::InvalidArgument(cw + ".logical_path must not be empty");
    for (const auto& other : m->components)
      if (other.logical_path == comp.logical_path)
        return Status::InvalidArgument(cw + ".logical_path \"" + comp.logical_path +
                                       "\" is used by two components");
    SNAPSET_RETURN_IF_ERROR(c.String("caption", &comp.caption, false));
    SNAPSET_RETURN_IF_ERROR(c.Bool("selectable", &comp.selectable));
    SNAPSET_RETURN_IF_ERROR(ReadGroups(c, "files", &comp.files));
    SNAPSET_RETURN_IF_ERROR(ReadGroups(c, "database_files", &comp.database_files));
    SNAPSET_RETURN_IF_ERROR(ReadGroups(c, "log_files", &comp.log_files));
    SNAPSET_RETURN_IF_ERROR(ReadGroups(c, "exclusions", &comp.exclusions));
    m->components.push_back(std::move(comp));
  }
  return Status::Ok();
}

Result<rapidjson::Document> ParseObject(std::string_view text, const char* what) {
  if (text.size() > kMaxMessage)
    return Status::InvalidArgument(std::string(what) + " is " + std::to_string(text.size()) +
                                   " bytes; the limit is " + std::to_string(kMaxMessage));
  rapidjson::Document d;
  // Iterative: the recursive parser takes a stack frame per nesting level,
  // and a line of 1 MiB of '[' overflowed the stack (writer_protocol_fuzz).
  d.Parse<rapidjson::kParseIterativeFlag>(text.data(), text.size());
  if (d.HasParseError())
    return Status::InvalidArgument(
        std::string(what) + " is not JSON: " + rapidjson::GetParseError_En(d.GetParseError()) +
        " at offset " + std::to_string(d.GetErrorOffset()));
  if (!d.IsObject()) return Status::InvalidArgument(std::string(what) + " must be a JSON object");
  return d;
}

Status ReadProtocol(const Reader& r, int* protocol) {
  int64_t p = 0;
  SNAPSET_RETURN_IF_ERROR(r.Int("protocol", &p, true));
  if (p != writer::kProtocolVersion)
    return Status::InvalidArgument("protocol version " + std::to_string(p) +
                                   " is not spoken here (this side speaks " +
                                   std::to_string(writer::kProtocolVersion) + ")");
  *protocol = static_cast<int>(p);
  return Status::Ok();
}

std::string Finish(rapidjson::StringBuffer& buf) {
  std::string line(buf.GetString(), buf.GetSize());
  line.push_back('\n');
  return line;
}

}  // namespace

std::string EncodeRequest(const Request& r) {
  rapidjson::StringBuffer buf;
  Json w(buf);
  w.StartObject();
  w.Key("protocol");
  w.Int(r.protocol);
  Str(w, "event", writer::EventName(r.event));
  if (!r.set_id.empty()) Str(w, "set_id", r.set_id);
  StrList(w, "volumes", r.volumes);
  StrList(w, "components", r.components);
  Str(w, "backup_type", r.backup_type);
  w.Key("timeout_ms");
  w.Int64(r.timeout_ms);
  if (!r.backup_blob.empty()) {
    w.Key("backup_blob");
    Blob(w, r.backup_blob);
  }
  if (!r.restore_status.empty()) Str(w, "restore_status", r.restore_status);
  w.EndObject();
  return Finish(buf);
}

std::string EncodeReply(const Reply& r) {
  rapidjson::StringBuffer buf;
  Json w(buf);
  w.StartObject();
  w.Key("protocol");
  w.Int(r.protocol);
  w.Key("ok");
  w.Bool(r.ok);
  Str(w, "state", writer::StateName(r.state));
  if (r.failure != Failure::kNone) Str(w, "failure", writer::FailureName(r.failure));
  if (!r.message.empty()) Str(w, "message", r.message);
  if (r.metadata) {
    w.Key("metadata");
    WriteMetadata(w, *r.metadata);
  }
  if (!r.backup_blob.empty()) {
    w.Key("backup_blob");
    Blob(w, r.backup_blob);
  }
  if (!r.set_id.empty()) Str(w, "set_id", r.set_id);
  w.EndObject();
  return Finish(buf);
}

Result<Request> DecodeRequest(std::string_view line) {
  auto d = ParseObject(line, "the request");
  if (!d.ok()) return d.status();
  Reader r(*d, "");
  Request q;
  SNAPSET_RETURN_IF_ERROR(ReadProtocol(r, &q.protocol));
  std::string event;
  SNAPSET_RETURN_IF_ERROR(r.String("event", &event, true));
  auto e = writer::ParseEvent(event);
  if (!e) return Status::InvalidArgument("event \"" + event + "\" is not a writer event");
  q.event = *e;
  SNAPSET_RETURN_IF_ERROR(r.String("set_id", &q.set_id, false));
  SNAPSET_RETURN_IF_ERROR(r.StringList("volumes", &q.volumes));
  SNAPSET_RETURN_IF_ERROR(r.StringList("components", &q.components));
  SNAPSET_RETURN_IF_ERROR(r.String("backup_type", &q.backup_type, false));
  SNAPSET_RETURN_IF_ERROR(r.Int("timeout_ms", &q.timeout_ms, false));
  if (q.timeout_ms < 0) return Status::InvalidArgument("timeout_ms must not be negative");
  SNAPSET_RETURN_IF_ERROR(r.Blob("backup_blob", &q.backup_blob));
  SNAPSET_RETURN_IF_ERROR(r.String("restore_status", &q.restore_status, false));
  return q;
}

Result<Reply> DecodeReply(std::string_view line) {
  auto d = ParseObject(line, "the reply");
  if (!d.ok()) return d.status();
  Reader r(*d, "");
  Reply p;
  SNAPSET_RETURN_IF_ERROR(ReadProtocol(r, &p.protocol));
  const Value* ok = r.Member("ok");
  if (!ok || !ok->IsBool()) return Status::InvalidArgument("ok is missing or not true/false");
  p.ok = ok->GetBool();
  std::string state;
  SNAPSET_RETURN_IF_ERROR(r.String("state", &state, true));
  auto s = writer::ParseState(state);
  if (!s) return Status::InvalidArgument("state \"" + state + "\" is not a writer state");
  p.state = *s;
  std::string failure = "none";
  SNAPSET_RETURN_IF_ERROR(r.String("failure", &failure, false));
  auto f = writer::ParseFailure(failure);
  if (!f) return Status::InvalidArgument("failure \"" + failure + "\" is not a failure kind");
  p.failure = *f;
  if (!p.ok && p.failure == Failure::kNone) p.failure = Failure::kNonRetryable;
  SNAPSET_RETURN_IF_ERROR(r.String("message", &p.message, false));
  if (const Value* m = r.Member("metadata")) {
    Metadata md;
    SNAPSET_RETURN_IF_ERROR(ReadMetadata(*m, "metadata", &md));
    p.metadata = std::move(md);
  }
  SNAPSET_RETURN_IF_ERROR(r.Blob("backup_blob", &p.backup_blob));
  SNAPSET_RETURN_IF_ERROR(r.String("set_id", &p.set_id, false));
  return p;
}

std::string MetadataToJson(const Metadata& m) {
  rapidjson::StringBuffer buf;
  Json w(buf);
  WriteMetadata(w, m);
  return std::string(buf.GetString(), buf.GetSize());
}

Result<Metadata> MetadataFromJson(std::string_view json) {
  auto d = ParseObject(json, "the metadata document");
  if (!d.ok()) return d.status();
  Metadata m;
  SNAPSET_RETURN_IF_ERROR(ReadMetadata(*d, "", &m));
  return m;
}

std::string BlobToJson(const std::map<std::string, std::string>& blob) {
  rapidjson::StringBuffer buf;
  Json w(buf);
  Blob(w, blob);
  return std::string(buf.GetString(), buf.GetSize());
}

Result<std::map<std::string, std::string>> BlobFromJson(std::string_view json) {
  std::map<std::string, std::string> blob;
  if (json.empty()) return blob;
  auto d = ParseObject(json, "the backup blob");
  if (!d.ok()) return d.status();
  SNAPSET_RETURN_IF_ERROR(Reader::ReadBlob(*d, "backup_blob", &blob));
  return blob;
}

bool IsValidWriterName(std::string_view name) {
  if (name.empty() || name.size() > 64 || name.front() == '.') return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.';
    if (!ok) return false;
  }
  return true;
}

}  // namespace snapset::writer_protocol
