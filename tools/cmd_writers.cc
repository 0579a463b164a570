// SPDX-License-Identifier: Apache-2.0
// snapset writers list
#include <iostream>

#include "core/writer_set.hpp"
#include "tools/cli_context.hpp"
#include "tools/table.hpp"
#include "writer/writer_protocol.hpp"

namespace snapset::cli {

namespace {

rapidjson::Value Str(const std::string& s, rapidjson::Document::AllocatorType& a) {
  return rapidjson::Value(s.c_str(), static_cast<rapidjson::SizeType>(s.size()), a);
}

}  // namespace

int RunWritersList(CliContext& ctx) {
  WriterSetOptions o;
  o.config_dir = ctx.options().config_dir;
  o.run_dir = ctx.options().run_dir;
  auto writers = ListWriters(o);
  if (!writers.ok()) return ctx.Fail(writers.status());
  if (ctx.json()) {
    rapidjson::Document doc(rapidjson::kObjectType);
    auto& a = doc.GetAllocator();
    rapidjson::Value list(rapidjson::kArrayType);
    for (const auto& w : *writers) {
      rapidjson::Value e(rapidjson::kObjectType);
      e.AddMember("name", Str(w.name, a), a);
      e.AddMember("kind", Str(w.kind, a), a);
      e.AddMember("state", Str(w.state, a), a);
      e.AddMember("failure", Str(w.failure, a), a);
      e.AddMember("last_error", Str(w.last_error, a), a);
      e.AddMember("set_id", Str(w.set_id, a), a);
      e.AddMember("location", Str(w.location, a), a);
      if (w.pid) e.AddMember("pid", w.pid, a);
      if (w.metadata) {
        rapidjson::Document md(&a);
        const std::string json = writer_protocol::MetadataToJson(*w.metadata);
        md.Parse(json.c_str());
        e.AddMember("metadata", rapidjson::Value(md, a), a);
      }
      list.PushBack(e, a);
    }
    doc.AddMember("writers", list, a);
    ctx.PrintJson(doc);
    return 0;
  }
  if (writers->empty()) {
    std::cout << "no writers: no writer process serves " << o.run_dir << "/writers, and "
              << o.config_dir << "/writers.d declares none\n";
    return 0;
  }
  auto dash = [](const std::string& s) { return s.empty() ? std::string("-") : s; };
  Table t({"WRITER", "KIND", "STATE", "INSTANCE", "LAST ERROR"});
  for (const auto& w : *writers) {
    std::string state = w.state;
    if (!w.failure.empty()) state += " (" + w.failure + ")";
    t.Add(
        {w.name, w.kind, state, w.metadata ? dash(w.metadata->instance) : "-", dash(w.last_error)});
  }
  t.Print(std::cout);
  return 0;
}

int RunBackupComplete(CliContext& ctx, const std::string& set_id) {
  auto r = ctx.OpenRequestor();
  if (!r.ok()) return ctx.Fail(r.status());
  auto set = (*r)->GetSet(set_id);
  if (!set.ok()) return ctx.Fail(set.status());
  Status s = (*r)->BackupComplete(set_id);
  ctx.FlushLogs();
  if (!s.ok()) return ctx.Fail(s);
  if (ctx.json()) {
    rapidjson::Document doc(rapidjson::kObjectType);
    auto& a = doc.GetAllocator();
    doc.AddMember("set_id", Str(set_id, a), a);
    doc.AddMember("ok", true, a);
    doc.AddMember("writers", static_cast<uint64_t>(set->writers.size()), a);
    ctx.PrintJson(doc);
    return 0;
  }
  std::cout << "Told the " << set->writers.size() << " writer(s) of set " << set_id
            << " that its backup is complete.\n";
  return 0;
}

int RunRevert(CliContext& ctx, const std::string& set_id, const std::string& snapshot_id,
              bool remount) {
  auto r = ctx.OpenRequestor();
  if (!r.ok()) return ctx.Fail(r.status());
  RevertOptions options;
  options.remount = remount;
  RevertResult res = set_id.empty() ? (*r)->RevertSnapshot(snapshot_id, options)
                                    : (*r)->RevertSet(set_id, options);
  ctx.FlushLogs();
  if (ctx.json()) {
    rapidjson::Document doc(rapidjson::kObjectType);
    auto& a = doc.GetAllocator();
    doc.AddMember("set_id", Str(res.set_id, a), a);
    doc.AddMember("ok", res.status.ok(), a);
    auto list = [&](const std::vector<std::string>& ids) {
      rapidjson::Value v(rapidjson::kArrayType);
      for (const auto& id : ids) v.PushBack(Str(id, a), a);
      return v;
    };
    doc.AddMember("reverted", list(res.reverted), a);
    doc.AddMember("not_reverted", list(res.not_reverted), a);
    doc.AddMember("post_restore",
                  res.post_restore.ok() ? rapidjson::Value() : Str(res.post_restore.ToString(), a),
                  a);
    if (!res.status.ok()) {
      rapidjson::Value err(rapidjson::kObjectType);
      err.AddMember("code", Str(std::string(CodeName(res.status.code())), a), a);
      err.AddMember("message", Str(res.status.message(), a), a);
      err.AddMember("exit_code", ExitCodeOf(res.status), a);
      doc.AddMember("error", err, a);
    }
    ctx.PrintJson(doc);
    return res.status.ok() ? 0 : ExitCodeOf(res.status);
  }
  if (!res.status.ok()) return ctx.Fail(res.status);
  std::cout << "Reverted " << res.reverted.size() << " volume(s) to set " << res.set_id << ".\n";
  if (!res.post_restore.ok())
    std::cerr << "snapset: warning: the revert is done, but a writer's post-restore failed: "
              << res.post_restore.ToString() << "\n";
  return 0;
}

}  // namespace snapset::cli
