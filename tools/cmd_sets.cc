// snapset create | list | show | orphans | delete | expose | unexpose
#include <snapset/provider.h>

#include <sys/stat.h>

#include <chrono>
#include <ctime>
#include <iostream>
#include <optional>
#include <sstream>

#include "core/mount_table.hpp"
#include "core/run_command.hpp"
#include "core/volume_resolver.hpp"
#include "tools/cli_context.hpp"
#include "tools/exit_codes.hpp"
#include "tools/iscsi_attach.hpp"
#include "tools/table.hpp"
#include "tools/timeline_chart.hpp"
#include "writer/writer_protocol.hpp"

namespace snapset::cli {

namespace {

using rapidjson::Value;

std::string Attributes(uint32_t a) {
  std::string s;
  auto add = [&](uint32_t bit, const char* name) {
    if (a & bit) s += (s.empty() ? "" : ",") + std::string(name);
  };
  add(SNAPSET_ATTR_PERSISTENT, "persistent");
  add(SNAPSET_ATTR_AUTO_RELEASE, "auto-release");
  add(SNAPSET_ATTR_NO_WRITERS, "no-writers");
  add(SNAPSET_ATTR_HARDWARE_ASSISTED, "hardware");
  add(SNAPSET_ATTR_READ_ONLY, "read-only");
  add(SNAPSET_ATTR_EXPOSED, "exposed");
  add(SNAPSET_ATTR_CRASH_CONSISTENT, "crash-consistent");
  add(SNAPSET_ATTR_NO_REVERT, "no-revert");
  add(SNAPSET_ATTR_INVALID, "invalid");
  return s.empty() ? "-" : s;
}

std::string LocalTime(int64_t realtime_ns) {
  time_t secs = time_t(realtime_ns / 1000000000);
  tm local;
  localtime_r(&secs, &local);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &local);
  return buf;
}

Value Str(const std::string& s, rapidjson::Document::AllocatorType& a) {
  return Value(s.c_str(), rapidjson::SizeType(s.size()), a);
}

Value PlanJson(const std::vector<PlannedVolume>& plan, rapidjson::Document::AllocatorType& a) {
  Value arr(rapidjson::kArrayType);
  for (const auto& p : plan) {
    Value o(rapidjson::kObjectType);
    o.AddMember("volume", Str(p.volume, a), a);
    o.AddMember("provider", Str(p.provider, a), a);
    o.AddMember("hold", Str(p.hold, a), a);
    o.AddMember("crash_consistent", p.crash_consistent, a);
    arr.PushBack(o, a);
  }
  return arr;
}

Value SnapshotJson(const SnapshotEntry& s, rapidjson::Document::AllocatorType& a) {
  Value o(rapidjson::kObjectType);
  o.AddMember("snapshot_id", Str(s.snapshot_id, a), a);
  o.AddMember("set_id", Str(s.set_id, a), a);
  o.AddMember("volume", Str(s.volume, a), a);
  o.AddMember("provider", Str(s.provider, a), a);
  o.AddMember("provider_id", Str(s.provider_id, a), a);
  o.AddMember("created_ns", s.created_ns, a);
  o.AddMember("attributes", Str(Attributes(s.attributes), a), a);
  o.AddMember("exposed_as", s.exposed_as.empty() ? Value() : Str(s.exposed_as, a), a);
  o.AddMember("snapshot_device",
              s.snapshot_device.empty() ? Value() : Str(s.snapshot_device, a), a);
  o.AddMember("lost", s.lost_ns != 0, a);
  o.AddMember("lost_reason", s.lost_ns == 0 ? Value() : Str(s.lost_reason, a), a);
  o.AddMember("lost_ns", s.lost_ns, a);
  return o;
}

// Before showing the catalog: what providers lost on their own (a software
// provider's overflow) is marked lost. A provider that does not answer is
// named, on stderr or in the JSON, and its snapshots show as they were.
std::vector<std::pair<std::string, std::string>> RefreshLost(CliContext& ctx, Requestor& r) {
  auto refreshed = r.RefreshLost();
  if (!refreshed.ok()) return {{"catalog", refreshed.status().ToString()}};
  if (!ctx.json()) {
    for (const auto& [provider, why] : refreshed->unanswered)
      std::cerr << "snapset: provider " << provider << " did not say which snapshots it still "
                << "holds (" << why << "); its snapshots are shown as last known\n";
  }
  return refreshed->unanswered;
}

Value UnansweredJson(const std::vector<std::pair<std::string, std::string>>& u,
                     rapidjson::Document::AllocatorType& a) {
  Value arr(rapidjson::kArrayType);
  for (const auto& [provider, why] : u) {
    Value o(rapidjson::kObjectType);
    o.AddMember("provider", Str(provider, a), a);
    o.AddMember("error", Str(why, a), a);
    arr.PushBack(o, a);
  }
  return arr;
}

std::string LostColumn(const SnapshotEntry& s) {
  return s.lost_ns == 0 ? Attributes(s.attributes) : "LOST," + Attributes(s.attributes);
}

Value TimelineJson(const TimelineData& t, rapidjson::Document::AllocatorType& a) {
  rapidjson::Document d(&a);
  d.Parse(t.ToJson().c_str());
  return Value(d, a);
}

void PrintPlan(const std::vector<PlannedVolume>& plan) {
  std::cout << "Plan:\n";
  Table t({"VOLUME", "PROVIDER", "WRITES HELD BY"});
  for (const auto& p : plan)
    t.Add({p.volume, p.provider,
           p.crash_consistent ? "nothing (crash-consistent only)" : p.hold});
  t.Print(std::cout, "  ");
}

std::string CanonicalVolume(const std::string& name) {
  auto v = ResolveVolume(name);
  return v.ok() ? v->name : name;
}

// Attach covers discovery, login and udev naming the device; a healthy
// portal needs seconds, a dead one is given up on well before a minute.
constexpr std::chrono::seconds kAttachTimeout{60};
// mount and umount of a device whose target stopped answering can block on
// I/O; they are killed rather than hanging the CLI.
constexpr std::chrono::seconds kMountTimeout{120};

// Options that parse but do not fit what the provider exposed: a usage
// error (exit 2), as if CLI11 had found it.
int UsageError(CliContext& ctx, const std::string& message) {
  if (ctx.log()) ctx.log()->Flush();
  std::cerr << "snapset: usage error: " << message << "\n";
  if (ctx.json()) {
    rapidjson::Document doc(rapidjson::kObjectType);
    auto& a = doc.GetAllocator();
    Value err(rapidjson::kObjectType);
    err.AddMember("code", "usage", a);
    err.AddMember("message", Str(message, a), a);
    err.AddMember("exit_code", kExitUsage, a);
    doc.AddMember("error", err, a);
    ctx.PrintJson(doc);
  }
  return kExitUsage;
}

// Mounts a file (through a loop device) or a block device read-only on dir.
Status MountReadOnly(const std::string& source, const std::string& dir) {
  struct stat st;
  if (::stat(source.c_str(), &st) != 0 || !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)))
    return Status::InvalidArgument(source +
                                   " is not a file or block device snapset can mount; use it "
                                   "directly");
  std::vector<std::string> argv = {
      "mount", "-o", S_ISREG(st.st_mode) ? "ro,loop,noload" : "ro,noload", source, dir};
  auto m = RunCommand(argv, kMountTimeout);
  if (m.exit_code != 0 && !m.timed_out) {
    // noload is ext4's; other filesystems refuse it. Try plain read-only.
    argv[2] = S_ISREG(st.st_mode) ? "ro,loop" : "ro";
    m = RunCommand(argv, kMountTimeout);
  }
  if (m.exit_code != 0)
    return Status::Unavailable("mounting " + source + " on " + dir + " failed: " + m.output);
  return Status::Ok();
}

// Unmounts every mount of the block device at `device` (none if it does not
// exist: the LUN is not attached).
Status UnmountDevice(const std::string& device) {
  struct stat st;
  if (::stat(device.c_str(), &st) != 0 || !S_ISBLK(st.st_mode)) return Status::Ok();
  // Each round removes the topmost mount; the bound stops a mount that
  // comes back (an automounter) from looping forever.
  for (int round = 0; round < 32; ++round) {
    auto table = MountTable::Read();
    if (!table.ok()) return table.status();
    auto mount = table->OfDevice(st.st_rdev);
    if (!mount) return Status::Ok();
    auto u = RunCommand({"umount", mount->mount_point}, kMountTimeout);
    if (u.exit_code != 0)
      return Status::Unavailable("umount " + mount->mount_point + " failed: " + u.output +
                                 " (`fuser -vm " + mount->mount_point + "` shows who uses it)");
  }
  return Status::Unavailable(device + " is still mounted after 32 unmounts");
}

// A snapshot by its id, an object by its kind and name.
std::string FindingSubject(const VerifyFinding& f) {
  if (f.name.empty()) return f.snapshot_id.empty() ? "-" : f.snapshot_id;
  return f.kind + " " + f.name;
}

Value FindingJson(const VerifyFinding& f, rapidjson::Document::AllocatorType& a) {
  Value o(rapidjson::kObjectType);
  o.AddMember("kind", Str(f.kind, a), a);
  o.AddMember("snapshot_id", f.snapshot_id.empty() ? Value() : Str(f.snapshot_id, a), a);
  o.AddMember("name", f.name.empty() ? Value() : Str(f.name, a), a);
  o.AddMember("location", f.location.empty() ? Value() : Str(f.location, a), a);
  o.AddMember("set_id", f.set_id.empty() ? Value() : Str(f.set_id, a), a);
  o.AddMember("provider", Str(f.provider, a), a);
  o.AddMember("problem", Str(f.problem, a), a);
  o.AddMember("orphan", f.orphan, a);
  return o;
}

void PrintFindings(const std::vector<VerifyFinding>& findings) {
  Table t({"SNAPSHOT OR OBJECT", "PROVIDER", "WHERE", "DIFFERENCE"});
  size_t orphans = 0;
  for (const auto& f : findings) {
    t.Add({FindingSubject(f), f.provider, f.location.empty() ? "-" : f.location,
           f.problem + (f.orphan ? " (orphan)" : "")});
    orphans += f.orphan;
  }
  t.Print(std::cout);
  if (orphans > 0)
    std::cout << orphans << " orphan(s): made by snapset, explained by no catalog entry. "
              << "`snapset orphans` lists what would be removed; `snapset orphans --remove` "
              << "removes them.\n";
}

Value LeftoversJson(const std::vector<SetLeftover>& leftovers,
                    rapidjson::Document::AllocatorType& a) {
  Value arr(rapidjson::kArrayType);
  for (const auto& l : leftovers) {
    Value o(rapidjson::kObjectType);
    o.AddMember("provider", Str(l.provider, a), a);
    o.AddMember("provider_id", Str(l.provider_id, a), a);
    o.AddMember("detail", Str(l.detail, a), a);
    arr.PushBack(o, a);
  }
  return arr;
}

}  // namespace

Result<Requestor*> CliContext::OpenRequestor() {
  if (!requestor_) {
    RequestorOptions o;
    o.config_dir = options_.config_dir;
    o.state_dir = options_.state_dir;
    o.run_dir = options_.run_dir;
    o.log_level = options_.verbose >= 2   ? SNAPSET_LOG_DEBUG
                  : options_.verbose == 1 ? SNAPSET_LOG_INFO
                                          : SNAPSET_LOG_WARNING;
    auto r = Requestor::Open(o);
    if (!r.ok()) return r.status();
    requestor_ = std::move(*r);
  }
  return requestor_.get();
}

int RunCreate(CliContext& ctx, const CreateArgs& args) {
  auto r = ctx.OpenRequestor();
  if (!r.ok()) return ctx.Fail(r.status());
  SetRequest req;
  req.volumes = args.volumes;
  req.writers = args.writers;
  req.components = args.components;
  for (const auto& pin : args.pins) {
    auto eq = pin.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == pin.size())
      return ctx.Fail(Status::InvalidArgument("--provider takes NAME=VOLUME, got \"" + pin + "\""));
    req.pins[pin.substr(eq + 1)] = pin.substr(0, eq);
  }
  req.excluded = args.excludes;
  req.persistent = args.persistent || !args.auto_release;
  req.auto_release = args.auto_release;
  req.with_writers = !args.no_writers;
  req.window = std::chrono::milliseconds(args.window_ms);
  req.writer_window = std::chrono::milliseconds(args.writer_window_ms);
  req.max_volumes = args.max_volumes;
  req.set_id = args.set_id;

  SetResult result = (*r)->CreateSet(req, [&](const std::vector<PlannedVolume>& plan) {
    if (!ctx.json()) PrintPlan(plan);
  });

  if (ctx.json()) {
    rapidjson::Document doc(rapidjson::kObjectType);
    auto& a = doc.GetAllocator();
    doc.AddMember("set_id", Str(result.set_id, a), a);
    doc.AddMember("ok", result.status.ok(), a);
    if (!result.status.ok()) {
      Value err(rapidjson::kObjectType);
      err.AddMember("code", Str(std::string(CodeName(result.status.code())), a), a);
      err.AddMember("message", Str(result.status.message(), a), a);
      doc.AddMember("error", err, a);
    }
    doc.AddMember("plan", PlanJson(result.plan, a), a);
    Value snaps(rapidjson::kArrayType);
    for (const auto& s : result.snapshots) {
      Value o(rapidjson::kObjectType);
      o.AddMember("snapshot_id", Str(s.snapshot_id, a), a);
      o.AddMember("volume", Str(s.volume, a), a);
      o.AddMember("provider", Str(s.provider, a), a);
      o.AddMember("crash_consistent", s.crash_consistent, a);
      snaps.PushBack(o, a);
    }
    doc.AddMember("snapshots", snaps, a);
    Value aborts(rapidjson::kArrayType);
    for (const auto& ab : result.aborts) {
      Value o(rapidjson::kObjectType);
      o.AddMember("provider", Str(ab.provider, a), a);
      o.AddMember("outcome", Str(ab.status.ToString(), a), a);
      aborts.PushBack(o, a);
    }
    doc.AddMember("aborts", aborts, a);
    doc.AddMember("hold_ns", result.hold_ns, a);
    doc.AddMember("timeline", TimelineJson(result.timeline, a), a);
    ctx.PrintJson(doc);
    return result.status.ok() ? 0 : ExitCodeOf(result.status);
  }

  if (!result.status.ok()) {
    bool incomplete = false;
    for (const auto& ab : result.aborts) incomplete |= !ab.status.ok();
    if (incomplete) {
      std::cout << "Set " << result.set_id << " was not created, and its abort is incomplete: "
                << "something of it may remain on a provider below. The catalog keeps it as "
                << "abort-incomplete, and every snapset command retries the abort (`snapset show "
                << result.set_id << "`).\n";
    } else {
      std::cout << "Set " << result.set_id << " was not created; nothing was kept.\n";
    }
    for (const auto& ab : result.aborts)
      std::cout << "  abort on " << ab.provider << ": " << ab.status.ToString() << "\n";
    return ctx.Fail(result.status);
  }
  int64_t total = 0;
  if (!result.timeline.events.empty())
    total = result.timeline.events.back().t_ns - result.timeline.start_monotonic_ns;
  std::cout << "Created set " << result.set_id << " in " << HumanDuration(total)
            << "; writes held " << HumanDuration(result.hold_ns) << ".\n";
  Table t({"SNAPSHOT", "VOLUME", "PROVIDER"});
  for (const auto& s : result.snapshots)
    t.Add({s.snapshot_id, s.volume + (s.crash_consistent ? " (crash-consistent)" : ""),
           s.provider});
  t.Print(std::cout, "  ");
  return 0;
}

int RunList(CliContext& ctx, const ListArgs& args) {
  auto r = ctx.OpenRequestor();
  if (!r.ok()) return ctx.Fail(r.status());
  if (args.verify) {
    auto findings = (*r)->Verify();
    if (!findings.ok()) return ctx.Fail(findings.status());
    ctx.FlushLogs();
    if (ctx.json()) {
      rapidjson::Document doc(rapidjson::kObjectType);
      auto& a = doc.GetAllocator();
      Value arr(rapidjson::kArrayType);
      for (const auto& f : *findings) arr.PushBack(FindingJson(f, a), a);
      doc.AddMember("differences", arr, a);
      ctx.PrintJson(doc);
    } else if (findings->empty()) {
      std::cout << "The catalog and every provider agree.\n";
    } else {
      PrintFindings(*findings);
    }
    return findings->empty() ? 0 : ExitCodeOf(Status::BadState(""));
  }
  const auto unanswered = RefreshLost(ctx, **r);
  auto sets = (*r)->ListSets(false);
  if (!sets.ok()) return ctx.Fail(sets.status());
  const std::string volume = args.volume.empty() ? "" : CanonicalVolume(args.volume);
  std::vector<SnapshotEntry> shown;
  for (const auto& set : *sets) {
    if (!args.set_id.empty() && set.set_id != args.set_id) continue;
    for (const auto& s : set.snapshots)
      if (volume.empty() || s.volume == volume) shown.push_back(s);
  }
  if (ctx.json()) {
    rapidjson::Document doc(rapidjson::kObjectType);
    auto& a = doc.GetAllocator();
    Value arr(rapidjson::kArrayType);
    for (const auto& s : shown) arr.PushBack(SnapshotJson(s, a), a);
    doc.AddMember("snapshots", arr, a);
    doc.AddMember("unanswered", UnansweredJson(unanswered, a), a);
    ctx.PrintJson(doc);
    return 0;
  }
  if (shown.empty()) {
    std::cout << "No snapshots.\n";
    return 0;
  }
  Table t({"SNAPSHOT", "SET", "VOLUME", "PROVIDER", "CREATED", "ATTRIBUTES"});
  for (const auto& s : shown)
    t.Add({s.snapshot_id, s.set_id, s.volume, s.provider, LocalTime(s.created_ns), LostColumn(s)});
  t.Print(std::cout);
  bool header = false;
  for (const auto& s : shown) {
    if (s.lost_ns == 0) continue;
    if (!header)
      std::cout << "\nLost: the provider no longer holds them or cannot read them, so their "
                   "data is gone (`snapset delete SNAPSHOT` takes one out of the catalog):\n";
    header = true;
    std::cout << "  " << s.snapshot_id << ": " << s.lost_reason << "\n";
  }
  return 0;
}

namespace {

Value WritersJson(const std::vector<SetWriterEntry>& writers, rapidjson::Document::AllocatorType& a) {
  Value arr(rapidjson::kArrayType);
  for (const auto& w : writers) {
    Value o(rapidjson::kObjectType);
    o.AddMember("name", Str(w.name, a), a);
    o.AddMember("kind", Str(w.kind, a), a);
    o.AddMember("state", Str(w.state, a), a);
    rapidjson::Document md(&a);
    if (!w.metadata_json.empty() && !md.Parse(w.metadata_json.c_str()).HasParseError())
      o.AddMember("metadata", Value(md, a), a);
    else
      o.AddMember("metadata", Value(), a);
    Value blob(rapidjson::kObjectType);
    for (const auto& [k, v] : w.backup_blob) blob.AddMember(Str(k, a), Str(v, a), a);
    o.AddMember("backup_blob", blob, a);
    arr.PushBack(o, a);
  }
  return arr;
}

void PrintWriters(const std::vector<SetWriterEntry>& writers) {
  if (writers.empty()) {
    std::cout << "\n  no writers took part in this set\n";
    return;
  }
  for (const auto& w : writers) {
    std::cout << "\n  writer " << w.name << " (" << w.kind << "), " << w.state << "\n";
    if (!w.metadata_json.empty()) {
      auto md = writer_protocol::MetadataFromJson(w.metadata_json);
      if (md.ok()) {
        if (!md->instance.empty()) std::cout << "    instance  " << md->instance << "\n";
        std::cout << "    restore   " << md->restore_method << "\n";
        for (const auto& c : md->components) {
          std::cout << "    component " << c.logical_path << (c.selectable ? "" : " (not selectable)")
                    << "\n";
          auto groups = [](const char* what, const std::vector<writer::FileGroup>& gs) {
            for (const auto& g : gs)
              std::cout << "      " << what << " " << g.path << "/" << g.filespec
                        << (g.recursive ? " (recursive)" : "") << "\n";
          };
          groups("files    ", c.files);
          groups("database ", c.database_files);
          groups("log      ", c.log_files);
          groups("excluded ", c.exclusions);
        }
      }
    }
    for (const auto& [name, text] : w.backup_blob) {
      std::cout << "    backup document " << name << ":\n";
      std::istringstream lines(text);
      for (std::string line; std::getline(lines, line);) std::cout << "      | " << line << "\n";
    }
  }
}

}  // namespace

int RunShow(CliContext& ctx, const std::string& id, bool timeline, bool writers) {
  auto r = ctx.OpenRequestor();
  if (!r.ok()) return ctx.Fail(r.status());
  const auto unanswered = RefreshLost(ctx, **r);
  std::string set_id = id;
  std::optional<SnapshotEntry> snapshot;
  if (auto snap = (*r)->GetSnapshot(id); snap.ok()) {
    snapshot = *snap;
    set_id = snap->set_id;
  }
  auto set = (*r)->GetSet(set_id);
  if (!set.ok())
    return ctx.Fail(Status::NotFound("no snapshot or set " + id + " in the catalog"));

  if (ctx.json()) {
    rapidjson::Document doc(rapidjson::kObjectType);
    auto& a = doc.GetAllocator();
    if (snapshot) doc.AddMember("snapshot", SnapshotJson(*snapshot, a), a);
    Value s(rapidjson::kObjectType);
    s.AddMember("set_id", Str(set->set_id, a), a);
    s.AddMember("state", Str(set->state, a), a);
    s.AddMember("created_ns", set->created_ns, a);
    s.AddMember("context", Str(Attributes(set->context), a), a);
    s.AddMember("error", set->error.empty() ? Value() : Str(set->error, a), a);
    Value snaps(rapidjson::kArrayType);
    for (const auto& sn : set->snapshots) snaps.PushBack(SnapshotJson(sn, a), a);
    s.AddMember("snapshots", snaps, a);
    s.AddMember("leftovers", LeftoversJson(set->leftovers, a), a);
    if (writers) s.AddMember("writers", WritersJson(set->writers, a), a);
    if (timeline) s.AddMember("timeline", TimelineJson(set->timeline, a), a);
    doc.AddMember("set", s, a);
    doc.AddMember("unanswered", UnansweredJson(unanswered, a), a);
    ctx.PrintJson(doc);
    return 0;
  }
  if (snapshot) {
    std::cout << "Snapshot " << snapshot->snapshot_id << "\n"
              << "  volume      " << snapshot->volume << "\n"
              << "  provider    " << snapshot->provider << " (" << snapshot->provider_id << ")\n"
              << "  created     " << LocalTime(snapshot->created_ns) << "\n"
              << "  attributes  " << Attributes(snapshot->attributes) << "\n";
    if (snapshot->lost_ns != 0)
      std::cout << "  LOST        since " << LocalTime(snapshot->lost_ns) << ": "
                << snapshot->lost_reason << "\n";
    if (!snapshot->exposed_as.empty()) std::cout << "  exposed as  " << snapshot->exposed_as << "\n";
    if (!snapshot->snapshot_device.empty())
      std::cout << "  device      " << snapshot->snapshot_device << "\n";
  }
  std::cout << "Set " << set->set_id << ": " << set->state << ", created "
            << LocalTime(set->created_ns) << ", context " << Attributes(set->context) << "\n";
  if (!set->error.empty()) std::cout << "  failed: " << set->error << "\n";
  if (!set->leftovers.empty()) {
    std::cout << "  its abort is incomplete; what may remain (every snapset command retries):\n";
    for (const auto& l : set->leftovers)
      std::cout << "    on provider " << l.provider << ": " << l.detail << "\n";
  }
  if (!snapshot && !set->snapshots.empty()) {
    if (set->state != "complete") std::cout << "  planned:\n";
    Table t({"SNAPSHOT", "VOLUME", "PROVIDER"});
    for (const auto& s : set->snapshots)
      t.Add({s.snapshot_id, s.volume + (s.lost_ns != 0 ? " (LOST)" : ""), s.provider});
    t.Print(std::cout, "  ");
    for (const auto& s : set->snapshots)
      if (s.lost_ns != 0)
        std::cout << "  " << s.snapshot_id << " is lost: " << s.lost_reason << "\n";
  }
  if (writers) PrintWriters(set->writers);
  if (timeline) {
    std::cout << "\n";
    DrawTimeline(set->timeline, std::cout);
  }
  return 0;
}

int RunOrphans(CliContext& ctx, bool remove) {
  auto r = ctx.OpenRequestor();
  if (!r.ok()) return ctx.Fail(r.status());
  auto removals = (*r)->RemoveOrphans(!remove);
  if (!removals.ok()) return ctx.Fail(removals.status());
  ctx.FlushLogs();
  size_t failed = 0;
  Status first;
  for (const auto& o : *removals)
    if (!o.status.ok()) {
      ++failed;
      if (first.ok()) first = o.status;
    }
  if (ctx.json()) {
    rapidjson::Document doc(rapidjson::kObjectType);
    auto& a = doc.GetAllocator();
    doc.AddMember("dry_run", !remove, a);
    Value arr(rapidjson::kArrayType);
    for (const auto& o : *removals) {
      Value f = FindingJson(o.orphan, a);
      f.AddMember("removed", remove && o.status.ok(), a);
      f.AddMember("error", o.status.ok() ? Value() : Str(o.status.ToString(), a), a);
      arr.PushBack(f, a);
    }
    doc.AddMember("orphans", arr, a);
    ctx.PrintJson(doc);
  } else if (removals->empty()) {
    std::cout << "No orphans: everything snapset made on a provider is explained by the "
                 "catalog.\n";
  } else {
    Table t({"SNAPSHOT OR OBJECT", "PROVIDER", "WHERE", "WHY AN ORPHAN", "RESULT"});
    for (const auto& o : *removals)
      t.Add({FindingSubject(o.orphan), o.orphan.provider,
             o.orphan.location.empty() ? "-" : o.orphan.location, o.orphan.problem,
             !o.status.ok() ? o.status.ToString()
             : remove       ? "removed"
                            : "would be removed"});
    t.Print(std::cout);
    if (!remove)
      std::cout << "Dry run: nothing was removed. `snapset orphans --remove` removes "
                << (removals->size() == 1 ? "it" : "them") << ".\n";
    else
      std::cout << "Removed " << removals->size() - failed << " of " << removals->size()
                << " orphan(s).\n";
  }
  return failed == 0 ? 0 : ExitCodeOf(first);
}

int RunDelete(CliContext& ctx, const DeleteArgs& args) {
  const int given = !args.id.empty() + !args.set_id.empty() + !args.oldest.empty();
  if (given != 1)
    return ctx.Fail(Status::InvalidArgument(
        "delete takes exactly one of: a snapshot ID, --set ID, --oldest VOLUME"));
  auto r = ctx.OpenRequestor();
  if (!r.ok()) return ctx.Fail(r.status());
  std::string what;
  if (!args.id.empty()) {
    if (Status s = (*r)->DeleteSnapshot(args.id); !s.ok()) return ctx.Fail(s);
    what = "snapshot " + args.id;
  } else if (!args.set_id.empty()) {
    if (Status s = (*r)->DeleteSet(args.set_id); !s.ok()) return ctx.Fail(s);
    what = "set " + args.set_id;
  } else {
    auto id = (*r)->DeleteOldest(CanonicalVolume(args.oldest));
    if (!id.ok()) return ctx.Fail(id.status());
    what = "snapshot " + *id + " (the oldest of " + args.oldest + ")";
  }
  if (ctx.json()) {
    rapidjson::Document doc(rapidjson::kObjectType);
    doc.AddMember("deleted", Str(what, doc.GetAllocator()), doc.GetAllocator());
    ctx.PrintJson(doc);
  } else {
    std::cout << "Deleted " << what << ".\n";
  }
  return 0;
}

int RunExpose(CliContext& ctx, const ExposeArgs& args) {
  const std::string& id = args.id;
  // The CHAP file is checked before anything is exposed, so that a bad one
  // leaves nothing behind.
  std::optional<ChapCredentials> chap;
  if (!args.chap_file.empty()) {
    auto c = LoadChapFile(args.chap_file);
    if (!c.ok()) return ctx.Fail(c.status());
    chap = std::move(*c);
  }
  auto r = ctx.OpenRequestor();
  if (!r.ok()) return ctx.Fail(r.status());
  bool was_exposed = false;
  if (auto snap = (*r)->GetSnapshot(id); snap.ok()) was_exposed = !snap->exposed_as.empty();
  // Expose first, even where the kernel cannot attach: the URL is still
  // readable with libiscsi, so a failed attach below loses nothing.
  auto where = (*r)->ExposeSnapshot(id);
  if (!where.ok()) return ctx.Fail(where.status());

  // Which options fit is known only now that the provider chose the form.
  const bool iscsi = IsIscsiUrl(*where);
  std::string misfit;
  if (args.attach && !iscsi)
    misfit = "--attach is for iSCSI exposures (iscsi://...), but snapshot " + id +
             " is exposed as " + *where +
             (args.mount_dir.empty() ? "; use it directly" : "; --mount alone mounts it");
  else if (iscsi && !args.mount_dir.empty() && !args.attach)
    misfit = "snapshot " + id + " is exposed as " + *where +
             ", which must be attached to this host before it can be mounted: add --attach";
  if (!misfit.empty()) {
    if (was_exposed) {
      misfit += " (it was exposed before this command and stays exposed)";
    } else if (Status u = (*r)->UnexposeSnapshot(id); u.ok()) {
      misfit += " (the exposure this command made was undone)";
    } else {
      misfit +=
          " (undoing the exposure failed: " + u.ToString() + "; run `snapset unexpose " + id + "`)";
    }
    return UsageError(ctx, misfit);
  }

  std::string device;
  if (args.attach) {
    // The snapshot's NAA, when its provider reported one ("naa.<hex> ..."),
    // so the device attached is checked to be the snapshot by identity.
    std::string naa;
    if (auto snap = (*r)->GetSnapshot(id);
        snap.ok() && snap->snapshot_device.rfind("naa.", 0) == 0) {
      naa = snap->snapshot_device.substr(4, snap->snapshot_device.find(' ') - 4);
    }
    auto attached = AttachIscsi(*where, chap, naa, kAttachTimeout);
    if (!attached.ok())
      return ctx.Fail(Status(
          attached.status().code(),
          "snapshot " + id + " is exposed as " + *where +
              ", but attaching it to this host failed: " + attached.status().message() +
              ". The snapshot stays exposed; `snapset unexpose " + id + "` undoes that"));
    device = *attached;
  }
  if (!args.mount_dir.empty()) {
    const std::string& source = device.empty() ? *where : device;
    if (Status m = MountReadOnly(source, args.mount_dir); !m.ok()) {
      if (device.empty())
        return ctx.Fail(Status(
            m.code(), "snapshot " + id + " is exposed as " + *where + ", but " + m.message()));
      return ctx.Fail(Status(m.code(), "snapshot " + id + " is exposed as " + *where +
                                           " and attached as " + device + ", but " + m.message() +
                                           "; `snapset unexpose " + id +
                                           "` detaches and unexposes it"));
    }
  }
  if (ctx.json()) {
    rapidjson::Document doc(rapidjson::kObjectType);
    auto& a = doc.GetAllocator();
    doc.AddMember("snapshot_id", Str(id, a), a);
    doc.AddMember("exposed_as", Str(*where, a), a);
    doc.AddMember("attached_as", device.empty() ? Value() : Str(device, a), a);
    doc.AddMember("mounted_on", args.mount_dir.empty() ? Value() : Str(args.mount_dir, a), a);
    ctx.PrintJson(doc);
  } else {
    std::cout << "Snapshot " << id << " is exposed as " << *where;
    if (!device.empty()) std::cout << ", attached as " << device;
    if (!args.mount_dir.empty()) std::cout << ", mounted read-only on " << args.mount_dir;
    std::cout << ".\n";
  }
  return 0;
}

int RunUnexpose(CliContext& ctx, const std::string& id) {
  auto r = ctx.OpenRequestor();
  if (!r.ok()) return ctx.Fail(r.status());
  // An attached iSCSI exposure is unmounted and detached first: the provider
  // must not withdraw a LUN this host still has a session to.
  if (auto snap = (*r)->GetSnapshot(id); snap.ok() && IsIscsiUrl(snap->exposed_as)) {
    const std::string& url = snap->exposed_as;
    auto keep = [&](const Status& s, const std::string& what) {
      return ctx.Fail(
          Status(s.code(), what + ": " + s.message() + "; snapshot " + id + " stays exposed as " +
                               url + ". Fix that and run `snapset unexpose " + id + "` again"));
    };
    if (auto device = AttachedDevicePath(url); device.ok()) {
      if (Status s = UnmountDevice(*device); !s.ok()) return keep(s, "cannot unmount " + *device);
    }
    if (Status s = DetachIscsi(url, kAttachTimeout); !s.ok())
      return keep(s, "cannot detach " + url + " from this host");
  }
  if (Status s = (*r)->UnexposeSnapshot(id); !s.ok()) return ctx.Fail(s);
  if (!ctx.json()) std::cout << "Snapshot " << id << " is no longer exposed.\n";
  return 0;
}

}  // namespace snapset::cli
