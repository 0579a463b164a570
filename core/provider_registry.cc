#include "core/provider_registry.hpp"

#include "core/provider_registration.hpp"

#include <mutex>

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

namespace {
// Unhealthy providers, kept loaded until the process exits (see the header).
// Reachable from here, so they are kept on purpose, not leaked.
std::vector<std::unique_ptr<ProviderInstance>>& Abandoned() {
  static auto* abandoned = new std::vector<std::unique_ptr<ProviderInstance>>();
  return *abandoned;
}
std::mutex abandoned_mu;
}  // namespace

ProviderRegistry::~ProviderRegistry() {
  std::lock_guard<std::mutex> lock(abandoned_mu);
  for (auto& p : providers_)
    if (p->unhealthy()) Abandoned().push_back(std::move(p));
}

bool ProviderRegistry::has_unhealthy() const {
  for (const auto& p : providers_)
    if (p->unhealthy()) return true;
  return false;
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
