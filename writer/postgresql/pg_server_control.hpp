// SPDX-License-Identifier: Apache-2.0
// snapset-pg-writer --restart: the cluster stopped at pre-restore and
// started at post-restore with archive recovery to the set's instant, the
// steps an administrator otherwise runs by hand (docs/writer-protocol.md,
// "Restore"). It uses pg_ctl of the installation the server ran from and
// the server's own command line as it recorded it in postmaster.opts (what
// `pg_ctl restart` reuses), so the cluster comes back on the same sockets
// and settings. A cluster run by systemd (Debian's postgresql@ units) is
// not for this: it would come back outside its unit.
#ifndef SNAPSET_WRITER_POSTGRESQL_PG_SERVER_CONTROL_HPP
#define SNAPSET_WRITER_POSTGRESQL_PG_SERVER_CONTROL_HPP

#include <snapset/status.hpp>

#include <map>
#include <string>

namespace snapset::pg {

// How a stopped server ran.
struct StoppedServer {
  std::string data_dir;
  std::string bin_dir;  // of the postgres that ran it
  std::string options;  // its arguments after the program, quoted as postmaster.opts has them
};

// Reads how the server of `data_dir` runs, then stops it: pg_ctl stop -m
// fast, waiting up to `timeout_s` for it to be gone.
Result<StoppedServer> StopServer(const std::string& data_dir, int timeout_s);

// Starts `server` again as it ran (pg_ctl start -w, its log in
// <data_dir>/snapset-restore.log), without recovery: the revert did not
// change its files.
Status StartServer(const StoppedServer& server, int timeout_s);

// Writes the set's backup_label and tablespace_map (from `blob`) and
// recovery.signal into the data directory, then starts `server` as it ran
// plus restore_command, recovery_target = 'immediate' and
// recovery_target_action = 'promote', and waits until it accepts
// connections or `timeout_s` passes.
Status StartWithRecovery(const StoppedServer& server,
                         const std::map<std::string, std::string>& blob,
                         const std::string& restore_command, int timeout_s);

}  // namespace snapset::pg

#endif  // SNAPSET_WRITER_POSTGRESQL_PG_SERVER_CONTROL_HPP
