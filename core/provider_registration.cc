#include "core/provider_registration.hpp"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "core/file_safety.hpp"

namespace snapset {

namespace fs = std::filesystem;

const char* ProviderTypeName(ProviderType type) {
  switch (type) {
    case ProviderType::kHardware: return "hardware";
    case ProviderType::kSoftware: return "software";
    case ProviderType::kSystem: return "system";
  }
  return "system";
}

bool IsUuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !std::isxdigit(static_cast<unsigned char>(s[i]))) return false;
  }
  return true;
}

namespace {

void LineColumn(std::string_view text, size_t offset, size_t* line, size_t* column) {
  *line = 1;
  *column = 1;
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++*line;
      *column = 1;
    } else {
      ++*column;
    }
  }
}

bool IsValidName(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

Status Bad(const std::string& path, const std::string& what) {
  return Status::Config(path + ": " + what);
}

Result<std::string> RequiredString(const std::string& path, const rapidjson::Value& doc,
                                   const char* field, const char* meaning) {
  auto it = doc.FindMember(field);
  if (it == doc.MemberEnd())
    return Bad(path, std::string("missing field \"") + field + "\" (" + meaning + ")");
  if (!it->value.IsString() || it->value.GetStringLength() == 0)
    return Bad(path, std::string("field \"") + field + "\" must be a non-empty string (" +
                         meaning + ")");
  return std::string(it->value.GetString(), it->value.GetStringLength());
}

}  // namespace

Result<ProviderRegistration> ParseRegistration(const std::string& path, std::string_view text) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseCommentsFlag | rapidjson::kParseTrailingCommasFlag>(text.data(),
                                                                                  text.size());
  if (doc.HasParseError()) {
    size_t line, column;
    LineColumn(text, doc.GetErrorOffset(), &line, &column);
    return Bad(path, "malformed JSON at line " + std::to_string(line) + ", column " +
                         std::to_string(column) + ": " +
                         rapidjson::GetParseError_En(doc.GetParseError()));
  }
  if (!doc.IsObject()) return Bad(path, "a provider registration must be a JSON object");

  static const char* const kKnown[] = {"id", "name", "type", "library", "priority", "config"};
  for (auto m = doc.MemberBegin(); m != doc.MemberEnd(); ++m) {
    std::string_view key(m->name.GetString(), m->name.GetStringLength());
    if (std::find(std::begin(kKnown), std::end(kKnown), key) == std::end(kKnown))
      return Bad(path, "unknown field \"" + std::string(key) +
                           "\" (known: id, name, type, library, priority, config)");
  }

  ProviderRegistration reg;
  reg.file = path;

  auto id = RequiredString(path, doc, "id", "a UUID identifying the provider");
  if (!id.ok()) return id.status();
  if (!IsUuid(*id))
    return Bad(path, "field \"id\" is \"" + *id +
                         "\", not a UUID (expected 8-4-4-4-12 hex digits; uuidgen makes one)");
  reg.id = *id;
  std::transform(reg.id.begin(), reg.id.end(), reg.id.begin(),
                 [](unsigned char c) { return std::tolower(c); });

  auto name = RequiredString(path, doc, "name", "a short unique name");
  if (!name.ok()) return name.status();
  if (!IsValidName(*name))
    return Bad(path, "field \"name\" is \"" + *name +
                         "\"; use 1 to 64 letters, digits, '.', '_' or '-'");
  reg.name = *name;

  auto type = RequiredString(path, doc, "type", "hardware, software or system");
  if (!type.ok()) return type.status();
  if (*type == "hardware") {
    reg.type = ProviderType::kHardware;
  } else if (*type == "software") {
    reg.type = ProviderType::kSoftware;
  } else if (*type == "system") {
    reg.type = ProviderType::kSystem;
  } else {
    return Bad(path, "unknown provider type \"" + *type +
                         "\" (expected hardware, software or system)");
  }

  auto library = RequiredString(path, doc, "library", "path of the provider's .so");
  if (!library.ok()) return library.status();
  fs::path lib(*library);
  if (lib.is_relative()) lib = fs::path(path).parent_path() / lib;
  reg.library = lib.lexically_normal().string();

  if (auto it = doc.FindMember("priority"); it != doc.MemberEnd()) {
    if (!it->value.IsInt())
      return Bad(path, "field \"priority\" must be an integer (higher is asked first)");
    reg.priority = it->value.GetInt();
  }

  if (auto it = doc.FindMember("config"); it != doc.MemberEnd()) {
    if (!it->value.IsObject()) return Bad(path, "field \"config\" must be a JSON object");
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> writer(buf);
    it->value.Accept(writer);
    reg.config_json.assign(buf.GetString(), buf.GetSize());
  }
  return reg;
}

Result<std::vector<ProviderRegistration>> ReadRegistrations(const std::string& config_dir) {
  std::error_code ec;
  if (!fs::is_directory(config_dir, ec))
    return Status::NotFound("config directory " + config_dir +
                            " does not exist (create it, or pass --config-dir)");
  const fs::path dir = fs::path(config_dir) / "providers.d";
  std::vector<ProviderRegistration> regs;
  if (!fs::exists(dir, ec)) return regs;

  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.path().extension() == ".json") files.push_back(entry.path());
  }
  if (ec) return Status::Config("cannot read " + dir.string() + ": " + ec.message());
  std::sort(files.begin(), files.end());

  std::vector<std::string> errors;
  std::map<std::string, std::string> by_id, by_name;  // -> file
  for (const auto& file : files) {
    const std::string path = file.string();
    if (Status s = CheckTrustedFile(path, "provider registration"); !s.ok()) {
      errors.push_back(s.message());
      continue;
    }
    std::ifstream in(file, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    if (!in) {
      errors.push_back(path + ": cannot be read");
      continue;
    }
    auto reg = ParseRegistration(path, text.str());
    if (!reg.ok()) {
      errors.push_back(reg.status().message());
      continue;
    }
    if (auto [it, fresh] = by_id.emplace(reg->id, path); !fresh) {
      errors.push_back(path + ": duplicate provider id " + reg->id + " (also in " + it->second +
                       ")");
      continue;
    }
    if (auto [it, fresh] = by_name.emplace(reg->name, path); !fresh) {
      errors.push_back(path + ": duplicate provider name \"" + reg->name + "\" (also in " +
                       it->second + ")");
      continue;
    }
    regs.push_back(std::move(*reg));
  }
  if (!errors.empty()) {
    std::string all;
    for (const auto& e : errors) all += (all.empty() ? "" : "\n") + e;
    return Status::Config(all);
  }
  return regs;
}

}  // namespace snapset
