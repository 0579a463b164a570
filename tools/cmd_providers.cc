// snapset providers list | explain
#include <iostream>

#include "core/provider_instance.hpp"
#include "core/volume_resolver.hpp"
#include "priority/broker.hpp"
#include "tools/cli_context.hpp"
#include "tools/table.hpp"

namespace snapset::cli {

namespace {

std::string AbiString(uint32_t v) {
  return std::to_string(SNAPSET_ABI_MAJOR(v)) + "." + std::to_string(SNAPSET_ABI_MINOR(v));
}

Result<std::vector<Volume>> ResolveAll(const std::vector<std::string>& names) {
  std::vector<Volume> out;
  for (const auto& n : names) {
    auto v = ResolveVolume(n);
    if (!v.ok()) return v.status();
    out.push_back(std::move(*v));
  }
  return out;
}

}  // namespace

int RunProvidersList(CliContext& ctx) {
  auto registry = ctx.Registry();
  if (!registry.ok()) return ctx.Fail(registry.status());
  std::vector<InstanceCandidate> candidates;
  for (const auto& p : (*registry)->providers()) candidates.emplace_back(p.get());
  std::vector<BrokerCandidate*> ptrs;
  for (auto& c : candidates) ptrs.push_back(&c);
  Broker broker(ptrs);  // only for its order: list in the order providers are asked

  if (ctx.json()) {
    rapidjson::Document doc(rapidjson::kObjectType);
    auto& a = doc.GetAllocator();
    rapidjson::Value list(rapidjson::kArrayType);
    int order = 1;
    for (auto* c : broker.ordered()) {
      const ProviderInstance& p = *static_cast<InstanceCandidate*>(c)->instance();
      rapidjson::Value o(rapidjson::kObjectType);
      o.AddMember("order", order++, a);
      o.AddMember("name", rapidjson::Value(p.name().c_str(), a), a);
      o.AddMember("id", rapidjson::Value(p.id().c_str(), a), a);
      o.AddMember("type", rapidjson::Value(ProviderTypeName(p.type()), a), a);
      o.AddMember("priority", p.priority(), a);
      o.AddMember("abi", rapidjson::Value(AbiString(p.plugin_abi_version()).c_str(), a), a);
      o.AddMember("library", rapidjson::Value(p.registration().library.c_str(), a), a);
      o.AddMember("registration", rapidjson::Value(p.registration().file.c_str(), a), a);
      list.PushBack(o, a);
    }
    doc.AddMember("providers", list, a);
    ctx.PrintJson(doc);
    return 0;
  }
  if (broker.ordered().empty()) {
    std::cout << "No providers registered in " << ctx.options().config_dir
              << "/providers.d (see docs/ihv-guide.md to add one).\n";
    return 0;
  }
  Table t({"ORDER", "NAME", "TYPE", "PRIORITY", "ABI", "ID", "LIBRARY"});
  int order = 1;
  for (auto* c : broker.ordered()) {
    const ProviderInstance& p = *static_cast<InstanceCandidate*>(c)->instance();
    t.Add({std::to_string(order++), p.name(), ProviderTypeName(p.type()),
           std::to_string(p.priority()), AbiString(p.plugin_abi_version()), p.id(),
           p.registration().library});
  }
  t.Print(std::cout);
  return 0;
}

int RunProvidersExplain(CliContext& ctx, const std::vector<std::string>& volume_names,
                        const std::vector<std::string>& pins,
                        const std::vector<std::string>& excludes) {
  auto registry = ctx.Registry();
  if (!registry.ok()) return ctx.Fail(registry.status());
  auto volumes = ResolveAll(volume_names);
  if (!volumes.ok()) return ctx.Fail(volumes.status());

  BrokerPolicy policy;
  for (const auto& pin : pins) {
    auto eq = pin.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == pin.size())
      return ctx.Fail(Status::InvalidArgument("--provider takes NAME=VOLUME, got \"" + pin + "\""));
    auto v = ResolveVolume(pin.substr(eq + 1));
    if (!v.ok()) return ctx.Fail(v.status().WithContext("--provider " + pin));
    policy.pins[v->name] = pin.substr(0, eq);
  }
  policy.excluded.insert(excludes.begin(), excludes.end());

  std::vector<InstanceCandidate> candidates;
  for (const auto& p : (*registry)->providers()) candidates.emplace_back(p.get());
  std::vector<BrokerCandidate*> ptrs;
  for (auto& c : candidates) ptrs.push_back(&c);
  Broker broker(ptrs);
  auto plan = broker.Explain(*volumes, policy, 0);
  if (!plan.ok()) return ctx.Fail(plan.status());

  if (ctx.json()) {
    rapidjson::Document doc(rapidjson::kObjectType);
    auto& a = doc.GetAllocator();
    rapidjson::Value list(rapidjson::kArrayType);
    for (const auto& ex : plan->explanations) {
      rapidjson::Value o(rapidjson::kObjectType);
      o.AddMember("volume", VolumeToJson(ex.volume, a), a);
      o.AddMember("chosen",
                  ex.chosen ? rapidjson::Value(ex.chosen->name().c_str(), a) : rapidjson::Value(),
                  a);
      rapidjson::Value rows(rapidjson::kArrayType);
      for (const auto& r : ex.candidates) {
        rapidjson::Value row(rapidjson::kObjectType);
        row.AddMember("provider", rapidjson::Value(r.provider.c_str(), a), a);
        row.AddMember("type", rapidjson::Value(ProviderTypeName(r.type), a), a);
        row.AddMember("priority", r.priority, a);
        row.AddMember("verdict", rapidjson::Value(VerdictName(r.verdict), a), a);
        row.AddMember("reason", rapidjson::Value(r.reason.c_str(), a), a);
        rows.PushBack(row, a);
      }
      o.AddMember("candidates", rows, a);
      list.PushBack(o, a);
    }
    doc.AddMember("volumes", list, a);
    ctx.PrintJson(doc);
    return 0;
  }

  for (const auto& ex : plan->explanations) {
    const Volume& v = ex.volume;
    std::cout << v.name << " (" << VolumeKindName(v.kind);
    if (!v.filesystem.empty()) std::cout << " " << v.filesystem;
    if (!v.device_path.empty() && v.device_path != v.name) std::cout << " on " << v.device_path;
    if (v.size_bytes) std::cout << ", " << HumanBytes(v.size_bytes);
    if (!v.identity.Naa().empty()) std::cout << ", naa " << v.identity.Naa();
    std::cout << ")\n";
    if (ex.candidates.empty()) {
      std::cout << "  no providers are registered\n\n";
      continue;
    }
    Table t({"#", "PROVIDER", "TYPE", "PRIORITY", "VERDICT", "REASON"});
    int i = 1;
    for (const auto& r : ex.candidates)
      t.Add({std::to_string(i++), r.provider, ProviderTypeName(r.type), std::to_string(r.priority),
             VerdictName(r.verdict), r.reason});
    t.Print(std::cout, "  ");
    std::cout << "  => " << (ex.chosen ? ex.chosen->name() + " takes it" : "no provider takes it")
              << "\n\n";
  }
  return 0;
}

}  // namespace snapset::cli
