#include "tests/mock-array/iscsi_lun.hpp"

#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>

#include <boost/test/unit_test.hpp>

namespace snapset::test {

Lun::Lun(const std::string& url, const LunLogin& login) {
  std::string error;
  BOOST_REQUIRE_MESSAGE(Connect(url, login, &error), url << ": " << error);
}

std::unique_ptr<Lun> Lun::TryConnect(const std::string& url, const LunLogin& login,
                                     std::string* error) {
  std::unique_ptr<Lun> lun(new Lun());
  if (!lun->Connect(url, login, error)) return nullptr;
  return lun;
}

bool Lun::Connect(const std::string& url, const LunLogin& login, std::string* error) {
  ctx_ = iscsi_create_context(login.initiator.c_str());
  if (ctx_ == nullptr) {
    *error = "iscsi_create_context failed";
    return false;
  }
  iscsi_url* parsed = iscsi_parse_full_url(ctx_, url.c_str());
  if (parsed == nullptr) {
    *error = iscsi_get_error(ctx_);
    return false;
  }
  iscsi_set_targetname(ctx_, parsed->target);
  iscsi_set_session_type(ctx_, ISCSI_SESSION_NORMAL);
  iscsi_set_header_digest(ctx_, ISCSI_HEADER_DIGEST_NONE_CRC32C);
  if (!login.chap_user.empty()) {
    iscsi_set_initiator_username_pwd(ctx_, login.chap_user.c_str(), login.chap_password.c_str());
  }
  if (login.timeout_s > 0) iscsi_set_timeout(ctx_, login.timeout_s);
  lun_ = parsed->lun;
  const std::string portal = parsed->portal;
  iscsi_destroy_url(parsed);
  if (iscsi_full_connect_sync(ctx_, portal.c_str(), lun_) != 0) {
    *error = iscsi_get_error(ctx_);
    return false;
  }
  return true;
}

Lun::~Lun() {
  if (ctx_ == nullptr) return;
  if (iscsi_is_logged_in(ctx_)) iscsi_logout_sync(ctx_);
  iscsi_destroy_context(ctx_);
}

void Lun::Drop() {
  if (ctx_ != nullptr) iscsi_destroy_context(ctx_);
  ctx_ = nullptr;
}

int Lun::Write(uint64_t lba, std::vector<unsigned char> data, int block_size) {
  scsi_task* task = iscsi_write16_sync(
      ctx_, lun_, lba, data.data(), static_cast<uint32_t>(data.size()), block_size, 0, 0, 0, 0, 0);
  return Finish(task);
}

std::vector<unsigned char> Lun::Read(uint64_t lba, uint32_t bytes, int block_size) {
  std::vector<unsigned char> out;
  const int status = TryRead(lba, bytes, block_size, &out);
  BOOST_REQUIRE_MESSAGE(status == 0, "READ16 failed (" << status << "): " << error());
  return out;
}

int Lun::TryRead(uint64_t lba, uint32_t bytes, int block_size, std::vector<unsigned char>* out) {
  scsi_task* task = iscsi_read16_sync(ctx_, lun_, lba, bytes, block_size, 0, 0, 0, 0, 0);
  if (task != nullptr && task->status == SCSI_STATUS_GOOD) {
    out->assign(task->datain.data, task->datain.data + task->datain.size);
  }
  return Finish(task);
}

std::string Lun::error() const { return iscsi_get_error(ctx_); }

int Lun::Finish(scsi_task* task) {
  if (task == nullptr) return -1;
  int result = SCSI_STATUS_GOOD;
  if (task->status != SCSI_STATUS_GOOD) {
    result = task->status == SCSI_STATUS_CHECK_CONDITION ? task->sense.key : -2;
    last_ascq_ = task->sense.ascq;
  }
  scsi_free_scsi_task(task);
  return result;
}

std::vector<unsigned char> Pattern(const std::string& text, size_t bytes) {
  std::vector<unsigned char> out(bytes);
  for (size_t i = 0; i < bytes; ++i) out[i] = static_cast<unsigned char>(text[i % text.size()]);
  return out;
}

std::string Text(const std::vector<unsigned char>& data, size_t bytes) {
  return std::string(data.begin(), data.begin() + static_cast<std::ptrdiff_t>(bytes));
}

}  // namespace snapset::test
