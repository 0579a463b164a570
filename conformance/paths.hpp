// SPDX-License-Identifier: Apache-2.0
//
// Where the bundled programs and libraries the built-in fixtures need are:
// next to an installed snapset-conformance (<prefix>/bin, and
// <prefix>/<libdir>/snapset/providers), else in the build tree it was built
// in. An environment variable overrides each (SNAPSET_CONFORMANCE_<NAME>,
// e.g. SNAPSET_CONFORMANCE_COWD=/opt/snapset/bin/snapset-cowd).
#ifndef SNAPSET_CONFORMANCE_PATHS_HPP
#define SNAPSET_CONFORMANCE_PATHS_HPP

#include <snapset/status.hpp>
#include <string>

namespace snapset::conformance {

enum class Bundled {
  kLoopCloneProvider,  // libsnapset_loop_clone.so
  kCowProvider,        // libsnapset_cow_provider.so
  kIscsiProvider,      // libsnapset_iscsi_provider.so
  kSwordfishDriver,    // libsnapset_array_swordfish.so
  kTwophaseDriver,     // libsnapset_array_twophase.so
  kCowDaemon,          // snapset-cowd
  kMockArray,          // snapset-mock-array
};

// The path of `what`, or NotFound saying where it was looked for.
Result<std::string> BundledPath(Bundled what);

}  // namespace snapset::conformance

#endif  // SNAPSET_CONFORMANCE_PATHS_HPP
