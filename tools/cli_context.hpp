// What every snapset CLI command shares: global options, the log, the loaded
// providers, and how results and errors are printed.
#ifndef SNAPSET_TOOLS_CLI_CONTEXT_HPP
#define SNAPSET_TOOLS_CLI_CONTEXT_HPP

#include <snapset/status.hpp>

#include <rapidjson/document.h>

#include <memory>
#include <string>
#include <vector>

#include "core/host_log.hpp"
#include "core/provider_registry.hpp"
#include "core/volume.hpp"

namespace snapset::cli {

struct GlobalOptions {
  std::string config_dir;
  std::string state_dir;
  bool json = false;
  int verbose = 0;  // -v: info, -vv: debug (provider log lines on stderr)
};

class CliContext {
 public:
  explicit CliContext(GlobalOptions options);
  ~CliContext();

  const GlobalOptions& options() const { return options_; }
  bool json() const { return options_.json; }
  HostLog* log() { return log_.get(); }

  // Loads providers.d once; later calls return the same registry.
  Result<ProviderRegistry*> Registry();

  // Prints the error (stderr; also a JSON object on stdout with --json) and
  // returns the exit code for it.
  int Fail(const Status& s);

  // Writes a JSON document to stdout, pretty-printed.
  void PrintJson(const rapidjson::Document& doc);

 private:
  GlobalOptions options_;
  std::unique_ptr<HostLog> log_;
  std::unique_ptr<ProviderRegistry> registry_;
};

// A volume as a JSON object allocated in `alloc`.
rapidjson::Value VolumeToJson(const Volume& v, rapidjson::Document::AllocatorType& alloc);

// Command entry points (tools/cmd_*.cc). Each returns the exit code.
int RunProvidersList(CliContext& ctx);
int RunProvidersExplain(CliContext& ctx, const std::vector<std::string>& volumes,
                        const std::vector<std::string>& pins,
                        const std::vector<std::string>& excludes);
int RunVolumesShow(CliContext& ctx, const std::vector<std::string>& volumes);

}  // namespace snapset::cli

#endif  // SNAPSET_TOOLS_CLI_CONTEXT_HPP
