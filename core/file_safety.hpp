// A provider library runs with the coordinator's privileges (often root), so
// snapset only loads code and registrations that nobody but a trusted owner
// could have written.
#ifndef SNAPSET_CORE_FILE_SAFETY_HPP
#define SNAPSET_CORE_FILE_SAFETY_HPP

#include <snapset/status.hpp>

#include <string>

namespace snapset {

// OK when `path` and the directory that holds it are each owned by root or
// by the current effective user, and writable by nobody but their owner.
// `what` names the file in the message ("provider library", ...).
// Errors: NotFound if the path does not exist, Config if it is unsafe (the
// message says which bit or owner is wrong and the chmod/chown that fixes it).
Status CheckTrustedFile(const std::string& path, const char* what);

}  // namespace snapset

#endif  // SNAPSET_CORE_FILE_SAFETY_HPP
