// snapset::Status and snapset::Result<T>: the one error type of snapset.
//
// A Status is either OK (costs one null pointer, nothing allocated) or a code
// from provider.h's snapset_status enum plus a message meant for a human:
// what was wrong and, where it helps, what to do. Result<T> carries a value or
// a non-OK Status.
//
// Thread-safety: distinct objects may be used from distinct threads; a
// single object is not synchronized. Header-only, so providers built on
// provider.hpp can use it without linking anything of snapset.
#ifndef SNAPSET_STATUS_HPP
#define SNAPSET_STATUS_HPP

#include <snapset/provider.h>

#include <cassert>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace snapset {

enum class Code : int32_t {
  kOk = SNAPSET_OK,
  kInvalidArgument = SNAPSET_E_INVALID_ARGUMENT,
  kNotFound = SNAPSET_E_NOT_FOUND,
  kAlreadyExists = SNAPSET_E_ALREADY_EXISTS,
  kVolumeNotSupported = SNAPSET_E_VOLUME_NOT_SUPPORTED,
  kProviderVeto = SNAPSET_E_PROVIDER_VETO,
  kBadState = SNAPSET_E_BAD_STATE,
  kHoldWritesTimeout = SNAPSET_E_HOLD_WRITES_TIMEOUT,
  kWriterTimeout = SNAPSET_E_WRITER_TIMEOUT,
  kWriterFailed = SNAPSET_E_WRITER_FAILED,
  kInsufficientStorage = SNAPSET_E_INSUFFICIENT_STORAGE,
  kMaxSnapshots = SNAPSET_E_MAX_SNAPSHOTS,
  kMaxVolumes = SNAPSET_E_MAX_VOLUMES,
  kUnavailable = SNAPSET_E_UNAVAILABLE,
  kInternal = SNAPSET_E_INTERNAL,
  kNotImplemented = SNAPSET_E_NOT_IMPLEMENTED,
  // Host-side only, never crosses the ABI: a registration file or plugin
  // library is unusable (bad JSON, unsafe permissions, ABI mismatch, ...).
  kConfig = 100,
};

// Stable lower-case name of a code, as printed by the CLI and in JSON.
constexpr std::string_view CodeName(Code c) {
  switch (c) {
    case Code::kOk: return "ok";
    case Code::kInvalidArgument: return "invalid-argument";
    case Code::kNotFound: return "not-found";
    case Code::kAlreadyExists: return "already-exists";
    case Code::kVolumeNotSupported: return "volume-not-supported";
    case Code::kProviderVeto: return "provider-veto";
    case Code::kBadState: return "bad-state";
    case Code::kHoldWritesTimeout: return "hold-writes-timeout";
    case Code::kWriterTimeout: return "writer-timeout";
    case Code::kWriterFailed: return "writer-failed";
    case Code::kInsufficientStorage: return "insufficient-storage";
    case Code::kMaxSnapshots: return "max-snapshots";
    case Code::kMaxVolumes: return "max-volumes";
    case Code::kUnavailable: return "unavailable";
    case Code::kInternal: return "internal";
    case Code::kNotImplemented: return "not-implemented";
    case Code::kConfig: return "config";
  }
  return "internal";
}

// Maps a code received over the ABI; unknown values become kInternal.
constexpr Code CodeFromAbi(snapset_status s) {
  if (s >= SNAPSET_OK && s <= SNAPSET_E_NOT_IMPLEMENTED) return Code(s);
  return Code::kInternal;
}

class [[nodiscard]] Status {
 public:
  Status() noexcept = default;  // OK
  Status(Code code, std::string message)
      : rep_(code == Code::kOk ? nullptr
                               : std::make_unique<Rep>(Rep{code, std::move(message)})) {}
  Status(const Status& o) : rep_(o.rep_ ? std::make_unique<Rep>(*o.rep_) : nullptr) {}
  Status& operator=(const Status& o) {
    if (this != &o) rep_ = o.rep_ ? std::make_unique<Rep>(*o.rep_) : nullptr;
    return *this;
  }
  Status(Status&&) noexcept = default;
  Status& operator=(Status&&) noexcept = default;

  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string m) { return {Code::kInvalidArgument, std::move(m)}; }
  static Status NotFound(std::string m) { return {Code::kNotFound, std::move(m)}; }
  static Status AlreadyExists(std::string m) { return {Code::kAlreadyExists, std::move(m)}; }
  static Status VolumeNotSupported(std::string m) { return {Code::kVolumeNotSupported, std::move(m)}; }
  static Status ProviderVeto(std::string m) { return {Code::kProviderVeto, std::move(m)}; }
  static Status BadState(std::string m) { return {Code::kBadState, std::move(m)}; }
  static Status HoldWritesTimeout(std::string m) { return {Code::kHoldWritesTimeout, std::move(m)}; }
  static Status WriterTimeout(std::string m) { return {Code::kWriterTimeout, std::move(m)}; }
  static Status WriterFailed(std::string m) { return {Code::kWriterFailed, std::move(m)}; }
  static Status InsufficientStorage(std::string m) { return {Code::kInsufficientStorage, std::move(m)}; }
  static Status MaxSnapshots(std::string m) { return {Code::kMaxSnapshots, std::move(m)}; }
  static Status MaxVolumes(std::string m) { return {Code::kMaxVolumes, std::move(m)}; }
  static Status Unavailable(std::string m) { return {Code::kUnavailable, std::move(m)}; }
  static Status Internal(std::string m) { return {Code::kInternal, std::move(m)}; }
  static Status NotImplemented(std::string m) { return {Code::kNotImplemented, std::move(m)}; }
  static Status Config(std::string m) { return {Code::kConfig, std::move(m)}; }

  bool ok() const { return rep_ == nullptr; }
  Code code() const { return rep_ ? rep_->code : Code::kOk; }
  const std::string& message() const {
    static const std::string kEmpty;
    return rep_ ? rep_->message : kEmpty;
  }
  bool Is(Code c) const { return code() == c; }
  bool IsNotFound() const { return Is(Code::kNotFound); }
  bool IsInvalidArgument() const { return Is(Code::kInvalidArgument); }
  bool IsVolumeNotSupported() const { return Is(Code::kVolumeNotSupported); }
  bool IsBadState() const { return Is(Code::kBadState); }

  // "code: message", for logs and the CLI.
  std::string ToString() const {
    if (ok()) return "ok";
    return std::string(CodeName(rep_->code)) + ": " + rep_->message;
  }

  // Returns a copy whose message is prefixed with context ("loading X: ").
  Status WithContext(std::string_view context) const {
    if (ok()) return *this;
    return Status(rep_->code, std::string(context) + ": " + rep_->message);
  }

 private:
  struct Rep {
    Code code;
    std::string message;
  };
  std::unique_ptr<Rep> rep_;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT
    assert(!status_.ok() && "a Result holding no value needs an error");
    if (status_.ok()) status_ = Status::Internal("Result built from an OK status");
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  T& value() & { assert(ok()); return *value_; }
  const T& value() const& { assert(ok()); return *value_; }
  T&& value() && { assert(ok()); return std::move(*value_); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace snapset

#define SNAPSET_RETURN_IF_ERROR(expr)              \
  do {                                             \
    ::snapset::Status _snapset_status = (expr);    \
    if (!_snapset_status.ok()) return _snapset_status; \
  } while (0)

#endif  // SNAPSET_STATUS_HPP
