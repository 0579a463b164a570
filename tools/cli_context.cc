#include "tools/cli_context.hpp"

#include <snapset/provider.h>

#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>

#include <cstdio>
#include <iostream>

#include "core/scsi_vpd.hpp"
#include "tools/exit_codes.hpp"

namespace snapset::cli {

CliContext::CliContext(GlobalOptions options) : options_(std::move(options)) {
  const int32_t level = options_.verbose >= 2   ? SNAPSET_LOG_DEBUG
                        : options_.verbose == 1 ? SNAPSET_LOG_INFO
                                                : SNAPSET_LOG_WARNING;
  log_ = std::make_unique<HostLog>(HostLog::StderrSink(level));
}

int ExitCodeOf(const Status& s) { return ExitCode(s.code()); }

CliContext::~CliContext() {
  requestor_.reset();
  // A provider that hung may still log from its abandoned thread: keep its
  // log alive (the process is about to exit anyway).
  const bool keep_log = registry_ && registry_->has_unhealthy();
  registry_.reset();  // on_unload may still log
  log_->Flush();
  if (keep_log) (void)log_.release();
}

Result<ProviderRegistry*> CliContext::Registry() {
  if (!registry_) {
    auto loaded = ProviderRegistry::Load(options_.config_dir, log_.get());
    if (!loaded.ok()) return loaded.status();
    registry_ = std::move(*loaded);
  }
  return registry_.get();
}

void CliContext::FlushLogs() {
  // The providers' log lines queued so far go to stderr first, so that
  // `2>&1` never splits the command's own output with a line.
  log_->Flush();
  if (requestor_) requestor_->FlushLog();
}

int CliContext::Fail(const Status& s) {
  FlushLogs();
  std::fprintf(stderr, "snapset: error (%s): %s\n", std::string(CodeName(s.code())).c_str(),
               s.message().c_str());
  if (options_.json) {
    rapidjson::Document doc(rapidjson::kObjectType);
    auto& a = doc.GetAllocator();
    rapidjson::Value err(rapidjson::kObjectType);
    err.AddMember("code", rapidjson::Value(std::string(CodeName(s.code())).c_str(), a), a);
    err.AddMember("message", rapidjson::Value(s.message().c_str(), a), a);
    err.AddMember("exit_code", ExitCode(s.code()), a);
    doc.AddMember("error", err, a);
    PrintJson(doc);
  }
  return ExitCode(s.code());
}

void CliContext::PrintJson(const rapidjson::Document& doc) {
  FlushLogs();
  rapidjson::StringBuffer buf;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> writer(buf);
  writer.SetIndent(' ', 2);
  doc.Accept(writer);
  std::cout << buf.GetString() << std::endl;
}

rapidjson::Value VolumeToJson(const Volume& v, rapidjson::Document::AllocatorType& a) {
  using rapidjson::Value;
  auto str = [&](const std::string& s) { return s.empty() ? Value() : Value(s.c_str(), a); };
  Value o(rapidjson::kObjectType);
  o.AddMember("name", Value(v.name.c_str(), a), a);
  o.AddMember("kind", Value(VolumeKindName(v.kind), a), a);
  o.AddMember("device", str(v.device_path), a);
  o.AddMember("size_bytes", v.size_bytes, a);
  o.AddMember("block_size", v.block_size, a);
  o.AddMember("mount_point", str(v.mount_point), a);
  o.AddMember("filesystem", str(v.filesystem), a);
  o.AddMember("naa", str(v.identity.Naa()), a);
  o.AddMember("serial", str(v.identity.serial), a);
  Value designators(rapidjson::kArrayType);
  for (const auto& d : v.identity.designators) {
    Value dj(rapidjson::kObjectType);
    dj.AddMember("type", d.type, a);
    dj.AddMember("code_set", d.code_set, a);
    dj.AddMember("value_hex", Value(HexLower(d.value).c_str(), a), a);
    designators.PushBack(dj, a);
  }
  o.AddMember("designators", designators, a);
  // The software-cow stack (core/cow_stack.hpp).
  o.AddMember("stacked_on", str(v.lower), a);
  Value upper(rapidjson::kArrayType);
  for (const auto& m : v.upper) upper.PushBack(Value(m.c_str(), a), a);
  o.AddMember("filesystems_on_it", upper, a);
  return o;
}

}  // namespace snapset::cli
