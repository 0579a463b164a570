// SPDX-License-Identifier: Apache-2.0
// Fuzz target: a provider registration (core's providers.d parser) and the
// iSCSI provider's config parser, on arbitrary text. Neither may crash, hang
// or leak; every refusal is a Status. The config's arrays may name the
// built-in driver, which is then really loaded and opened.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/provider_registration.hpp"
#include "providers/iscsi/array_config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)snapset::ParseRegistration("/fuzz/providers.d/x.json", text);
  (void)snapset::iscsi::ParseProviderConfig(text, SNAPSET_ARRAY_DRIVER_DIR);
  return 0;
}
