// SPDX-License-Identifier: Apache-2.0
// RAII owners of libiscsi's context, parsed URL and SCSI task, for the
// iSCSI LUN toolkit's own files (private: not installed).
#ifndef SNAPSET_ISCSI_LIBISCSI_HANDLES_HPP
#define SNAPSET_ISCSI_LIBISCSI_HANDLES_HPP

#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>

#include <memory>

namespace snapset::iscsi::detail {

struct ContextDeleter {
  void operator()(iscsi_context* c) const { iscsi_destroy_context(c); }
};
// An iscsi_url is freed through the context that parsed it, so it must not
// outlive that context.
struct UrlDeleter {
  void operator()(iscsi_url* u) const { iscsi_destroy_url(u); }
};
struct TaskDeleter {
  void operator()(scsi_task* t) const { scsi_free_scsi_task(t); }
};
using ContextPtr = std::unique_ptr<iscsi_context, ContextDeleter>;
using UrlPtr = std::unique_ptr<iscsi_url, UrlDeleter>;
using TaskPtr = std::unique_ptr<scsi_task, TaskDeleter>;

}  // namespace snapset::iscsi::detail

#endif  // SNAPSET_ISCSI_LIBISCSI_HANDLES_HPP
