// SPDX-License-Identifier: Apache-2.0
// STUB: replaced by the libiscsi record I/O.
#include "conformance/record_io.hpp"
namespace snapset::conformance {
Status WriteRecordIscsi(const std::string&, const std::string&, const std::string&) {
  return Status::NotImplemented("iscsi records");
}
Result<std::string> ReadRecordIscsi(const std::string&, const std::string&) {
  return Status::NotImplemented("iscsi records");
}
Result<std::unique_ptr<RecordWriter>> OpenRecordIscsiWriter(const std::string&,
                                                            const std::string&) {
  return Status::NotImplemented("iscsi records");
}
}  // namespace snapset::conformance
