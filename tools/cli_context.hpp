// What every snapset CLI command shares: global options, the log, the loaded
// providers, and how results and errors are printed.
#ifndef SNAPSET_TOOLS_CLI_CONTEXT_HPP
#define SNAPSET_TOOLS_CLI_CONTEXT_HPP

#include <snapset/requestor.hpp>
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
  std::string run_dir;
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
  // Opens the requestor (providers, catalog, recovery) once.
  Result<Requestor*> OpenRequestor();

  // Prints the error (stderr; also a JSON object on stdout with --json) and
  // returns the exit code for it.
  int Fail(const Status& s);

  // Writes a JSON document to stdout, pretty-printed.
  void PrintJson(const rapidjson::Document& doc);
  // Waits until every queued log line (the CLI's, the requestor's) is on
  // stderr.
  void FlushLogs();

 private:
  GlobalOptions options_;
  std::unique_ptr<HostLog> log_;
  std::unique_ptr<ProviderRegistry> registry_;
  std::unique_ptr<Requestor> requestor_;
};

int ExitCodeOf(const Status& s);

// A volume as a JSON object allocated in `alloc`.
rapidjson::Value VolumeToJson(const Volume& v, rapidjson::Document::AllocatorType& alloc);

// Command entry points (tools/cmd_*.cc). Each returns the exit code.
int RunProvidersList(CliContext& ctx);
int RunProvidersExplain(CliContext& ctx, const std::vector<std::string>& volumes,
                        const std::vector<std::string>& pins,
                        const std::vector<std::string>& excludes);
int RunVolumesShow(CliContext& ctx, const std::vector<std::string>& volumes);

struct CreateArgs {
  std::vector<std::string> volumes, pins, excludes;
  std::vector<std::string> writers, components;
  bool persistent = false, auto_release = false, no_writers = false;
  int window_ms = 10000;
  int writer_window_ms = 60000;
  size_t max_volumes = 64;
  std::string set_id;
};
struct ListArgs {
  std::string volume, set_id;
  bool verify = false;
};
struct DeleteArgs {
  std::string id, set_id, oldest;
};
int RunCreate(CliContext& ctx, const CreateArgs& args);
int RunList(CliContext& ctx, const ListArgs& args);
int RunShow(CliContext& ctx, const std::string& id, bool timeline, bool writers);
// snapset diff SNAPSHOT [--base SNAPSHOT]
int RunDiff(CliContext& ctx, const std::string& snapshot_id, const std::string& base_id);
// snapset orphans [--remove]
int RunOrphans(CliContext& ctx, bool remove);
int RunDelete(CliContext& ctx, const DeleteArgs& args);
struct ExposeArgs {
  std::string id;
  std::string mount_dir;  // empty: do not mount
  bool attach = false;    // attach an iscsi:// exposure with Open-iSCSI
  std::string chap_file;  // CHAP credentials for --attach
};
int RunExpose(CliContext& ctx, const ExposeArgs& args);
int RunUnexpose(CliContext& ctx, const std::string& id);
// snapset writers list
int RunWritersList(CliContext& ctx);
// snapset backup-complete SET
int RunBackupComplete(CliContext& ctx, const std::string& set_id);
// snapset revert --set ID | --snapshot ID
int RunRevert(CliContext& ctx, const std::string& set_id, const std::string& snapshot_id,
              bool remount);

struct CowArgs {
  enum Command { kCreate, kList, kDelete, kStats } command = kList;
  std::string socket;  // snapset-cowd's control socket
  std::string name;
  std::string size, chunk, diff_max, origin;  // as typed: "1G", "64K"
};
int RunCow(CliContext& ctx, const CowArgs& args);
// "64K" -> 65536 (units K, M, G, T are powers of 1024; "" -> 0).
// InvalidArgument naming `option` for anything else.
Result<uint64_t> ParseSize(const std::string& text, const std::string& option);

}  // namespace snapset::cli

#endif  // SNAPSET_TOOLS_CLI_CONTEXT_HPP
