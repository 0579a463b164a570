// SPDX-License-Identifier: Apache-2.0
// The host side of array.h: loads an array driver library with dlopen,
// negotiates the ABI, and opens instances of it that the rest of the iSCSI
// provider uses as plain snapset::ArrayDriver objects.
//
// Negotiation: the major version must be this host's (1); any minor is
// accepted. Ops beyond the driver's struct_size count as NULL. Every
// mandatory op must be there, and the three fence ops come together or not
// at all; otherwise the library is refused with a message naming the file
// and the op.
//
// Trust: the driver runs with the provider's privileges (often root), so a
// library is loaded only when it and its directory are owned by root or the
// running user and writable by nobody else, as core does for providers.
//
// Thread-safety: a DriverLibrary is immutable once loaded and may be shared.
// An instance it opens is used by one thread at a time (array.h).
#ifndef SNAPSET_PROVIDERS_ISCSI_DRIVER_LIBRARY_HPP
#define SNAPSET_PROVIDERS_ISCSI_DRIVER_LIBRARY_HPP

#include <functional>
#include <memory>
#include <snapset/array.hpp>
#include <snapset/status.hpp>
#include <string>
#include <string_view>

namespace snapset::iscsi {

// Receives the driver's log lines (level, text).
using DriverLog = std::function<void(int32_t, std::string_view)>;

class DriverLibrary : public std::enable_shared_from_this<DriverLibrary> {
 public:
  // Loads `path`. Errors: Config naming the path and what is wrong.
  static Result<std::shared_ptr<const DriverLibrary>> Load(const std::string& path);
  ~DriverLibrary();
  DriverLibrary(const DriverLibrary&) = delete;
  DriverLibrary& operator=(const DriverLibrary&) = delete;

  // Opens one instance for one array (array.h open). The instance keeps the
  // library loaded. Errors: the driver's, its message prefixed with the
  // library's path.
  Result<std::unique_ptr<ArrayDriver>> Open(std::string_view config_json, const ArrayCall& call,
                                            DriverLog log) const;

  const std::string& path() const { return path_; }
  // The driver's ABI version (SNAPSET_ABI_MAKE_VERSION form).
  uint32_t abi_version() const { return abi_version_; }
  bool offers_fences() const { return ops_.start_fence != nullptr; }
  bool offers_revert() const { return ops_.revert != nullptr; }
  const snapset_array_driver_ops& ops() const { return ops_; }

 private:
  DriverLibrary() = default;
  void* handle_ = nullptr;
  std::string path_;
  uint32_t abi_version_ = 0;
  snapset_array_driver_ops ops_{};  // the driver's, NULL beyond its struct_size
};

// Checks a driver's ops table against this host (the negotiation above),
// and copies what the driver knows into *out. `where` names the library in
// messages. Errors: Config.
Status NegotiateArrayAbi(const snapset_array_driver_ops* ops, const std::string& where,
                         snapset_array_driver_ops* out);

}  // namespace snapset::iscsi

#endif  // SNAPSET_PROVIDERS_ISCSI_DRIVER_LIBRARY_HPP
