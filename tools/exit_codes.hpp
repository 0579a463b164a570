// The snapset CLI's exit codes: one per error class, stable, documented in
// docs/cli.md and in `snapset --help`.
#ifndef SNAPSET_TOOLS_EXIT_CODES_HPP
#define SNAPSET_TOOLS_EXIT_CODES_HPP

#include <snapset/status.hpp>

namespace snapset::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitInternal = 1;
inline constexpr int kExitUsage = 2;

// 3..17 follow the status codes.
constexpr int ExitCode(Code c) {
  switch (c) {
    case Code::kOk: return kExitOk;
    case Code::kInvalidArgument: return 3;
    case Code::kNotFound: return 4;
    case Code::kAlreadyExists: return 5;
    case Code::kVolumeNotSupported: return 6;
    case Code::kProviderVeto: return 7;
    case Code::kBadState: return 8;
    case Code::kHoldWritesTimeout: return 9;
    case Code::kWriterTimeout: return 10;
    case Code::kWriterFailed: return 11;
    case Code::kInsufficientStorage: return 12;
    case Code::kMaxSnapshots: return 13;
    case Code::kMaxVolumes: return 14;
    case Code::kUnavailable: return 15;
    case Code::kNotImplemented: return 16;
    case Code::kConfig: return 17;
    case Code::kInternal: return kExitInternal;
  }
  return kExitInternal;
}

inline constexpr const char* kExitCodeHelp =
    "Exit codes: 0 ok, 1 internal error, 2 usage error, 3 invalid argument, 4 not found,\n"
    "5 already exists, 6 volume not supported, 7 provider veto, 8 bad state,\n"
    "9 hold-writes timeout, 10 writer timeout, 11 writer failed, 12 insufficient storage,\n"
    "13 maximum snapshots reached, 14 maximum volumes reached, 15 unavailable (retry),\n"
    "16 not implemented by the provider, 17 configuration error (providers.d).";

}  // namespace snapset::cli

#endif  // SNAPSET_TOOLS_EXIT_CODES_HPP
