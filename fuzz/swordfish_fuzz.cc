// SPDX-License-Identifier: Apache-2.0
// Fuzz target: the Swordfish driver reading an array's answers, which are
// untrusted input. The answers come from a loopback server (canned_server.hpp)
// over libcurl, as from an array; the driver lists the inventory, groups and
// exposures, and makes a group snapshot. Nothing may crash, hang or leak.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz/canned_server.hpp"
#include "swordfish_driver.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static snapset::fuzz::CannedServer server;
  server.Serve(
      snapset::fuzz::SplitAnswers(std::string_view(reinterpret_cast<const char*>(data), size)));
  snapset::rest::RestEndpoint e;
  e.base_url = server.url();
  e.user = "u";
  e.password = "p";
  e.insecure = true;
  e.request_timeout = std::chrono::milliseconds(2000);
  auto driver = snapset::swordfish::MakeSwordfishDriver(e);
  snapset::ArrayCall call;
  call.deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  call.retry = false;
  (void)driver->Inventory(call);
  (void)driver->Groups(call);
  (void)driver->Exposures(call);
  snapset::SnapshotRequest request{
      {"/redfish/v1/Storage/array/ConsistencyGroups/1", "g", {"/v/1"}}, {"snapset-x"}, ""};
  (void)driver->SnapshotGroup(request, call);
  (void)driver->Settle(call);
  return 0;
}
