// SPDX-License-Identifier: Apache-2.0
//
// How the built-in fixtures put a record on a volume: one 4 KiB block at
// offset 0 holding "snapset-conformance\n<record>\n" and zeros. A block
// written whole with O_DIRECT is never torn by a snapshot taken between two
// writes, so a snapshot holds exactly one record.
#ifndef SNAPSET_CONFORMANCE_RECORD_IO_HPP
#define SNAPSET_CONFORMANCE_RECORD_IO_HPP

#include <memory>
#include <snapset/status.hpp>
#include <string>
#include <string_view>

#include "conformance/fixture.hpp"

namespace snapset::conformance {

inline constexpr size_t kRecordBlock = 4096;

std::string EncodeRecordBlock(const std::string& record);  // kRecordBlock bytes
// The record in a block; NotFound when the block holds none.
Result<std::string> DecodeRecordBlock(std::string_view block);

// On a file or a block device, at offset 0, with O_DIRECT where the path
// takes it (falls back to a buffered write and fdatasync).
Status WriteRecordFile(const std::string& path, const std::string& record);
Result<std::string> ReadRecordFile(const std::string& path);
// A writer keeping the file open (the load cases write thousands).
Result<std::unique_ptr<RecordWriter>> OpenRecordFileWriter(const std::string& path);

// On an iSCSI LUN (iscsi://host:port/iqn/lun), through libiscsi as
// `initiator` (record_io_iscsi.cc).
Status WriteRecordIscsi(const std::string& url, const std::string& initiator,
                        const std::string& record);
Result<std::string> ReadRecordIscsi(const std::string& url, const std::string& initiator);
Result<std::unique_ptr<RecordWriter>> OpenRecordIscsiWriter(const std::string& url,
                                                            const std::string& initiator);

}  // namespace snapset::conformance

#endif  // SNAPSET_CONFORMANCE_RECORD_IO_HPP
