// snapset: the command-line requestor. Parses arguments with CLI11 and hands
// each command to tools/cmd_*.cc.
#include <CLI/CLI.hpp>

#include <cstdlib>
#include <iostream>

#include "providers/software-cow/client/cowd_client.hpp"
#include "tools/cli_context.hpp"
#include "tools/exit_codes.hpp"

namespace {

std::string EnvOr(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

// The innermost subcommand the user got to, for a usage message that fits;
// *path gets its full name ("snapset providers").
const CLI::App* Innermost(const CLI::App& app, std::string* path = nullptr) {
  const CLI::App* at = &app;
  if (path) *path = "snapset";
  for (;;) {
    auto subs = at->get_subcommands();
    if (subs.empty()) return at;
    at = subs.front();
    if (path) *path += " " + at->get_name();
  }
}

}  // namespace

int main(int argc, char** argv) {
  using namespace snapset::cli;
  CLI::App app{"snapset: point-in-time snapshots of sets of volumes", "snapset"};
  app.footer(kExitCodeHelp);
  app.require_subcommand(1);

  GlobalOptions g;
  g.config_dir = EnvOr("SNAPSET_CONFIG_DIR", "/etc/snapset");
  g.state_dir = EnvOr("SNAPSET_STATE_DIR", "/var/lib/snapset");
  app.add_option("--config-dir", g.config_dir,
                 "configuration directory holding providers.d/ (env SNAPSET_CONFIG_DIR)")
      ->capture_default_str();
  app.add_option("--state-dir", g.state_dir, "state directory (env SNAPSET_STATE_DIR)")
      ->capture_default_str();
  g.run_dir = EnvOr("SNAPSET_RUN_DIR", "/run/snapset");
  app.add_option("--run-dir", g.run_dir,
                 "run directory: writers/*.sock are the writer processes (env SNAPSET_RUN_DIR)")
      ->capture_default_str();
  app.add_flag("--json", g.json, "print machine-readable JSON instead of tables");
  app.add_flag("-v,--verbose", g.verbose, "show provider log lines (-vv for debug)");
  std::string initiator_iqn;
  app.add_option("--initiator-iqn", initiator_iqn,
                 "initiator name to read iscsi:// LUNs' identity with (env "
                 "SNAPSET_INITIATOR_IQN; default: this host's Open-iSCSI name in "
                 "/etc/iscsi/initiatorname.iscsi)");

  auto* providers = app.add_subcommand("providers", "registered snapshot providers");
  providers->require_subcommand(1);
  auto* list = providers->add_subcommand("list", "list providers in the order they are asked");

  std::vector<std::string> volumes, pins, excludes;
  auto* explain = providers->add_subcommand(
      "explain", "show, per volume, every provider's verdict and which one takes it");
  explain->add_option("VOLUME", volumes,
                      "mount point or path, block device, iscsi://host:port/iqn/lun, cow:NAME")
      ->required();
  explain->add_option("--provider", pins, "pin provider NAME to VOLUME (NAME=VOLUME)");
  explain->add_option("--exclude", excludes, "never use provider NAME");

  auto* vols = app.add_subcommand("volumes", "volumes as snapset sees them");
  vols->require_subcommand(1);
  std::vector<std::string> show_volumes;
  auto* show = vols->add_subcommand("show", "resolve volumes: kind, size, mount, SCSI identity");
  show->add_option("VOLUME", show_volumes,
                   "mount point or path, block device, iscsi://host:port/iqn/lun, cow:NAME")
      ->required();

  CreateArgs create_args;
  auto* create = app.add_subcommand(
      "create", "snapshot a set of volumes at one instant, all or none (prints the plan first)");
  create->add_option("VOLUME", create_args.volumes,
                     "mount point or path, block device, iscsi://host:port/iqn/lun, cow:NAME");
  create->add_option("--writer", create_args.writers,
                     "take the volumes of every component of writer NAME (repeatable)");
  create->add_option("--component", create_args.components,
                     "take the volumes of component PATH, or WRITER:PATH (repeatable)");
  create->add_option("--provider", create_args.pins, "pin provider NAME to VOLUME (NAME=VOLUME)");
  create->add_option("--exclude", create_args.excludes, "never use provider NAME");
  create->add_flag("--persistent", create_args.persistent,
                   "keep the snapshots after snapset exits (the default)");
  create->add_flag("--auto-release", create_args.auto_release,
                   "delete the snapshots when this snapset process ends");
  create->add_flag("--no-writers", create_args.no_writers,
                   "do not run writers (writer processes, writers.d)");
  create->add_option("--writer-window-ms", create_args.writer_window_ms,
                     "writer window: longest time writers stay frozen, 1..60000 ms")
      ->capture_default_str();
  create->add_option("--window-ms", create_args.window_ms,
                     "commit window: longest time writes are held, 1..10000 ms")
      ->capture_default_str();
  create->add_option("--max-volumes", create_args.max_volumes,
                     "refuse sets of more volumes than this")
      ->capture_default_str();
  create->add_option("--set-id", create_args.set_id,
                     "UUID for the set; creating the same id again returns the existing set");

  ListArgs list_args;
  auto* list_sets = app.add_subcommand("list", "list snapshots in the catalog");
  list_sets->add_option("--volume", list_args.volume, "only snapshots of VOLUME");
  list_sets->add_option("--set", list_args.set_id, "only snapshots of set ID");
  list_sets->add_flag("--verify", list_args.verify,
                      "cross-check the catalog with every provider and report differences");

  bool remove_orphans = false;
  auto* orphans = app.add_subcommand(
      "orphans",
      "list what snapset left on providers that no catalog entry explains (a dry run); "
      "--remove removes it");
  bool orphans_dry_run = false;
  auto* orphans_remove = orphans->add_flag("--remove", remove_orphans, "remove the orphans listed");
  orphans->add_flag("--dry-run", orphans_dry_run, "only list them (the default)")
      ->excludes(orphans_remove);

  std::string show_id;
  bool show_timeline = false;
  auto* show_set = app.add_subcommand("show", "show a snapshot or a set");
  show_set->add_option("ID", show_id, "snapshot id or set id")->required();
  show_set->add_flag("--timeline", show_timeline, "draw the set's timeline (raw events with --json)");
  bool show_writers = false;
  show_set->add_flag("--writers", show_writers,
                     "the writers of the set: metadata, components, backup documents");

  std::string diff_id, diff_base;
  auto* diff = app.add_subcommand(
      "diff", "byte ranges of a snapshot that changed since an older one (incremental backup)");
  diff->add_option("SNAPSHOT", diff_id, "snapshot id")->required();
  diff->add_option("--base", diff_base,
                   "an older snapshot of the same volume; without it, the ranges that may hold "
                   "data");

  DeleteArgs delete_args;
  auto* del = app.add_subcommand("delete", "delete a snapshot, a set, or a volume's oldest snapshot");
  del->add_option("ID", delete_args.id, "snapshot id");
  del->add_option("--set", delete_args.set_id, "delete every snapshot of set ID");
  del->add_option("--oldest", delete_args.oldest, "delete the oldest snapshot of VOLUME");

  ExposeArgs expose_args;
  auto* expose = app.add_subcommand("expose", "make a snapshot readable on this host");
  expose->add_option("ID", expose_args.id, "snapshot id")->required();
  expose->add_option("--mount", expose_args.mount_dir,
                     "also mount it read-only on DIR (an iscsi:// exposure needs --attach)");
  auto* attach = expose->add_flag(
      "--attach", expose_args.attach,
      "attach an iscsi:// exposure to this host with Open-iSCSI and print its device "
      "(needs the kernel's iscsi_tcp)");
  expose
      ->add_option("--chap-file", expose_args.chap_file,
                   "log in with CHAP: an owner-only (chmod 600) JSON file "
                   "{\"CHAPUsername\": ..., \"CHAPPassword\": ...}")
      ->needs(attach);

  std::string unexpose_id;
  auto* unexpose = app.add_subcommand("unexpose", "undo expose");
  unexpose->add_option("ID", unexpose_id, "snapshot id")->required();

  CowArgs cow_args;
  cow_args.socket = EnvOr("SNAPSET_COWD_SOCKET", snapset::cow::kDefaultSocket);
  std::string revert_set, revert_snapshot;
  auto* revert = app.add_subcommand(
      "revert",
      "revert volumes to a set (all of them) or to one snapshot; unmount them first, or pass "
      "--remount");
  auto* revert_set_opt = revert->add_option("--set", revert_set, "revert every volume of set ID");
  auto* revert_snap_opt =
      revert->add_option("--snapshot", revert_snapshot, "revert one volume to snapshot ID");
  revert_set_opt->excludes(revert_snap_opt);
  bool revert_remount = false;
  revert->add_flag("--remount", revert_remount,
                   "unmount the volumes' filesystems after the writers' pre-restore and mount "
                   "them again before their post-restore (else a mounted volume is refused)");

  std::string backup_complete_id;
  auto* backup_complete = app.add_subcommand(
      "backup-complete", "tell a set's writers that its backup is done (VSS BackupComplete)");
  backup_complete->add_option("SET", backup_complete_id, "set id")->required();

  auto* writers = app.add_subcommand("writers", "applications that take part in sets");
  writers->require_subcommand(1);
  auto* writers_list = writers->add_subcommand(
      "list", "writer processes (run directory) and writers.d: state and last error");

  auto* cow = app.add_subcommand("cow", "software copy-on-write volumes (served by snapset-cowd)");
  cow->require_subcommand(1);
  cow->add_option("--socket", cow_args.socket,
                  "snapset-cowd's control socket (env SNAPSET_COWD_SOCKET)")
      ->capture_default_str();
  auto* cow_create = cow->add_subcommand(
      "create", "create cow:NAME: a new origin of --size, or adopt --origin PATH");
  cow_create->add_option("NAME", cow_args.name, "1 to 64 letters, digits, '.', '_' or '-'")
      ->required();
  auto* cow_size = cow_create->add_option("--size", cow_args.size, "size of a new origin (64M, 1G)");
  cow_create->add_option("--origin", cow_args.origin, "adopt this file or block device as origin")
      ->excludes(cow_size);
  cow_create->add_option("--chunk", cow_args.chunk, "copy-on-write chunk: a power of two, 4K..1M")
      ->default_str("64K");
  cow_create->add_option("--diff-max", cow_args.diff_max,
                         "diff area's maximum size (default: a quarter of the origin, at least "
                         "64M); when full, the oldest snapshot is deleted");
  auto* cow_list = cow->add_subcommand("list", "list cow volumes");
  auto* cow_delete = cow->add_subcommand("delete", "delete a cow volume, its snapshots and diff area");
  cow_delete->add_option("NAME", cow_args.name, "volume name (without cow:)")->required();
  auto* cow_stats = cow->add_subcommand("stats", "diff-area use, chunks copied, overflow deletions");
  cow_stats->add_option("NAME", cow_args.name, "volume name (without cow:)")->required();
  // --socket may follow the subcommand word too: `snapset cow list --socket S`.
  for (auto* sub : {cow_create, cow_list, cow_delete, cow_stats}) sub->fallthrough();

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::cout << Innermost(app)->help();
    return kExitOk;
  } catch (const CLI::CallForAllHelp&) {
    std::cout << app.help("", CLI::AppFormatMode::All);
    return kExitOk;
  } catch (const CLI::ParseError& e) {
    std::string path;
    const CLI::App* at = Innermost(app, &path);
    std::string what = e.what();
    // CLI11 reports "A subcommand is required" for a mistyped command; name
    // the word it did not know.
    if (auto extra = at->remaining(); !extra.empty() && at->get_subcommands({}).size() > 0)
      what = "unknown command \"" + extra.front() + "\" for \"" + path + "\"";
    std::cerr << "snapset: usage error: " << what << "\n\n" << at->help();
    return kExitUsage;
  }

  // The core reads it where it resolves iscsi:// volumes (HostInitiatorIqn).
  if (!initiator_iqn.empty()) ::setenv("SNAPSET_INITIATOR_IQN", initiator_iqn.c_str(), 1);
  CliContext ctx(g);
  if (*list) return RunProvidersList(ctx);
  if (*explain) return RunProvidersExplain(ctx, volumes, pins, excludes);
  if (*show) return RunVolumesShow(ctx, show_volumes);
  if (*create) {
    if (create_args.volumes.empty() && create_args.writers.empty() &&
        create_args.components.empty()) {
      std::cerr << "snapset: usage error: create needs at least one VOLUME, or --writer or "
                   "--component to take the volumes of writers' components\n\n"
                << create->help();
      return kExitUsage;
    }
    return RunCreate(ctx, create_args);
  }
  if (*list_sets) return RunList(ctx, list_args);
  if (*orphans) return RunOrphans(ctx, remove_orphans);
  if (*show_set) return RunShow(ctx, show_id, show_timeline, show_writers);
  if (*diff) return RunDiff(ctx, diff_id, diff_base);
  if (*del) return RunDelete(ctx, delete_args);
  if (*expose) return RunExpose(ctx, expose_args);
  if (*unexpose) return RunUnexpose(ctx, unexpose_id);
  if (*writers_list) return RunWritersList(ctx);
  if (*backup_complete) return RunBackupComplete(ctx, backup_complete_id);
  if (*revert) {
    if (revert_set.empty() == revert_snapshot.empty()) {
      std::cerr << "snapset: usage error: revert takes one of --set ID and --snapshot ID\n\n"
                << revert->help();
      return kExitUsage;
    }
    return RunRevert(ctx, revert_set, revert_snapshot, revert_remount);
  }
  if (*cow) {
    if (*cow_create) cow_args.command = CowArgs::kCreate;
    if (*cow_list) cow_args.command = CowArgs::kList;
    if (*cow_delete) cow_args.command = CowArgs::kDelete;
    if (*cow_stats) cow_args.command = CowArgs::kStats;
    // "cow:db" is how volumes are named elsewhere; accept it here too.
    if (cow_args.name.rfind("cow:", 0) == 0) cow_args.name.erase(0, 4);
    return RunCow(ctx, cow_args);
  }
  std::cerr << app.help();
  return kExitUsage;
}
