// SPDX-License-Identifier: Apache-2.0
#include "conformance/record_io.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace snapset::conformance {

namespace {

constexpr std::string_view kMagic = "snapset-conformance\n";

std::string ErrnoText(const std::string& what) { return what + ": " + std::strerror(errno); }

// An aligned 4 KiB buffer, as O_DIRECT wants.
struct AlignedBlock {
  AlignedBlock() {
    if (::posix_memalign(&data, kRecordBlock, kRecordBlock) != 0) data = nullptr;
  }
  ~AlignedBlock() { std::free(data); }
  void* data = nullptr;
};

// Opens `path` with O_DIRECT if it takes it (tmpfs and FUSE may not).
int OpenBlock(const std::string& path, int mode, bool* direct) {
  int fd = ::open(path.c_str(), mode | O_DIRECT | O_CLOEXEC);
  *direct = fd >= 0;
  if (fd < 0 && errno == EINVAL) fd = ::open(path.c_str(), mode | O_CLOEXEC);
  return fd;
}

Status WriteBlock(int fd, bool direct, const std::string& path, const std::string& record) {
  AlignedBlock block;
  if (!block.data) return Status::Internal("out of memory");
  const std::string bytes = EncodeRecordBlock(record);
  std::memcpy(block.data, bytes.data(), kRecordBlock);
  if (::pwrite(fd, block.data, kRecordBlock, 0) != ssize_t(kRecordBlock))
    return Status::Unavailable(ErrnoText("cannot write a record to " + path));
  if (!direct && ::fdatasync(fd) != 0)
    return Status::Unavailable(ErrnoText("cannot flush a record to " + path));
  return Status::Ok();
}

class FileRecordWriter : public RecordWriter {
 public:
  FileRecordWriter(std::string path, int fd, bool direct)
      : path_(std::move(path)), fd_(fd), direct_(direct) {}
  ~FileRecordWriter() override { ::close(fd_); }
  Status Write(const std::string& record) override {
    return WriteBlock(fd_, direct_, path_, record);
  }

 private:
  std::string path_;
  int fd_;
  bool direct_;
};

}  // namespace

std::string EncodeRecordBlock(const std::string& record) {
  std::string block(kMagic);
  block += record.substr(0, kRecordBlock - kMagic.size() - 1);
  block += '\n';
  block.resize(kRecordBlock, '\0');
  return block;
}

Result<std::string> DecodeRecordBlock(std::string_view block) {
  if (!block.starts_with(kMagic)) return Status::NotFound("the block holds no record");
  block.remove_prefix(kMagic.size());
  const size_t end = block.find('\n');
  if (end == std::string_view::npos) return Status::NotFound("the record is not terminated");
  return std::string(block.substr(0, end));
}

Status WriteRecordFile(const std::string& path, const std::string& record) {
  bool direct = false;
  int fd = OpenBlock(path, O_WRONLY, &direct);
  if (fd < 0) return Status::Unavailable(ErrnoText("cannot open " + path));
  Status s = WriteBlock(fd, direct, path, record);
  ::close(fd);
  return s;
}

Result<std::string> ReadRecordFile(const std::string& path) {
  bool direct = false;
  int fd = OpenBlock(path, O_RDONLY, &direct);
  if (fd < 0) return Status::Unavailable(ErrnoText("cannot open " + path));
  AlignedBlock block;
  const ssize_t n = block.data ? ::pread(fd, block.data, kRecordBlock, 0) : -1;
  const int saved = errno;
  ::close(fd);
  errno = saved;
  if (n < 0) return Status::Unavailable(ErrnoText("cannot read " + path));
  return DecodeRecordBlock(std::string_view(static_cast<const char*>(block.data), size_t(n)));
}

Result<std::unique_ptr<RecordWriter>> OpenRecordFileWriter(const std::string& path) {
  bool direct = false;
  int fd = OpenBlock(path, O_WRONLY, &direct);
  if (fd < 0) return Status::Unavailable(ErrnoText("cannot open " + path));
  return std::unique_ptr<RecordWriter>(new FileRecordWriter(path, fd, direct));
}

}  // namespace snapset::conformance
