#include "core/provider_registry.hpp"

#include "core/provider_registration.hpp"

namespace snapset {

Result<std::unique_ptr<ProviderRegistry>> ProviderRegistry::Load(const std::string& config_dir,
                                                                 HostLog* log) {
  auto regs = ReadRegistrations(config_dir);
  if (!regs.ok()) return regs.status();
  auto registry = std::unique_ptr<ProviderRegistry>(new ProviderRegistry());
  std::string errors;
  for (const auto& reg : *regs) {
    auto instance = ProviderInstance::Load(reg, log);
    if (!instance.ok()) {
      errors += (errors.empty() ? "" : "\n") + instance.status().message();
      continue;
    }
    registry->providers_.push_back(std::move(*instance));
  }
  if (!errors.empty()) return Status::Config(errors);
  return registry;
}

ProviderRegistry::~ProviderRegistry() {
  for (auto& p : providers_) {
    if (p->unhealthy()) (void)p.release();  // deliberately leaked, see header
  }
}

ProviderInstance* ProviderRegistry::FindByName(std::string_view name) const {
  for (const auto& p : providers_)
    if (p->name() == name) return p.get();
  return nullptr;
}

ProviderInstance* ProviderRegistry::FindById(std::string_view id) const {
  for (const auto& p : providers_)
    if (p->id() == id) return p.get();
  return nullptr;
}

}  // namespace snapset
