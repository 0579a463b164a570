// Holding writes on the volumes of a set during the commit window (DESIGN §4).
//
//   mounted filesystem -> FreezeHold: FIFREEZE on the mount, FITHAW to release
//   a provider's hold  -> a gate (software-cow daemon, array fence), under
//                         the freeze when both apply
//   neither            -> no hold possible: crash-consistent only
//
// A hold must never outlive the coordinator: every FreezeHold is registered
// with the ThawGuard (thaw_guard.hpp) before it freezes, and the guard thaws
// it if the coordinator dies or the deadline passes.
//
// Thread-safety: Hold and Release of one object may be called from different
// threads (the watchdog releases while a provider thread may still run), but
// not concurrently with each other for the same object; Release is
// idempotent and safe after a failed Hold: it never thaws a freeze that
// this object did not make. Destroying a held hold releases it.
#ifndef SNAPSET_CORE_WRITE_HOLD_HPP
#define SNAPSET_CORE_WRITE_HOLD_HPP

#include <snapset/status.hpp>

#include <memory>
#include <string>
#include <vector>

#include "core/volume.hpp"

namespace snapset {

enum class HoldMethod {
  kNone,    // cannot be held: crash-consistent only
  kFreeze,  // FIFREEZE / FITHAW on a mounted filesystem
  kGate,    // a write gate (software-cow daemon)
};
const char* HoldMethodName(HoldMethod m);  // "none", "fsfreeze", "write-gate"

class WriteHold {
 public:
  virtual ~WriteHold() = default;
  virtual HoldMethod method() const = 0;
  // What is held, for the plan and the timeline ("/mnt/db", "cow:db").
  virtual const std::string& target() const = 0;
  // Blocks new writes and flushes what is in flight. On error nothing is held.
  virtual Status Hold() = 0;
  // Lets writes flow again. Idempotent; OK if not held.
  virtual Status Release() = 0;
};

// FIFREEZE on `mount_point`. The mount point is opened at construction, so
// Hold and Release do no path lookup. Errors: InvalidArgument when the
// filesystem cannot be frozen safely: it is the root filesystem, or it holds
// one of the `protected_paths` (the state directory and catalog: freezing
// them would deadlock the coordinator; a path that does not exist yet counts
// where its nearest existing ancestor is). "Same filesystem" means the same
// superblock, which is what FIFREEZE freezes: btrfs subvolumes of one
// filesystem count as one although stat gives each its own st_dev.
// Unavailable when the mount cannot be opened. Hold returns Unavailable when
// the filesystem refuses FIFREEZE (EOPNOTSUPP: its type cannot be frozen;
// EBUSY: someone else froze it) and BadState when already held.
Result<std::unique_ptr<WriteHold>> MakeFreezeHold(const std::string& mount_point,
                                                  const std::vector<std::string>& protected_paths);

// The hold the host itself can make on `v`: kFreeze for a mounted
// filesystem, else kNone. A provider may add a gate (provider.h
// hold_writes); the set's plan combines both.
HoldMethod HoldMethodFor(const Volume& v);

}  // namespace snapset

#endif  // SNAPSET_CORE_WRITE_HOLD_HPP
