// SPDX-License-Identifier: Apache-2.0
//
// Records on an iSCSI LUN, through libiscsi in user space (no kernel
// initiator here: FIELD-NOTES). A record is the first kRecordBlock bytes of
// the LUN, written with one WRITE(16) of kRecordBlock / block-size blocks,
// so a snapshot cut between two writes holds one record whole.
//
// libiscsi is not thread-safe: each Session is used by one thread at a
// time (a writer belongs to the thread of its load case). Every call is
// bounded by iscsi_set_timeout, so a LUN whose writes an array holds (a
// fence) fails a call after kTimeoutS instead of hanging the case.
#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>

#include <memory>
#include <snapset/iscsi_lun.hpp>
#include <string>

#include "conformance/record_io.hpp"

namespace snapset::conformance {
namespace {

// Longer than any commit window the suite runs (writes held by a fence wait
// for it), short enough that a dead target fails the case, not the runner.
constexpr int kTimeoutS = 30;
// SCSI sense key UNIT ATTENTION: a target reports it once per new nexus
// event (a reset, a LUN change); the command is then simply sent again.
constexpr int kUnitAttention = 0x06;

struct TaskFree {
  void operator()(scsi_task* t) const { scsi_free_scsi_task(t); }
};
using Task = std::unique_ptr<scsi_task, TaskFree>;

class Session {
 public:
  ~Session() {
    if (ctx_ == nullptr) return;
    if (iscsi_is_logged_in(ctx_)) iscsi_logout_sync(ctx_);
    iscsi_destroy_context(ctx_);
  }

  static Result<std::unique_ptr<Session>> Open(const std::string& url,
                                               const std::string& initiator) {
    Result<iscsi::LunUrl> parsed = iscsi::ParseLunUrl(url);
    if (!parsed.ok()) return parsed.status();
    if (initiator.empty()) return Status::InvalidArgument(url + ": no initiator name");
    std::unique_ptr<Session> s(new Session());
    s->where_ = parsed->canonical;
    s->ctx_ = iscsi_create_context(initiator.c_str());
    if (s->ctx_ == nullptr) return Status::Internal("iscsi_create_context failed");
    s->lun_ = parsed->lun;
    iscsi_set_targetname(s->ctx_, parsed->target_iqn.c_str());
    iscsi_set_session_type(s->ctx_, ISCSI_SESSION_NORMAL);
    iscsi_set_header_digest(s->ctx_, ISCSI_HEADER_DIGEST_NONE_CRC32C);
    iscsi_set_timeout(s->ctx_, kTimeoutS);
    const std::string portal = parsed->host + ":" + std::to_string(parsed->port);
    if (iscsi_full_connect_sync(s->ctx_, portal.c_str(), s->lun_) != 0) {
      return Status::Unavailable(s->where_ + ": log-in as " + initiator +
                                 " failed: " + iscsi_get_error(s->ctx_));
    }
    Task cap(iscsi_readcapacity16_sync(s->ctx_, s->lun_));
    if (!cap || cap->status != SCSI_STATUS_GOOD) {
      return Status::Unavailable(s->where_ + ": READ CAPACITY(16) failed: " + s->Error(cap.get()));
    }
    auto* rc = static_cast<scsi_readcapacity16*>(scsi_datain_unmarshall(cap.get()));
    if (rc == nullptr || rc->block_length == 0 || kRecordBlock % rc->block_length != 0) {
      return Status::Unavailable(s->where_ + ": a block size that does not divide " +
                                 std::to_string(kRecordBlock) + " bytes");
    }
    s->block_ = int(rc->block_length);
    return s;
  }

  Status Write(const std::string& record) {
    std::string block = EncodeRecordBlock(record);
    for (int attempt = 0;; ++attempt) {
      Task t(iscsi_write16_sync(ctx_, lun_, 0, reinterpret_cast<unsigned char*>(block.data()),
                                uint32_t(block.size()), block_, 0, 0, 0, 0, 0));
      if (t && t->status == SCSI_STATUS_GOOD) return Status::Ok();
      if (attempt == 0 && UnitAttention(t.get())) continue;
      return Status::Unavailable(where_ + ": WRITE(16) failed: " + Error(t.get()));
    }
  }

  Result<std::string> Read() {
    for (int attempt = 0;; ++attempt) {
      Task t(iscsi_read16_sync(ctx_, lun_, 0, uint32_t(kRecordBlock), block_, 0, 0, 0, 0, 0));
      if (t && t->status == SCSI_STATUS_GOOD) {
        if (t->datain.size < int(kRecordBlock)) {
          return Status::Unavailable(where_ + ": READ(16) returned " +
                                     std::to_string(t->datain.size) + " bytes");
        }
        return DecodeRecordBlock(
            std::string_view(reinterpret_cast<const char*>(t->datain.data), kRecordBlock));
      }
      if (attempt == 0 && UnitAttention(t.get())) continue;
      return Status::Unavailable(where_ + ": READ(16) failed: " + Error(t.get()));
    }
  }

 private:
  Session() = default;

  static bool UnitAttention(const scsi_task* t) {
    return t != nullptr && t->status == SCSI_STATUS_CHECK_CONDITION &&
           t->sense.key == kUnitAttention;
  }

  std::string Error(const scsi_task* t) const {
    if (t != nullptr && t->status == SCSI_STATUS_CHECK_CONDITION) {
      return std::string("check condition, sense key ") + scsi_sense_key_str(t->sense.key) + ", " +
             scsi_sense_ascq_str(t->sense.ascq);
    }
    const char* e = iscsi_get_error(ctx_);
    return e != nullptr && *e != '\0' ? e : "no answer";
  }

  iscsi_context* ctx_ = nullptr;
  int lun_ = 0;
  int block_ = 512;
  std::string where_;
};

class IscsiWriter : public RecordWriter {
 public:
  explicit IscsiWriter(std::unique_ptr<Session> s) : session_(std::move(s)) {}
  Status Write(const std::string& record) override { return session_->Write(record); }

 private:
  std::unique_ptr<Session> session_;
};

}  // namespace

Status WriteRecordIscsi(const std::string& url, const std::string& initiator,
                        const std::string& record) {
  Result<std::unique_ptr<Session>> s = Session::Open(url, initiator);
  if (!s.ok()) return s.status();
  return (*s)->Write(record);
}

Result<std::string> ReadRecordIscsi(const std::string& url, const std::string& initiator) {
  Result<std::unique_ptr<Session>> s = Session::Open(url, initiator);
  if (!s.ok()) return s.status();
  return (*s)->Read();
}

Result<std::unique_ptr<RecordWriter>> OpenRecordIscsiWriter(const std::string& url,
                                                            const std::string& initiator) {
  Result<std::unique_ptr<Session>> s = Session::Open(url, initiator);
  if (!s.ok()) return s.status();
  return std::unique_ptr<RecordWriter>(new IscsiWriter(std::move(*s)));
}

}  // namespace snapset::conformance
