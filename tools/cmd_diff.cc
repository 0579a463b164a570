// SPDX-License-Identifier: Apache-2.0
// snapset diff SNAPSHOT [--base SNAPSHOT]: the byte ranges an incremental
// backup copies (provider ABI 1.3 changed_blocks, through Requestor::Diff).
#include <rapidjson/document.h>

#include <iomanip>
#include <iostream>
#include <sstream>
#include <string>

#include "tools/cli_context.hpp"
#include "tools/table.hpp"

namespace snapset::cli {

int RunDiff(CliContext& ctx, const std::string& snapshot_id, const std::string& base_id) {
  auto r = ctx.OpenRequestor();
  if (!r.ok()) return ctx.Fail(r.status());
  auto delta = (*r)->Diff(snapshot_id, base_id);
  if (!delta.ok()) return ctx.Fail(delta.status());
  const uint64_t changed = delta->changed_bytes();
  if (ctx.json()) {
    using rapidjson::Value;
    rapidjson::Document doc(rapidjson::kObjectType);
    auto& a = doc.GetAllocator();
    auto str = [&](const std::string& s) {
      return Value(s.c_str(), rapidjson::SizeType(s.size()), a);
    };
    doc.AddMember("snapshot_id", str(delta->snapshot_id), a);
    doc.AddMember("base_snapshot_id", base_id.empty() ? Value() : str(base_id), a);
    doc.AddMember("volume", str(delta->volume), a);
    doc.AddMember("provider", str(delta->provider), a);
    doc.AddMember("volume_size", delta->volume_size, a);
    doc.AddMember("changed_bytes", changed, a);
    Value ranges(rapidjson::kArrayType);
    for (const auto& range : delta->ranges) {
      Value o(rapidjson::kObjectType);
      o.AddMember("offset", range.offset, a);
      o.AddMember("length", range.length, a);
      ranges.PushBack(o, a);
    }
    doc.AddMember("ranges", ranges, a);
    ctx.PrintJson(doc);
    return 0;
  }
  std::ostringstream share;
  if (delta->volume_size > 0)
    share << " (" << std::fixed << std::setprecision(2)
          << 100.0 * double(changed) / double(delta->volume_size) << " %)";
  std::cout << "Snapshot " << delta->snapshot_id << " of " << delta->volume
            << (base_id.empty() ? ", allocated" : " against " + base_id) << ": "
            << delta->ranges.size() << (delta->ranges.size() == 1 ? " range, " : " ranges, ")
            << HumanBytes(changed) << " of " << HumanBytes(delta->volume_size) << share.str()
            << (base_id.empty() ? " may hold data" : " may differ") << ".\n";
  if (delta->ranges.empty()) return 0;
  Table t({"OFFSET", "LENGTH"});
  for (const auto& range : delta->ranges)
    t.Add({std::to_string(range.offset), std::to_string(range.length)});
  t.Print(std::cout, "  ");
  return 0;
}

}  // namespace snapset::cli
