// SPDX-License-Identifier: Apache-2.0
// The one exported symbol of libsnapset_array_swordfish.so.
#include "swordfish_driver.hpp"

SNAPSET_ARRAY_DRIVER(snapset::swordfish::SwordfishDriver)
