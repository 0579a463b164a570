// snapset volumes show
#include <iostream>

#include "core/volume_resolver.hpp"
#include "tools/cli_context.hpp"
#include "tools/table.hpp"

namespace snapset::cli {

int RunVolumesShow(CliContext& ctx, const std::vector<std::string>& names) {
  std::vector<Volume> volumes;
  for (const auto& n : names) {
    auto v = ResolveVolume(n);
    if (!v.ok()) return ctx.Fail(v.status());
    volumes.push_back(std::move(*v));
  }
  if (ctx.json()) {
    rapidjson::Document doc(rapidjson::kObjectType);
    auto& a = doc.GetAllocator();
    rapidjson::Value list(rapidjson::kArrayType);
    for (const auto& v : volumes) list.PushBack(VolumeToJson(v, a), a);
    doc.AddMember("volumes", list, a);
    ctx.PrintJson(doc);
    return 0;
  }
  auto dash = [](const std::string& s) { return s.empty() ? std::string("-") : s; };
  Table t({"VOLUME", "KIND", "DEVICE", "SIZE", "BLOCK", "FS", "NAA", "SERIAL"});
  for (const auto& v : volumes) {
    t.Add({v.name, VolumeKindName(v.kind), dash(v.device_path),
           v.size_bytes ? HumanBytes(v.size_bytes) : "-",
           v.block_size ? std::to_string(v.block_size) : "-", dash(v.filesystem),
           dash(v.identity.Naa()), dash(v.identity.serial)});
  }
  t.Print(std::cout);
  for (const auto& v : volumes) {
    if (!v.lower.empty())
      std::cout << v.name << " is a filesystem on " << v.lower
                << ": a snapshot holds both (FIFREEZE, then the daemon's write gate)\n";
    for (const auto& m : v.upper)
      std::cout << v.name << " carries the filesystem mounted on " << m
                << ": a snapshot freezes it first\n";
  }
  return 0;
}

}  // namespace snapset::cli
