// snapset-cowd end to end: the control protocol through CowdClient (and raw
// lines where the client cannot send what is being tested), the FUSE tree,
// write holds, permissions, bad input, restart and recovery, and a real
// ext4 on a loop device over a served origin. Needs root, /dev/fuse and
// loop devices; in CI a missing one fails the test.
#define BOOST_TEST_MODULE cowd_test
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <future>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tests/software-cow/daemon/cowd_fixture.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using snapset::Code;
using snapset::Status;
using snapset::cow::CowdClient;
using snapset::cow::CreateVolumeRequest;
using namespace snapset::test;
using namespace snapset::test::cowd;

namespace {

constexpr uint64_t kMiB = 1024 * 1024;
constexpr uint64_t kChunk = 64 * 1024;

template <typename T>
Status StatusOf(const snapset::Result<T>& r) {
  return r.ok() ? Status::Ok() : r.status();
}
Status StatusOf(const Status& s) { return s; }

// The call failed with `code` and a message that mentions `needle`.
#define EXPECT_ERROR(expr, want, needle)                                                      \
  do {                                                                                        \
    Status _s = StatusOf(expr);                                                               \
    BOOST_CHECK_MESSAGE(_s.code() == (want), #expr " gave " + _s.ToString() + ", expected " + \
                                                 std::string(snapset::CodeName(want)));       \
    BOOST_CHECK_MESSAGE(_s.message().find(needle) != std::string::npos,                       \
                        #expr ": message \"" + _s.message() + "\" lacks \"" + (needle) + "\""); \
  } while (0)

#define REQUIRE_OK(expr)                                              \
  do {                                                                \
    Status _s = StatusOf(expr);                                       \
    BOOST_REQUIRE_MESSAGE(_s.ok(), #expr " failed: " + _s.ToString()); \
  } while (0)

std::string Random(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (size_t i = 0; i < n; i += 8) {
    uint64_t v = rng();
    std::memcpy(&s[i], &v, std::min<size_t>(8, n - i));
  }
  return s;
}

void WriteAt(const std::string& path, uint64_t off, const std::string& data) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  BOOST_REQUIRE_MESSAGE(fd >= 0, "open " + path + ": " + std::strerror(errno));
  ssize_t n = ::pwrite(fd, data.data(), data.size(), off_t(off));
  int e = errno;
  BOOST_REQUIRE_MESSAGE(n == ssize_t(data.size()), "pwrite " + path + ": " + std::strerror(e));
  BOOST_REQUIRE_MESSAGE(::fsync(fd) == 0, "fsync " + path);
  ::close(fd);
}

std::string ReadAt(const std::string& path, uint64_t off, size_t n) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  BOOST_REQUIRE_MESSAGE(fd >= 0, "open " + path + ": " + std::strerror(errno));
  std::string s(n, '\0');
  ssize_t got = ::pread(fd, s.data(), n, off_t(off));
  int e = errno;
  ::close(fd);
  BOOST_REQUIRE_MESSAGE(got == ssize_t(n), "pread " + path + ": " + std::strerror(e));
  return s;
}

// One request line sent raw; the reply line (or "" when the connection
// closed without one).
std::string RawCall(const std::string& socket, const std::string& line) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, socket.c_str(), sizeof addr.sun_path - 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return "connect failed";
  }
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string out = line + "\n";
  (void)!::send(fd, out.data(), out.size(), MSG_NOSIGNAL);
  std::string reply;
  char c;
  while (::recv(fd, &c, 1, 0) == 1 && c != '\n') reply.push_back(c);
  ::close(fd);
  return reply;
}

bool Contains(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

struct Started {
  TempDir dir;
  std::unique_ptr<Daemon> daemon;
  std::unique_ptr<CowdClient> client;
};

// Starts a daemon in a fresh temp dir, connected; false when a
// prerequisite is missing (a failure in CI).
bool Start(Started& s, bool loop_devices = false) {
  if (!Available(MissingPrerequisite(loop_devices))) return false;
  s.daemon = std::make_unique<Daemon>(s.dir.str());
  Status started = s.daemon->Start();
  BOOST_REQUIRE_MESSAGE(started.ok(), started.ToString());
  auto c = s.daemon->Client();
  BOOST_REQUIRE_MESSAGE(c.ok(), c.status().ToString());
  s.client = std::move(c).value();
  return true;
}

snapset::cow::CowVolumeStatus MakeVolume(CowdClient& c, const std::string& name, uint64_t size,
                                         uint64_t diff_max = 0) {
  CreateVolumeRequest r;
  r.name = name;
  r.size_bytes = size;
  r.chunk_size = uint32_t(kChunk);
  r.diff_max_bytes = diff_max;
  auto v = c.CreateVolume(r);
  BOOST_REQUIRE_MESSAGE(v.ok(), "create volume " + name + ": " + v.status().ToString());
  return *v;
}

bool Exists(const std::string& path) {
  struct stat st{};
  return ::stat(path.c_str(), &st) == 0;
}

}  // namespace

BOOST_AUTO_TEST_CASE(volumes_and_snapshots_are_managed_over_the_control_socket) {
  Started s;
  if (!Start(s)) return;
  Daemon& d = *s.daemon;
  CowdClient& c = *s.client;
  BOOST_TEST(Contains(d.ready_line(), "\"volumes\":0"));
  BOOST_TEST(Contains(d.ready_line(), "\"pid\":" + std::to_string(d.pid())));

  auto info = c.Info();
  REQUIRE_OK(info);
  BOOST_TEST(info->pid == d.pid());
  BOOST_TEST(info->mount == d.mount());
  BOOST_TEST(info->state_dir == d.state_dir());
  BOOST_TEST(!info->version.empty());

  auto v = MakeVolume(c, "db", 16 * kMiB);
  BOOST_TEST(v.name == "db");
  BOOST_TEST(v.size_bytes == 16 * kMiB);
  BOOST_TEST(v.chunk_size == kChunk);
  BOOST_TEST(v.served_origin == d.mount() + "/db/origin");
  BOOST_TEST(v.origin_path == d.state_dir() + "/volumes/db.origin");
  BOOST_TEST(v.diff_path == d.state_dir() + "/volumes/db.diff");
  // Default diff area: a quarter of the origin, at least 64 MiB.
  BOOST_TEST(v.diff_bytes_max > 60 * kMiB);
  BOOST_TEST(v.diff_bytes_max <= 64 * kMiB);
  BOOST_TEST(v.snapshots == 0u);
  BOOST_TEST(!v.writes_held);
  struct stat st{};
  BOOST_REQUIRE(::stat(v.served_origin.c_str(), &st) == 0);
  BOOST_TEST(S_ISREG(st.st_mode));
  BOOST_TEST(uint64_t(st.st_size) == 16 * kMiB);

  auto list = c.ListVolumes();
  REQUIRE_OK(list);
  BOOST_REQUIRE(list->size() == 1u);
  BOOST_TEST((*list)[0].name == "db");
  REQUIRE_OK(c.GetVolume("db"));
  EXPECT_ERROR(c.GetVolume("nope"), Code::kNotFound, "nope");

  auto s1 = c.CreateSnapshot("db", "s1");
  REQUIRE_OK(s1);
  BOOST_TEST(s1->id == "s1");
  BOOST_TEST(s1->valid);
  BOOST_TEST(s1->epoch > 0u);
  BOOST_TEST(s1->path == d.mount() + "/db/snapshots/s1");
  BOOST_REQUIRE(::stat(s1->path.c_str(), &st) == 0);
  BOOST_TEST(uint64_t(st.st_size) == 16 * kMiB);
  BOOST_TEST((st.st_mode & 0222) == 0u);

  auto generated = c.CreateSnapshot("db", "");
  REQUIRE_OK(generated);
  BOOST_TEST(!generated->id.empty());
  BOOST_TEST(generated->epoch > s1->epoch);
  EXPECT_ERROR(c.CreateSnapshot("db", "s1"), Code::kAlreadyExists, "s1");

  auto snaps = c.ListSnapshots("db");
  REQUIRE_OK(snaps);
  BOOST_REQUIRE(snaps->size() == 2u);
  BOOST_TEST((*snaps)[0].id == "s1");  // oldest first
  BOOST_TEST((*snaps)[1].id == generated->id);
  std::vector<std::string> listed;
  for (const auto& e : fs::directory_iterator(d.mount() + "/db/snapshots")) {
    listed.push_back(e.path().filename().string());
  }
  std::sort(listed.begin(), listed.end());
  std::vector<std::string> expected = {generated->id, "s1"};
  std::sort(expected.begin(), expected.end());
  BOOST_TEST(listed == expected, boost::test_tools::per_element());
  BOOST_TEST(c.GetVolume("db")->snapshots == 2u);

  REQUIRE_OK(c.DeleteSnapshot("db", "s1"));
  BOOST_TEST(!Exists(s1->path));
  EXPECT_ERROR(c.DeleteSnapshot("db", "s1"), Code::kNotFound, "s1");
  BOOST_TEST(c.ListSnapshots("db")->size() == 1u);

  REQUIRE_OK(c.DeleteVolume("db"));
  BOOST_TEST(c.ListVolumes()->empty());
  BOOST_TEST(!Exists(d.state_dir() + "/volumes/db.diff"));
  BOOST_TEST(!Exists(d.state_dir() + "/volumes/db.origin"));
  BOOST_TEST(!Exists(d.mount() + "/db"));
  EXPECT_ERROR(c.DeleteVolume("db"), Code::kNotFound, "db");
}

BOOST_AUTO_TEST_CASE(origin_writes_read_back_and_snapshots_keep_the_old_data) {
  Started s;
  if (!Start(s)) return;
  CowdClient& c = *s.client;
  auto v = MakeVolume(c, "vol", 8 * kMiB);
  const std::string origin = v.served_origin;
  const uint64_t odd = 5 * kMiB + 100;  // unaligned, spans chunks 80 and 81
  const std::string a1 = Random(kMiB, 1), a2 = Random(kChunk, 2);
  WriteAt(origin, 0, a1);
  WriteAt(origin, odd, a2);
  BOOST_TEST(ReadAt(origin, 0, kMiB) == a1);
  BOOST_TEST(ReadAt(origin, odd, kChunk) == a2);

  auto before = c.CreateSnapshot("vol", "before");
  REQUIRE_OK(before);
  const std::string b1 = Random(kMiB, 3), b2 = Random(kChunk, 4);
  WriteAt(origin, 0, b1);
  WriteAt(origin, odd, b2);
  BOOST_TEST(ReadAt(origin, 0, kMiB) == b1);
  BOOST_TEST(ReadAt(origin, odd, kChunk) == b2);
  BOOST_TEST(ReadAt(before->path, 0, kMiB) == a1);
  BOOST_TEST(ReadAt(before->path, odd, kChunk) == a2);
  BOOST_TEST(ReadAt(before->path, 2 * kMiB, kMiB) == std::string(kMiB, '\0'));

  auto stats = c.GetVolume("vol");
  REQUIRE_OK(stats);
  BOOST_TEST(stats->chunks_copied >= 18u);  // 16 chunks of the first MiB + 2
  BOOST_TEST(stats->diff_bytes_used >= 18 * kChunk);
  BOOST_TEST(stats->snapshots == 1u);
  BOOST_TEST(stats->snapshots_deleted_by_overflow == 0u);

  // Exactly the chunks written after "before".
  auto changed = c.ChangedChunks("vol", "before", "");
  REQUIRE_OK(changed);
  BOOST_REQUIRE(changed->size() == 2u);
  BOOST_TEST((*changed)[0].first_chunk == 0u);
  BOOST_TEST((*changed)[0].chunk_count == 16u);
  BOOST_TEST((*changed)[1].first_chunk == 80u);
  BOOST_TEST((*changed)[1].chunk_count == 2u);
  REQUIRE_OK(c.CreateSnapshot("vol", "after"));
  WriteAt(origin, 40 * kChunk, Random(4096, 5));
  auto between = c.ChangedChunks("vol", "before", "after");
  REQUIRE_OK(between);
  BOOST_TEST(between->size() == 2u);
  auto since = c.ChangedChunks("vol", "after", "");
  REQUIRE_OK(since);
  BOOST_REQUIRE(since->size() == 1u);
  BOOST_TEST((*since)[0].first_chunk == 40u);
  BOOST_TEST((*since)[0].chunk_count == 1u);
  BOOST_TEST(!c.ChangedChunks("vol", "after", "before").ok());
  EXPECT_ERROR(c.ChangedChunks("vol", "nope", ""), Code::kNotFound, "nope");

  // Snapshots are read-only; origins keep their size.
  errno = 0;
  BOOST_TEST(::open(before->path.c_str(), O_RDWR | O_CLOEXEC) == -1);
  BOOST_TEST((errno == EROFS || errno == EACCES));
  BOOST_TEST(::truncate(origin.c_str(), 4096) == -1);
  int wfd = ::open(origin.c_str(), O_WRONLY | O_CLOEXEC);
  BOOST_REQUIRE(wfd >= 0);
  BOOST_TEST(::pwrite(wfd, "x", 1, off_t(8 * kMiB)) == -1);  // past the end
  ::close(wfd);

  // An open snapshot (a mount, a loop device) is not deleted under its
  // user; once closed it is, and its name is gone.
  int fd = ::open(before->path.c_str(), O_RDONLY | O_CLOEXEC);
  BOOST_REQUIRE(fd >= 0);
  EXPECT_ERROR(c.DeleteSnapshot("vol", "before"), Code::kBadState, "is open");
  char buf[4096];
  BOOST_TEST(::pread(fd, buf, sizeof buf, 3 * kMiB) == ssize_t(sizeof buf));
  ::close(fd);
  REQUIRE_OK(c.DeleteSnapshot("vol", "before"));
  BOOST_TEST(!Exists(before->path));
}

BOOST_AUTO_TEST_CASE(revert_is_refused_while_the_origin_is_open_and_restores_it_when_closed) {
  Started s;
  if (!Start(s)) return;
  CowdClient& c = *s.client;
  auto v = MakeVolume(c, "r", 4 * kMiB);
  const std::string a = Random(2 * kMiB, 10), b = Random(2 * kMiB, 11);
  WriteAt(v.served_origin, kMiB, a);
  REQUIRE_OK(c.CreateSnapshot("r", "good"));
  WriteAt(v.served_origin, kMiB, b);

  int fd = ::open(v.served_origin.c_str(), O_RDONLY | O_CLOEXEC);
  BOOST_REQUIRE(fd >= 0);
  EXPECT_ERROR(c.Revert("r", "good"), Code::kBadState, "open");
  EXPECT_ERROR(c.DeleteVolume("r"), Code::kBadState, "open");
  ::close(fd);
  // The kernel sends RELEASE asynchronously after close().
  Status reverted;
  for (int i = 0; i < 100; ++i) {
    reverted = c.Revert("r", "good");
    if (!reverted.IsBadState()) break;
    std::this_thread::sleep_for(20ms);
  }
  REQUIRE_OK(reverted);
  BOOST_TEST(ReadAt(v.served_origin, kMiB, 2 * kMiB) == a);
  BOOST_TEST(ReadAt(v.served_origin, 0, kMiB) == std::string(kMiB, '\0'));
  auto snap = c.ListSnapshots("r");
  REQUIRE_OK(snap);
  BOOST_REQUIRE(snap->size() == 1u);
  BOOST_TEST(ReadAt((*snap)[0].path, kMiB, 2 * kMiB) == a);
  EXPECT_ERROR(c.Revert("r", "missing"), Code::kNotFound, "missing");
}

BOOST_AUTO_TEST_CASE(held_writes_wait_while_reads_and_snapshots_go_on) {
  Started s;
  if (!Start(s)) return;
  CowdClient& c = *s.client;
  auto v = MakeVolume(c, "h", 4 * kMiB);
  const std::string old_data = Random(4096, 20), new_data = Random(4096, 21);
  const std::string other_data = Random(4096, 22);
  WriteAt(v.served_origin, 0, old_data);
  WriteAt(v.served_origin, kMiB, other_data);
  int fd = ::open(v.served_origin.c_str(), O_RDWR | O_CLOEXEC);
  BOOST_REQUIRE(fd >= 0);

  auto holder = s.daemon->Client();
  REQUIRE_OK(holder);
  REQUIRE_OK((*holder)->HoldWrites("h", 10s));
  BOOST_TEST(c.GetVolume("h")->writes_held);

  std::atomic<bool> written{false};
  std::thread writer([&] {
    if (::pwrite(fd, new_data.data(), new_data.size(), 0) == ssize_t(new_data.size())) {
      written = true;
    }
  });
  std::this_thread::sleep_for(400ms);
  BOOST_TEST(!written.load());

  // Reads go on (O_DIRECT: served by the daemon, not the page cache); so
  // do snapshots (the coordinator takes them inside the hold).
  auto read = std::async(std::launch::async, [&] {
    int dfd = ::open(v.served_origin.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC);
    void* buf = nullptr;
    if (dfd < 0 || ::posix_memalign(&buf, 4096, 4096) != 0) return false;
    bool ok = ::pread(dfd, buf, 4096, off_t(kMiB)) == 4096 &&
              std::memcmp(buf, other_data.data(), 4096) == 0;
    std::free(buf);
    ::close(dfd);
    return ok;
  });
  BOOST_REQUIRE(read.wait_for(5s) == std::future_status::ready);
  BOOST_TEST(read.get());
  auto snap = c.CreateSnapshot("h", "in-hold");
  REQUIRE_OK(snap);
  // One hold at a time.
  auto other = s.daemon->Client();
  REQUIRE_OK(other);
  EXPECT_ERROR((*other)->HoldWrites("h", 1s), Code::kBadState, "already held");
  EXPECT_ERROR((*other)->ReleaseWrites("h"), Code::kBadState, "another");
  BOOST_TEST(!written.load());

  REQUIRE_OK((*holder)->ReleaseWrites("h"));
  for (int i = 0; i < 500 && !written; ++i) std::this_thread::sleep_for(10ms);
  BOOST_TEST(written.load());
  writer.join();
  ::close(fd);
  BOOST_TEST(!c.GetVolume("h")->writes_held);
  BOOST_TEST(ReadAt(v.served_origin, 0, 4096) == new_data);
  // The snapshot taken while writes were held has the data of before.
  BOOST_TEST(ReadAt(snap->path, 0, 4096) == old_data);
}

BOOST_AUTO_TEST_CASE(a_hold_ends_when_its_connection_closes_and_at_its_deadline) {
  Started s;
  if (!Start(s)) return;
  CowdClient& c = *s.client;
  auto v = MakeVolume(c, "h", 4 * kMiB);
  int fd = ::open(v.served_origin.c_str(), O_RDWR | O_CLOEXEC);
  BOOST_REQUIRE(fd >= 0);
  auto timed_write = [&](std::atomic<bool>& done) {
    return std::thread([&] {
      char block[4096] = {1};
      if (::pwrite(fd, block, sizeof block, 8192) == ssize_t(sizeof block)) done = true;
    });
  };

  {  // The holder's connection closes: writes resume.
    auto holder = s.daemon->Client();
    REQUIRE_OK(holder);
    REQUIRE_OK((*holder)->HoldWrites("h", 60s));
    std::atomic<bool> done{false};
    std::thread w = timed_write(done);
    std::this_thread::sleep_for(300ms);
    BOOST_TEST(!done.load());
    holder->reset();
    for (int i = 0; i < 500 && !done; ++i) std::this_thread::sleep_for(10ms);
    BOOST_TEST(done.load());
    w.join();
    BOOST_TEST(!c.GetVolume("h")->writes_held);
  }
  {  // The deadline passes: the daemon's timer releases the hold.
    auto holder = s.daemon->Client();
    REQUIRE_OK(holder);
    auto start = std::chrono::steady_clock::now();
    REQUIRE_OK((*holder)->HoldWrites("h", 800ms));
    std::atomic<bool> done{false};
    std::thread w = timed_write(done);
    std::this_thread::sleep_for(300ms);
    BOOST_TEST(!done.load());
    for (int i = 0; i < 1000 && !done; ++i) std::this_thread::sleep_for(10ms);
    auto waited = std::chrono::steady_clock::now() - start;
    BOOST_TEST(done.load());
    BOOST_CHECK(waited >= 700ms);
    w.join();
    BOOST_TEST(!c.GetVolume("h")->writes_held);
    // The holder's late release is not an error; the log says what happened.
    REQUIRE_OK((*holder)->ReleaseWrites("h"));
    BOOST_TEST(Contains(s.daemon->log(), "deadline"));
  }
  ::close(fd);
}

BOOST_AUTO_TEST_CASE(the_control_socket_is_private_and_checks_peer_credentials) {
  Started s;
  if (!Start(s)) return;
  Daemon& d = *s.daemon;
  struct stat st{};
  BOOST_REQUIRE(::stat(d.socket().c_str(), &st) == 0);
  BOOST_TEST(S_ISSOCK(st.st_mode));
  BOOST_TEST((st.st_mode & 07777) == 0600u);
  const std::string run_dir = fs::path(d.socket()).parent_path().string();
  BOOST_REQUIRE(::stat(run_dir.c_str(), &st) == 0);
  BOOST_TEST((st.st_mode & 07777) == 0700u);  // created by the daemon

  passwd* nobody = ::getpwnam("nobody");
  BOOST_REQUIRE(nobody != nullptr);
  const uid_t uid = nobody->pw_uid;
  const gid_t gid = nobody->pw_gid;
  // A child that becomes `nobody`, sends {"op":"info"} and exits with:
  // 10 connect refused, 20 refused by the daemon with a clear reply,
  // 30 served, 40 anything else. Only system calls after fork.
  const std::string sock = d.socket();
  auto as_nobody = [&]() -> int {
    pid_t pid = ::fork();
    if (pid == 0) {
      if (::setgroups(0, nullptr) != 0 || ::setgid(gid) != 0 || ::setuid(uid) != 0) ::_exit(41);
      int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
      sockaddr_un addr{};
      addr.sun_family = AF_UNIX;
      std::memcpy(addr.sun_path, sock.c_str(), sock.size() + 1);
      if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) ::_exit(10);
      const char req[] = "{\"op\":\"info\"}\n";
      (void)!::send(fd, req, sizeof req - 1, MSG_NOSIGNAL);
      char buf[2048] = {};
      size_t got = 0;
      ssize_t n;
      while (got < sizeof buf - 1 && (n = ::recv(fd, buf + got, sizeof buf - 1 - got, 0)) > 0) {
        got += size_t(n);
        if (std::memchr(buf, '\n', got)) break;
      }
      if (std::strstr(buf, "\"ok\":false") && std::strstr(buf, "permission denied")) ::_exit(20);
      if (std::strstr(buf, "\"ok\":true")) ::_exit(30);
      ::_exit(40);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  };
  // The socket's mode alone keeps others out.
  BOOST_REQUIRE(::chmod(s.dir.str().c_str(), 0711) == 0);
  BOOST_REQUIRE(::chmod(run_dir.c_str(), 0711) == 0);
  BOOST_TEST(as_nobody() == 10);
  // With the mode opened up, the daemon's SO_PEERCRED check still does.
  BOOST_REQUIRE(::chmod(s.dir.str().c_str(), 0711) == 0);
  BOOST_REQUIRE(::chmod(run_dir.c_str(), 0711) == 0);
  BOOST_REQUIRE(::chmod(d.socket().c_str(), 0666) == 0);
  BOOST_TEST(as_nobody() == 20);
  ::chmod(d.socket().c_str(), 0600);
  ::chmod(run_dir.c_str(), 0700);
  ::chmod(s.dir.str().c_str(), 0700);
  BOOST_TEST(Contains(d.log(), "refused"));
  REQUIRE_OK(s.client->Info());  // root is served
}

BOOST_AUTO_TEST_CASE(bad_requests_get_clear_errors_and_leave_nothing_behind) {
  Started s;
  if (!Start(s)) return;
  Daemon& d = *s.daemon;
  CowdClient& c = *s.client;
  struct Case {
    const char* what;
    CreateVolumeRequest request;
    Code code;
    const char* needle;
  };
  const std::string file = s.dir.str() + "/adopt.img";
  {
    int fd = ::open(file.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
    BOOST_REQUIRE(fd >= 0 && ::ftruncate(fd, off_t(8 * kMiB)) == 0);
    ::close(fd);
  }
  const std::vector<Case> cases = {
      {"chunk size not a power of two", {"a", 4 * kMiB, "", 3000, 0}, Code::kInvalidArgument, "chunk"},
      {"chunk size too large", {"a", 4 * kMiB, "", 2 * 1024 * 1024, 0}, Code::kInvalidArgument, "chunk"},
      {"chunk size too small", {"a", 4 * kMiB, "", 2048, 0}, Code::kInvalidArgument, "chunk"},
      {"size not a multiple of 4 KiB", {"a", 10000, "", 0, 0}, Code::kInvalidArgument, "4096"},
      {"neither size nor origin", {"a", 0, "", 0, 0}, Code::kInvalidArgument, "exactly one"},
      {"both size and origin", {"a", 4 * kMiB, file, 0, 0}, Code::kInvalidArgument, "exactly one"},
      {"name with a slash", {"a/b", 4 * kMiB, "", 0, 0}, Code::kInvalidArgument, "a/b"},
      {"name ..", {"..", 4 * kMiB, "", 0, 0}, Code::kInvalidArgument, "name"},
      {"empty name", {"", 4 * kMiB, "", 0, 0}, Code::kInvalidArgument, "name"},
      {"origin that does not exist", {"a", 0, s.dir.str() + "/none", 0, 0}, Code::kNotFound, "none"},
      {"origin inside the FUSE mount", {"a", 0, d.mount(), 0, 0}, Code::kInvalidArgument, "FUSE"},
  };
  for (const auto& k : cases) {
    BOOST_TEST_CONTEXT(k.what) { EXPECT_ERROR(c.CreateVolume(k.request), k.code, k.needle); }
  }
  BOOST_TEST(fs::is_empty(d.state_dir() + "/volumes"));

  // An origin serves one volume.
  CreateVolumeRequest adopt{"first", 0, file, 0, 0};
  auto first = c.CreateVolume(adopt);
  REQUIRE_OK(first);
  BOOST_TEST(first->size_bytes == 8 * kMiB);
  BOOST_TEST(first->origin_path == file);
  adopt.name = "second";
  EXPECT_ERROR(c.CreateVolume(adopt), Code::kBadState, "already the origin of volume \"first\"");
  adopt.origin = d.state_dir() + "/volumes/first.diff";
  EXPECT_ERROR(c.CreateVolume(adopt), Code::kInvalidArgument, "state directory");
  adopt.name = "first";
  adopt.origin.clear();
  adopt.size_bytes = 4 * kMiB;
  EXPECT_ERROR(c.CreateVolume(adopt), Code::kAlreadyExists, "first");

  // Snapshots and volumes that do not exist, ids that cannot exist.
  EXPECT_ERROR(c.CreateSnapshot("none", "x"), Code::kNotFound, "none");
  EXPECT_ERROR(c.CreateSnapshot("first", "bad/id"), Code::kInvalidArgument, "bad/id");
  EXPECT_ERROR(c.DeleteSnapshot("first", "ghost"), Code::kNotFound, "ghost");
  EXPECT_ERROR(c.Revert("first", "ghost"), Code::kNotFound, "ghost");
  EXPECT_ERROR(c.ChangedChunks("first", "ghost", ""), Code::kNotFound, "ghost");
  EXPECT_ERROR(c.HoldWrites("none", 1s), Code::kNotFound, "none");
  EXPECT_ERROR(c.HoldWrites("first", 0ms), Code::kInvalidArgument, "max_hold");

  // Malformed lines: an error reply each, and the daemon serves on.
  struct Raw {
    std::string line, needle;
  };
  const std::vector<Raw> raws = {
      {"this is not json", "not valid JSON"},
      {"[1,2,3]", "JSON object"},
      {"{\"op\":7}", "must be a string"},
      {"{}", "missing field"},
      {"{\"op\":\"volume.explode\"}", "unknown op"},
      {"{\"op\":\"volume.get\",\"name\":5}", "must be a string"},
      {"{\"op\":\"volume.get\",\"nmae\":\"x\"}", "takes no field"},
      {"{\"op\":\"volume.create\",\"name\":\"x\",\"size_bytes\":-5}", "non-negative integer"},
      {"{\"op\":\"writes.hold\",\"volume\":\"first\",\"max_hold_ms\":99999999}", "max_hold_ms"},
      {std::string("{\"op\":\"info\",\"x\":\"") + std::string(1000, '\xff') + "\"}", "\"ok\":false"},
  };
  for (const auto& r : raws) {
    std::string reply = RawCall(d.socket(), r.line);
    BOOST_TEST_CONTEXT(r.line.substr(0, 60)) {
      BOOST_TEST(Contains(reply, "\"ok\":false"), reply);
      BOOST_TEST(Contains(reply, "\"code\":\"invalid-argument\""), reply);
      BOOST_TEST(Contains(reply, r.needle), reply);
    }
  }
  REQUIRE_OK(c.Info());
  // Only the one volume that was created is on disk.
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(d.state_dir() + "/volumes")) {
    files.push_back(e.path().filename().string());
  }
  BOOST_TEST(files == std::vector<std::string>{"first.diff"}, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_diff_area_larger_than_the_disk_allows_fails_clearly_and_leaves_nothing) {
  if (!Available(MissingPrerequisite(false))) return;
  TempDir dir;
  // The state dir on a 48 MiB tmpfs: the default 64 MiB diff area cannot fit.
  auto small = Mount::Make("tmpfs", dir.str() + "/state", "size=48m,mode=0700", "tmpfs");
  BOOST_REQUIRE_MESSAGE(small.ok(), small.status().ToString());
  Daemon d(dir.str());
  REQUIRE_OK(d.Start());
  auto c = d.Client();
  REQUIRE_OK(c);
  CreateVolumeRequest r{"big", 8 * kMiB, "", 0, 0};
  EXPECT_ERROR((*c)->CreateVolume(r), Code::kInsufficientStorage, "diff_max_bytes");
  BOOST_TEST(fs::is_empty(d.state_dir() + "/volumes"));
  r.diff_max_bytes = 16 * kMiB;  // fits: the daemon is fine and the space came back
  auto ok = (*c)->CreateVolume(r);
  REQUIRE_OK(ok);
  BOOST_TEST(ok->diff_bytes_max <= 16 * kMiB);
  BOOST_TEST(d.Stop() == 0);
}

BOOST_AUTO_TEST_CASE(an_adopted_block_device_serves_as_origin) {
  Started s;
  if (!Start(s, true)) return;
  const std::string backing = s.dir.str() + "/disk.img";
  {
    int fd = ::open(backing.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
    BOOST_REQUIRE(fd >= 0 && ::ftruncate(fd, off_t(16 * kMiB)) == 0);
    ::close(fd);
  }
  auto loop = LoopDevice::Attach(backing, false);
  REQUIRE_OK(loop);
  CreateVolumeRequest r{"blk", 0, (*loop)->device(), 0, 0};
  auto v = s.client->CreateVolume(r);
  REQUIRE_OK(v);
  BOOST_TEST(v->size_bytes == 16 * kMiB);
  const std::string data = Random(256 * 1024, 30);
  WriteAt(v->served_origin, 3 * kMiB, data);
  BOOST_TEST(ReadAt((*loop)->device(), 3 * kMiB, data.size()) == data);
  REQUIRE_OK(s.client->DeleteVolume("blk"));
  BOOST_TEST(Exists(backing));  // an adopted origin is the caller's
  BOOST_TEST(ReadAt((*loop)->device(), 3 * kMiB, data.size()) == data);
}

BOOST_AUTO_TEST_CASE(overflow_deletes_the_oldest_snapshot_and_origin_writes_go_on) {
  Started s;
  if (!Start(s)) return;
  CowdClient& c = *s.client;
  auto v = MakeVolume(c, "small", 8 * kMiB, 2 * kMiB);
  auto old_snapshot = c.CreateSnapshot("small", "old");
  REQUIRE_OK(old_snapshot);
  REQUIRE_OK(c.CreateSnapshot("small", "new"));
  // Overflow deletes even an open snapshot: its reads then fail with EIO,
  // never with data of another instant.
  int fd = ::open(old_snapshot->path.c_str(), O_RDONLY | O_CLOEXEC);
  BOOST_REQUIRE(fd >= 0);
  const std::string data = Random(8 * kMiB, 40);
  WriteAt(v.served_origin, 0, data);  // every chunk copied: far more than 2 MiB
  char buf[4096];
  errno = 0;
  BOOST_TEST(::pread(fd, buf, sizeof buf, 0) == -1);
  BOOST_TEST(errno == EIO);
  ::close(fd);
  BOOST_TEST(ReadAt(v.served_origin, 0, data.size()) == data);
  auto st = c.GetVolume("small");
  REQUIRE_OK(st);
  BOOST_TEST(st->snapshots_deleted_by_overflow >= 1u);
  BOOST_REQUIRE(!st->overflow_events.empty());
  BOOST_TEST(st->overflow_events[0].snapshot_id == "old");
  BOOST_TEST(!st->overflow_events[0].reason.empty());
  BOOST_TEST(st->diff_bytes_used <= st->diff_bytes_max);
  auto snaps = c.ListSnapshots("small");
  REQUIRE_OK(snaps);
  for (const auto& sn : *snaps) BOOST_TEST(sn.id != "old");
}

BOOST_AUTO_TEST_CASE(a_restart_brings_back_volumes_and_a_corrupt_diff_area_is_reported_not_deleted) {
  Started s;
  if (!Start(s)) return;
  Daemon& d = *s.daemon;
  auto v1 = MakeVolume(*s.client, "one", 4 * kMiB);
  auto v2 = MakeVolume(*s.client, "two", 4 * kMiB);
  const std::string a = Random(kMiB, 50), b = Random(kMiB, 51);
  WriteAt(v1.served_origin, 0, a);
  REQUIRE_OK(s.client->CreateSnapshot("one", "s1"));
  WriteAt(v1.served_origin, 0, b);
  REQUIRE_OK(s.client->CreateSnapshot("two", "t1"));
  s.client.reset();

  int status = d.Stop();
  BOOST_TEST((WIFEXITED(status) && WEXITSTATUS(status) == 0), "exit status " << status);
  BOOST_TEST(!FuseMounted(d.mount()));
  BOOST_TEST(!Exists(d.socket()));

  REQUIRE_OK(d.Start());
  BOOST_TEST(Contains(d.ready_line(), "\"volumes\":2"), d.ready_line());
  {
    auto c = d.Client();
    REQUIRE_OK(c);
    auto snaps = (*c)->ListSnapshots("one");
    REQUIRE_OK(snaps);
    BOOST_REQUIRE(snaps->size() == 1u);
    BOOST_TEST((*snaps)[0].id == "s1");
    BOOST_TEST((*snaps)[0].valid);
    BOOST_TEST(ReadAt((*snaps)[0].path, 0, kMiB) == a);
    BOOST_TEST(ReadAt(v1.served_origin, 0, kMiB) == b);
    BOOST_TEST((*c)->ListSnapshots("two")->size() == 1u);
  }
  BOOST_TEST(d.Stop() == 0);

  // Both superblock copies of "two" destroyed.
  {
    int fd = ::open(v2.diff_path.c_str(), O_WRONLY | O_CLOEXEC);
    BOOST_REQUIRE(fd >= 0);
    std::string junk(128 * 1024, '\xab');
    BOOST_REQUIRE(::pwrite(fd, junk.data(), junk.size(), 0) == ssize_t(junk.size()));
    ::close(fd);
  }
  REQUIRE_OK(d.Start());
  BOOST_TEST(Contains(d.ready_line(), "\"broken_volumes\":1"), d.ready_line());
  auto c = d.Client();
  REQUIRE_OK(c);
  EXPECT_ERROR((*c)->GetVolume("two"), Code::kBadState, v2.diff_path);
  EXPECT_ERROR((*c)->CreateSnapshot("two", "x"), Code::kBadState, "broken");
  auto list = (*c)->ListVolumes();
  REQUIRE_OK(list);
  BOOST_REQUIRE(list->size() == 1u);
  BOOST_TEST((*list)[0].name == "one");
  std::string raw = RawCall(d.socket(), "{\"op\":\"volume.list\"}");
  BOOST_TEST(Contains(raw, "\"name\":\"two\""), raw);
  BOOST_TEST(Contains(raw, "\"state\":\"broken\""), raw);
  BOOST_TEST(Contains(raw, "\"error\":{"), raw);
  BOOST_TEST(Contains(d.log(), "\"two\" is broken"));
  // Nothing deleted; the healthy volume is served.
  BOOST_TEST(Exists(v2.diff_path));
  BOOST_TEST(Exists(v2.origin_path));
  BOOST_TEST(!Exists(d.mount() + "/two"));
  BOOST_TEST(ReadAt(v1.served_origin, 0, kMiB) == b);
  EXPECT_ERROR((*c)->CreateVolume(CreateVolumeRequest{"two", 4 * kMiB, "", 0, 0}),
               Code::kAlreadyExists, "two");
}

BOOST_AUTO_TEST_CASE(wrong_options_a_busy_socket_and_a_stale_one_are_handled) {
  if (!Available(MissingPrerequisite(false))) return;
  TempDir dir;
  auto run = [&](std::vector<std::string> args) {
    args.insert(args.begin(), SNAPSET_COWD);
    return RunCommand(args);
  };
  auto bogus = run({"--bogus"});
  BOOST_TEST(bogus.exit_code == 2);
  BOOST_TEST(Contains(bogus.output, "bogus"), bogus.output);

  const std::string full = dir.str() + "/full";
  dir.Write("full/file", "x");
  auto not_empty = run({"--state-dir", dir.str() + "/st", "--mount", full, "--socket",
                        dir.str() + "/s.sock"});
  BOOST_TEST(not_empty.exit_code == 2);
  BOOST_TEST(Contains(not_empty.output, "not an empty directory"), not_empty.output);
  auto a_file = run({"--state-dir", dir.str() + "/st", "--mount", full + "/file", "--socket",
                     dir.str() + "/s.sock"});
  BOOST_TEST(a_file.exit_code == 2);
  BOOST_TEST(Contains(a_file.output, "not a directory"), a_file.output);
  BOOST_TEST(!Exists(dir.str() + "/s.sock"));

  Daemon d(dir.str());
  REQUIRE_OK(d.Start());
  auto same_socket = run({"--state-dir", dir.str() + "/st2", "--mount", dir.str() + "/m2",
                          "--socket", d.socket()});
  BOOST_TEST(same_socket.exit_code == 1);
  BOOST_TEST(Contains(same_socket.output, "another snapset-cowd is serving"), same_socket.output);
  auto same_state = run({"--state-dir", d.state_dir(), "--mount", dir.str() + "/m3", "--socket",
                         dir.str() + "/other.sock"});
  BOOST_TEST(same_state.exit_code == 1);
  BOOST_TEST(Contains(same_state.output, "in use by another snapset-cowd"), same_state.output);
  BOOST_TEST(!FuseMounted(dir.str() + "/m2"));
  BOOST_TEST(!FuseMounted(dir.str() + "/m3"));
  REQUIRE_OK((*d.Client())->Info());  // the first one is undisturbed

  // kill -9 leaves its socket file and a dead FUSE mount: the next start
  // replaces the one and unmounts the other.
  d.KillLeavingMount();
  BOOST_TEST(Exists(d.socket()));
  BOOST_TEST(FuseMounted(d.mount()));
  REQUIRE_OK(d.Start());
  BOOST_TEST(Contains(d.log(), "stale socket"));
  BOOST_TEST(Contains(d.log(), "dead FUSE mount"));
  REQUIRE_OK((*d.Client())->Info());
  BOOST_TEST(d.Stop() == 0);
}

BOOST_AUTO_TEST_CASE(ext4_on_a_loop_device_over_the_origin_gives_consistent_snapshots) {
  Started s;
  if (!Start(s, true)) return;
  CowdClient& c = *s.client;
  auto v = MakeVolume(c, "fs", 128 * kMiB);
  auto loop = LoopDevice::Attach(v.served_origin, false);
  REQUIRE_OK(loop);
  auto mkfs = RunCommand({"mkfs.ext4", "-q", (*loop)->device()});
  BOOST_REQUIRE_MESSAGE(mkfs.exit_code == 0, mkfs.output);
  auto mounted = Mount::Make((*loop)->device(), s.dir.str() + "/fs", "");
  REQUIRE_OK(mounted);
  const std::string root = (*mounted)->dir();
  const std::string big = Random(4 * kMiB, 60);
  {
    std::ofstream(root + "/a.txt") << "first";
    std::ofstream(root + "/big.bin", std::ios::binary) << big;
  }
  BOOST_REQUIRE(RunCommand({"sync"}).exit_code == 0);

  // The commit window as the coordinator runs it: freeze the file system
  // (its flush goes through the loop device into the daemon), hold the
  // volume's writes, snapshot, release, thaw.
  {
    Unfreeze guard(root);
    auto freeze = RunCommand({"fsfreeze", "--freeze", root});
    BOOST_REQUIRE_MESSAGE(freeze.exit_code == 0, freeze.output);
    REQUIRE_OK(c.HoldWrites("fs", 10s));
    auto snap = c.CreateSnapshot("fs", "snap1");
    REQUIRE_OK(c.ReleaseWrites("fs"));
    guard.Now();
    REQUIRE_OK(snap);
  }
  {
    std::ofstream(root + "/later.txt") << "later";
    std::ofstream(root + "/a.txt") << "second";
  }
  BOOST_REQUIRE(RunCommand({"sync"}).exit_code == 0);

  // A loop device holds the origin open.
  EXPECT_ERROR(c.Revert("fs", "snap1"), Code::kBadState, "loop device");
  EXPECT_ERROR(c.DeleteVolume("fs"), Code::kBadState, "open");

  const std::string snap_path = s.daemon->mount() + "/fs/snapshots/snap1";
  {
    auto ro = LoopDevice::Attach(snap_path, true);
    REQUIRE_OK(ro);
    auto fsck = RunCommand({"e2fsck", "-fn", (*ro)->device()});
    BOOST_TEST(fsck.exit_code == 0, fsck.output);
  }
  auto snap_mount = Mount::Make(snap_path, s.dir.str() + "/snap", "ro,loop,noload");
  REQUIRE_OK(snap_mount);
  const std::string sroot = (*snap_mount)->dir();
  BOOST_TEST(ReadFile(sroot + "/a.txt") == "first");
  BOOST_TEST(ReadFile(sroot + "/big.bin") == big);
  BOOST_TEST(!Exists(sroot + "/later.txt"));
  BOOST_TEST(ReadFile(root + "/a.txt") == "second");
  BOOST_TEST(::access((sroot + "/new.txt").c_str(), F_OK) != 0);
  BOOST_TEST(!std::ofstream(sroot + "/new.txt").good());  // read-only
}
