// SPDX-License-Identifier: Apache-2.0
#include "core/express_writer.hpp"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/file_safety.hpp"
#include "writer/writer_protocol.hpp"

namespace snapset {

namespace {

namespace fs = std::filesystem;
using writer::Event;

constexpr size_t kMaxDeclaration = 1 << 20;

bool MayHaveCommand(Event e) { return e != Event::kIdentify && e != Event::kStatus; }

}  // namespace

Result<ExpressWriter> LoadExpressWriter(const std::string& path) {
  SNAPSET_RETURN_IF_ERROR(CheckTrustedFile(path, "express writer"));
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::InvalidArgument("cannot read express writer " + path);
  std::ostringstream text;
  text << in.rdbuf();
  const std::string json = text.str();
  auto bad = [&](const std::string& what) {
    return Status::InvalidArgument("express writer " + path + ": " + what);
  };
  if (json.size() > kMaxDeclaration) return bad("larger than 1 MiB");
  rapidjson::Document d;
  d.Parse(json.data(), json.size());
  if (d.HasParseError())
    return bad(std::string("not JSON: ") + rapidjson::GetParseError_En(d.GetParseError()) +
               " at offset " + std::to_string(d.GetErrorOffset()));
  if (!d.IsObject()) return bad("must be a JSON object with \"metadata\" and \"commands\"");
  for (auto m = d.MemberBegin(); m != d.MemberEnd(); ++m) {
    const std::string key = m->name.GetString();
    if (key != "metadata" && key != "commands")
      return bad("unknown key \"" + key + "\" (it has \"metadata\" and \"commands\")");
  }
  ExpressWriter w;
  w.path = path;
  w.name = fs::path(path).stem().string();
  if (!writer_protocol::IsValidWriterName(w.name))
    return bad("the file name must be NAME.json with NAME of letters, digits, '-', '_', '.'");
  auto md = d.FindMember("metadata");
  if (md == d.MemberEnd()) return bad("\"metadata\" is missing (the writer's metadata document)");
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> out(buf);
  md->value.Accept(out);
  auto metadata = writer_protocol::MetadataFromJson({buf.GetString(), buf.GetSize()});
  if (!metadata.ok()) return bad("metadata: " + metadata.status().message());
  w.metadata = std::move(*metadata);

  auto commands = d.FindMember("commands");
  if (commands != d.MemberEnd()) {
    if (!commands->value.IsObject()) return bad("\"commands\" must be an object of event: argv");
    for (auto c = commands->value.MemberBegin(); c != commands->value.MemberEnd(); ++c) {
      const std::string event = c->name.GetString();
      auto e = writer::ParseEvent(event);
      if (!e || !MayHaveCommand(*e))
        return bad("commands: \"" + event +
                   "\" is not an event with a command (prepare-backup, prepare-snapshot, "
                   "freeze, thaw, post-snapshot, abort, backup-complete, pre-restore, "
                   "post-restore)");
      const auto& argv = c->value;
      if (!argv.IsArray() || argv.Empty())
        return bad("commands." + event + " must be a non-empty list of strings (program first)");
      std::vector<std::string> command;
      for (rapidjson::SizeType i = 0; i < argv.Size(); ++i) {
        if (!argv[i].IsString())
          return bad("commands." + event + "[" + std::to_string(i) + "] must be a string");
        command.emplace_back(argv[i].GetString(), argv[i].GetStringLength());
      }
      if (command.front().empty() || command.front().front() != '/')
        return bad("commands." + event + ": the program \"" + command.front() +
                   "\" must be an absolute path (no shell, no PATH lookup)");
      Status safe = CheckTrustedFile(command.front(), "express writer command");
      if (!safe.ok()) return bad("commands." + event + ": " + safe.message());
      w.commands[*e] = std::move(command);
    }
  }
  return w;
}

Result<std::vector<ExpressWriter>> DiscoverExpressWriters(const std::string& config_dir) {
  const fs::path dir = fs::path(config_dir) / "writers.d";
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return std::vector<ExpressWriter>{};
  std::vector<std::string> paths;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.front() == '.' || !name.ends_with(".json") || name.size() <= 5)
      continue;
    paths.push_back(entry.path().string());
  }
  if (ec) return Status::Config("cannot read " + dir.string() + ": " + ec.message());
  std::sort(paths.begin(), paths.end());
  std::vector<ExpressWriter> writers;
  for (const auto& p : paths) {
    auto w = LoadExpressWriter(p);
    if (!w.ok()) return w.status();
    writers.push_back(std::move(*w));
  }
  return writers;
}

}  // namespace snapset
