// ProviderRegistry: every provider registered in <config-dir>/providers.d,
// loaded. Loading is all or nothing: a broken registration must not silently
// move a volume to another provider, so any error fails the whole load and
// the message lists every problem, one per line, each naming its file.
#ifndef SNAPSET_CORE_PROVIDER_REGISTRY_HPP
#define SNAPSET_CORE_PROVIDER_REGISTRY_HPP

#include <snapset/status.hpp>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/host_log.hpp"
#include "core/provider_instance.hpp"

namespace snapset {

class ProviderRegistry {
 public:
  // `log` must outlive the registry.
  static Result<std::unique_ptr<ProviderRegistry>> Load(const std::string& config_dir,
                                                        HostLog* log);

  // Unloads every provider except unhealthy ones, whose code a hung thread
  // may still be running: those are left loaded until the process exits.
  ~ProviderRegistry();
  // True when a provider hung: the log it writes to must outlive the registry.
  bool has_unhealthy() const;

  const std::vector<std::unique_ptr<ProviderInstance>>& providers() const { return providers_; }
  ProviderInstance* FindByName(std::string_view name) const;
  ProviderInstance* FindById(std::string_view id) const;

 private:
  std::vector<std::unique_ptr<ProviderInstance>> providers_;
};

}  // namespace snapset

#endif  // SNAPSET_CORE_PROVIDER_REGISTRY_HPP
