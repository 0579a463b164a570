// snapset cow create | list | delete | stats: software copy-on-write volumes,
// managed through snapset-cowd's control socket (docs/software-cow.md).
#include <iostream>
#include <string>

#include "providers/software-cow/client/cowd_client.hpp"
#include "tools/cli_context.hpp"
#include "tools/table.hpp"

namespace snapset::cli {

namespace {

using cow::CowdClient;
using cow::CowVolumeStatus;
using rapidjson::Value;

Value Str(const std::string& s, rapidjson::Document::AllocatorType& a) {
  return Value(s.c_str(), static_cast<rapidjson::SizeType>(s.size()), a);
}

Value VolumeJson(const CowVolumeStatus& v, rapidjson::Document::AllocatorType& a) {
  Value o(rapidjson::kObjectType);
  o.AddMember("name", Str(v.name, a), a);
  o.AddMember("volume", Str("cow:" + v.name, a), a);
  o.AddMember("origin", Str(v.origin_path, a), a);
  o.AddMember("served_origin", Str(v.served_origin, a), a);
  o.AddMember("diff_area", Str(v.diff_path, a), a);
  o.AddMember("size_bytes", v.size_bytes, a);
  o.AddMember("chunk_size", v.chunk_size, a);
  o.AddMember("diff_bytes_max", v.diff_bytes_max, a);
  o.AddMember("diff_bytes_used", v.diff_bytes_used, a);
  o.AddMember("chunks_copied", v.chunks_copied, a);
  o.AddMember("snapshots", v.snapshots, a);
  o.AddMember("snapshots_deleted_by_overflow", v.snapshots_deleted_by_overflow, a);
  o.AddMember("writes_held", v.writes_held, a);
  Value events(rapidjson::kArrayType);
  for (const auto& e : v.overflow_events) {
    Value ev(rapidjson::kObjectType);
    ev.AddMember("snapshot_id", Str(e.snapshot_id, a), a);
    ev.AddMember("when_unix_ns", e.when_unix_ns, a);
    ev.AddMember("reason", Str(e.reason, a), a);
    events.PushBack(ev, a);
  }
  o.AddMember("overflow_events", events, a);
  return o;
}

std::string Percent(uint64_t part, uint64_t whole) {
  if (whole == 0) return "-";
  char text[16];
  std::snprintf(text, sizeof text, "%.1f%%", 100.0 * double(part) / double(whole));
  return text;
}

Result<std::unique_ptr<CowdClient>> Connect(const CowArgs& args) {
  return CowdClient::Connect(args.socket);
}

int Create(CliContext& ctx, const CowArgs& args) {
  auto size = ParseSize(args.size, "--size");
  if (!size.ok()) return ctx.Fail(size.status());
  auto chunk = ParseSize(args.chunk, "--chunk");
  if (!chunk.ok()) return ctx.Fail(chunk.status());
  auto diff_max = ParseSize(args.diff_max, "--diff-max");
  if (!diff_max.ok()) return ctx.Fail(diff_max.status());
  if ((*size == 0) == args.origin.empty())
    return ctx.Fail(Status::InvalidArgument(
        "give the new volume either --size SIZE (a new origin file) or --origin PATH (adopt an "
        "existing file or block device), not both and not neither"));
  if (*chunk > UINT32_MAX)
    return ctx.Fail(Status::InvalidArgument("--chunk " + args.chunk +
                                            " is too large; use a power of two from 4K to 1M"));
  auto client = Connect(args);
  if (!client.ok()) return ctx.Fail(client.status());
  cow::CreateVolumeRequest request;
  request.name = args.name;
  request.size_bytes = *size;
  request.origin = args.origin;
  request.chunk_size = static_cast<uint32_t>(*chunk);
  request.diff_max_bytes = *diff_max;
  auto v = (*client)->CreateVolume(request);
  if (!v.ok()) return ctx.Fail(v.status());
  if (ctx.json()) {
    rapidjson::Document doc(rapidjson::kObjectType);
    doc.AddMember("volume", VolumeJson(*v, doc.GetAllocator()), doc.GetAllocator());
    ctx.PrintJson(doc);
    return 0;
  }
  std::cout << "Created cow:" << v->name << ": " << HumanBytes(v->size_bytes) << ", chunk "
            << HumanBytes(v->chunk_size) << ", diff area up to " << HumanBytes(v->diff_bytes_max)
            << ".\n"
            << "Its origin is served at " << v->served_origin
            << "; attach it with: losetup --direct-io=on --find --show " << v->served_origin << "\n";
  return 0;
}

int List(CliContext& ctx, const CowArgs& args) {
  auto client = Connect(args);
  if (!client.ok()) return ctx.Fail(client.status());
  auto volumes = (*client)->ListVolumes();
  if (!volumes.ok()) return ctx.Fail(volumes.status());
  if (ctx.json()) {
    rapidjson::Document doc(rapidjson::kObjectType);
    auto& a = doc.GetAllocator();
    Value list(rapidjson::kArrayType);
    for (const auto& v : *volumes) list.PushBack(VolumeJson(v, a), a);
    doc.AddMember("volumes", list, a);
    ctx.PrintJson(doc);
    return 0;
  }
  if (volumes->empty()) {
    std::cout << "No cow volumes. Create one with: snapset cow create NAME --size SIZE\n";
    return 0;
  }
  Table t({"VOLUME", "SIZE", "CHUNK", "SNAPSHOTS", "DIFF USED", "ORIGIN"});
  for (const auto& v : *volumes)
    t.Add({"cow:" + v.name, HumanBytes(v.size_bytes), HumanBytes(v.chunk_size),
           std::to_string(v.snapshots),
           HumanBytes(v.diff_bytes_used) + " of " + HumanBytes(v.diff_bytes_max), v.served_origin});
  t.Print(std::cout);
  return 0;
}

int Delete(CliContext& ctx, const CowArgs& args) {
  auto client = Connect(args);
  if (!client.ok()) return ctx.Fail(client.status());
  if (Status s = (*client)->DeleteVolume(args.name); !s.ok()) return ctx.Fail(s);
  if (!ctx.json()) std::cout << "Deleted cow:" << args.name << " and its snapshots.\n";
  return 0;
}

int Stats(CliContext& ctx, const CowArgs& args) {
  auto client = Connect(args);
  if (!client.ok()) return ctx.Fail(client.status());
  auto v = (*client)->GetVolume(args.name);
  if (!v.ok()) return ctx.Fail(v.status());
  if (ctx.json()) {
    rapidjson::Document doc(rapidjson::kObjectType);
    doc.AddMember("volume", VolumeJson(*v, doc.GetAllocator()), doc.GetAllocator());
    ctx.PrintJson(doc);
    return 0;
  }
  Table t({"VOLUME", "cow:" + v->name});
  t.Add({"origin", v->origin_path + " (served at " + v->served_origin + ")"});
  t.Add({"diff area", v->diff_path});
  t.Add({"size", HumanBytes(v->size_bytes)});
  t.Add({"chunk", HumanBytes(v->chunk_size)});
  t.Add({"diff area used", HumanBytes(v->diff_bytes_used) + " of " +
                               HumanBytes(v->diff_bytes_max) + " (" +
                               Percent(v->diff_bytes_used, v->diff_bytes_max) + ")"});
  t.Add({"snapshots", std::to_string(v->snapshots)});
  t.Add({"chunks copied", std::to_string(v->chunks_copied)});
  t.Add({"deleted by overflow", std::to_string(v->snapshots_deleted_by_overflow)});
  t.Add({"writes held", v->writes_held ? "yes" : "no"});
  t.Print(std::cout);
  for (const auto& e : v->overflow_events)
    std::cout << "overflow deleted snapshot " << e.snapshot_id << ": " << e.reason << "\n";
  return 0;
}

}  // namespace

Result<uint64_t> ParseSize(const std::string& text, const std::string& option) {
  if (text.empty()) return uint64_t(0);
  size_t used = 0;
  unsigned long long number = 0;
  try {
    number = std::stoull(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  std::string unit = text.substr(used);
  if (!unit.empty() && (unit.back() == 'B' || unit.back() == 'b')) unit.pop_back();
  if (unit.size() == 2 && (unit[1] == 'i' || unit[1] == 'I')) unit.pop_back();  // GiB, GB, G
  int shift = -1;
  if (unit.empty()) shift = 0;
  if (unit.size() == 1) {
    switch (unit[0]) {
      case 'k': case 'K': shift = 10; break;
      case 'm': case 'M': shift = 20; break;
      case 'g': case 'G': shift = 30; break;
      case 't': case 'T': shift = 40; break;
    }
  }
  if (used == 0 || shift < 0 || text[0] == '-')
    return Status::InvalidArgument(option + " " + text +
                                   " is not a size; use a number with an optional unit K, M, G "
                                   "or T (powers of 1024), e.g. 64K or 1G");
  if (shift > 0 && number > (UINT64_MAX >> shift))
    return Status::InvalidArgument(option + " " + text + " is too large");
  return uint64_t(number) << shift;
}

int RunCow(CliContext& ctx, const CowArgs& args) {
  switch (args.command) {
    case CowArgs::kCreate: return Create(ctx, args);
    case CowArgs::kList: return List(ctx, args);
    case CowArgs::kDelete: return Delete(ctx, args);
    case CowArgs::kStats: return Stats(ctx, args);
  }
  return ctx.Fail(Status::InvalidArgument("unknown cow command"));
}

}  // namespace snapset::cli
