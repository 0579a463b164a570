// A synchronous libiscsi session to one LUN of a mock array, for reading and
// writing blocks in tests: login with an initiator name and, optionally,
// CHAP; WRITE16/READ16 that report SCSI status and sense.
#ifndef SNAPSET_TESTS_MOCK_ARRAY_ISCSI_LUN_HPP
#define SNAPSET_TESTS_MOCK_ARRAY_ISCSI_LUN_HPP

#include <memory>
#include <string>
#include <vector>

struct iscsi_context;
struct scsi_task;

namespace snapset::test {

inline constexpr char kTestInitiator[] = "iqn.2026-11.io.snapset.test:initiator";

struct LunLogin {
  std::string initiator = kTestInitiator;
  std::string chap_user;  // empty: no CHAP
  std::string chap_password;
  int timeout_s = 0;  // libiscsi's per-command timeout; 0 leaves its default (none)
};

class Lun {
 public:
  // url: iscsi://HOST:PORT/TARGET/LUN. Logs in or fails the test.
  explicit Lun(const std::string& url, const LunLogin& login = {});
  // Logs in, or returns nullptr with what libiscsi said in *error.
  static std::unique_ptr<Lun> TryConnect(const std::string& url, const LunLogin& login,
                                         std::string* error);
  ~Lun();
  Lun(const Lun&) = delete;
  Lun& operator=(const Lun&) = delete;

  // SCSI status GOOD (0), the sense key of a CHECK CONDITION, or negative
  // when the command did not complete (-1: no answer, -2: another status).
  int Write(uint64_t lba, std::vector<unsigned char> data, int block_size);
  // The data read, or fails the test.
  std::vector<unsigned char> Read(uint64_t lba, uint32_t bytes, int block_size);
  // As Write: 0 with *out filled, else the sense key or a negative number.
  int TryRead(uint64_t lba, uint32_t bytes, int block_size, std::vector<unsigned char>* out);
  int last_ascq() const { return last_ascq_; }  // of the last failed command
  // Closes the connection without a logout: for a target known to be gone,
  // where libiscsi's logout would wait on a reconnect that never succeeds.
  void Drop();
  std::string error() const;                    // libiscsi's last error text

 private:
  Lun() = default;
  bool Connect(const std::string& url, const LunLogin& login, std::string* error);
  int Finish(scsi_task* task);

  iscsi_context* ctx_ = nullptr;
  int lun_ = 0;
  int last_ascq_ = 0;
};

// `bytes` bytes repeating `text`, and the first `bytes` of data as text.
std::vector<unsigned char> Pattern(const std::string& text, size_t bytes);
std::string Text(const std::vector<unsigned char>& data, size_t bytes);

}  // namespace snapset::test

#endif  // SNAPSET_TESTS_MOCK_ARRAY_ISCSI_LUN_HPP
