// SPDX-License-Identifier: Apache-2.0
//
// The command fixture, for vendors: a JSON file names the provider (a
// providers.d registration) and the commands that make a test volume, write
// a record to it, read it back (from the volume and from a snapshot's
// exposure) and destroy it. docs/qa-guide.md and
// conformance/examples/command-fixture/ show one.
//
//   {
//     "registration":  "acme.json",
//     "library":       "bundled:loop-clone",        optional
//     "initiator_iqn": "iqn.2026-01.com.acme:qa",   optional
//     "timeout_s":     60,                          optional, per command
//     "create":        ["./make-volume.sh"],
//     "write":         ["./write.sh"],              optional (data cases)
//     "read":          ["./read.sh"],               optional (data cases)
//     "read_exposed":  ["./read-exposed.sh"],       optional (data cases)
//     "write_exposed": ["./write-exposed.sh"],      optional
//     "destroy":       ["./destroy-volume.sh"],
//     "residue":       ["./residue.sh"],            optional
//     "secrets":       ["hunter2"]                  optional
//   }
//
// Paths (the registration, "library", a command's program when it has a
// '/') are relative to the fixture file's directory; a bare program name is
// looked up on PATH. Commands run without a shell, in the fixture file's
// directory, stdin from /dev/null, in their own process group (killed whole
// at the timeout), with these in the environment:
//   SNAPSET_CONFORMANCE_WORK_DIR     a private directory for the fixture's
//                                    state (removed after the run)
//   SNAPSET_CONFORMANCE_FIXTURE_DIR  the fixture file's directory
//   SNAPSET_CONFORMANCE_INDEX        the volume's index (0, 1, ...)
//   SNAPSET_CONFORMANCE_VOLUME       the volume's name, as create printed it
//   SNAPSET_CONFORMANCE_RECORD       write: the record (one line of text)
//   SNAPSET_CONFORMANCE_EXPOSED      read_exposed, write_exposed: what the
//                                    provider's expose_snapshot returned
// create prints the volume's name on its last line of stdout; read and
// read_exposed print the record (nothing: no record there); write_exposed
// exits 0 when it could change the exposure (a defect); residue prints one
// line per object on the storage's side.
//
// "${SNAPSET_CONFORMANCE_WORK_DIR}" in the registration file is replaced
// by that directory before the file is parsed, for a provider whose config
// names storage the fixture makes (the example's snapshot directory).
// "library" replaces the registration's: a path, or "bundled:loop-clone",
// "bundled:software-cow", "bundled:iscsi" for a provider built with the
// suite.
//
// Unknown keys are refused: a misspelt "read_exposd" must not silently turn
// the data cases into skips.
#include <fcntl.h>
#include <poll.h>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <thread>

#include "conformance/fixture.hpp"
#include "conformance/paths.hpp"
#include "core/provider_registration.hpp"

extern char** environ;

namespace snapset::conformance {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr char kWorkDirPlaceholder[] = "${SNAPSET_CONFORMANCE_WORK_DIR}";
constexpr int kDefaultTimeoutSeconds = 60;

const char* const kCommandKeys[] = {"create",        "write",   "read",   "read_exposed",
                                    "write_exposed", "destroy", "residue"};
const char* const kOtherKeys[] = {"registration", "library", "initiator_iqn", "timeout_s",
                                  "secrets"};

std::string KnownKeys() {
  std::string out;
  for (const char* k : kOtherKeys) out += (out.empty() ? "" : ", ") + std::string(k);
  for (const char* k : kCommandKeys) out += ", " + std::string(k);
  return out;
}

Result<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::Config("cannot read " + path + ": " + std::strerror(errno));
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string CommandLine(const std::vector<std::string>& argv) {
  std::string line;
  for (const auto& a : argv) line += (line.empty() ? "" : " ") + a;
  return line;
}

// Without trailing newlines, carriage returns and spaces.
std::string TrimEnd(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string LastLine(const std::string& text) {
  std::string t = TrimEnd(text);
  const size_t nl = t.rfind('\n');
  return nl == std::string::npos ? t : t.substr(nl + 1);
}

struct Outcome {
  int exit_code = -1;  // -1: killed by a signal or at the timeout
  bool timed_out = false;
  std::string out, err;
};

// Reads both pipes until the child has exited and they are drained, or
// the deadline passes; closes each pipe it finished (setting it to -1). A
// child that leaves a background process holding the pipes does not hang
// the suite: once the child is reaped, what is in the pipes is read
// without waiting for more. True once the child is reaped (*status).
bool Collect(pid_t pid, int fds[2], Clock::time_point deadline, Outcome* o, int* status) {
  bool reaped = false;
  std::string* sinks[2] = {&o->out, &o->err};
  for (;;) {
    if (!reaped) {
      const pid_t r = ::waitpid(pid, status, WNOHANG);
      reaped = r == pid || (r < 0 && errno == ECHILD);
    }
    pollfd p[2];
    int owner[2];
    nfds_t n = 0;
    for (int i = 0; i < 2; ++i) {
      if (fds[i] < 0) continue;
      owner[n] = i;
      p[n++] = {fds[i], POLLIN, 0};
    }
    if (n == 0 && reaped) return true;
    if (Clock::now() >= deadline) {
      o->timed_out = true;
      return reaped;
    }
    if (n == 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      continue;
    }
    const int ready = ::poll(p, n, reaped ? 0 : 50);
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) {
      if (reaped) return true;  // drained: only a background process holds them
      continue;
    }
    for (nfds_t j = 0; j < n; ++j) {
      if (!(p[j].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      const int i = owner[j];
      char buf[4096];
      const ssize_t got = ::read(fds[i], buf, sizeof buf);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) {
        ::close(fds[i]);
        fds[i] = -1;
        continue;
      }
      sinks[i]->append(buf, size_t(got));
    }
  }
}

// Runs argv[0] (an absolute path) in `cwd` with `env`, bounded by `timeout`.
// Everything the child needs is built before fork: between fork and exec
// only async-signal-safe calls (the case processes may have threads).
Outcome Spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env,
              const std::string& cwd, std::chrono::seconds timeout) {
  Outcome o;
  std::vector<char*> args, envp;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0) {
    o.err = "pipe: " + std::string(std::strerror(errno));
    return o;
  }
  if (::pipe2(err, O_CLOEXEC) != 0) {
    o.err = "pipe: " + std::string(std::strerror(errno));
    ::close(out[0]), ::close(out[1]);
    return o;
  }
  const int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::setpgid(0, 0);
    if (null >= 0) ::dup2(null, STDIN_FILENO);
    ::dup2(out[1], STDOUT_FILENO);
    ::dup2(err[1], STDERR_FILENO);
    if (::chdir(cwd.c_str()) != 0) ::_exit(126);
    ::execve(args[0], args.data(), envp.data());
    static const char kMessage[] = "cannot execute the command\n";
    (void)!::write(STDERR_FILENO, kMessage, sizeof kMessage - 1);
    ::_exit(127);
  }
  ::close(out[1]), ::close(err[1]);
  if (null >= 0) ::close(null);
  if (pid < 0) {
    o.err = "fork: " + std::string(std::strerror(errno));
    ::close(out[0]), ::close(err[0]);
    return o;
  }
  ::setpgid(pid, pid);  // also from here, so the group exists before a kill
  int status = 0;
  int fds[2] = {out[0], err[0]};
  const auto deadline = Clock::now() + timeout;
  bool reaped = Collect(pid, fds, deadline, &o, &status);
  for (int fd : fds)
    if (fd >= 0) ::close(fd);
  while (!reaped && !o.timed_out) {
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    reaped = r == pid || (r < 0 && errno == ECHILD);
    if (!reaped && Clock::now() >= deadline) o.timed_out = true;
    if (!reaped) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (o.timed_out) {
    ::kill(-pid, SIGKILL);
    if (!reaped) {
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
    }
    return o;
  }
  o.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (WIFSIGNALED(status)) o.err += "\n(killed by signal " + std::to_string(WTERMSIG(status)) + ")";
  return o;
}

struct Spec {
  std::string file, dir;  // the fixture file and its directory
  ProviderRegistration registration;
  std::string initiator_iqn;
  std::chrono::seconds timeout{kDefaultTimeoutSeconds};
  std::map<std::string, std::vector<std::string>> commands;  // by key; programs resolved
  std::vector<std::string> secrets;
};

Status Bad(const std::string& file, const std::string& message) {
  return Status::InvalidArgument("command fixture " + file + ": " + message);
}

// `program` as execve takes it: absolute, against `dir` when it has a '/',
// else found on PATH.
Result<std::string> ResolveProgram(const std::string& file, const std::string& dir,
                                   const std::string& key, const std::string& program) {
  if (program.find('/') != std::string::npos) {
    const fs::path p =
        fs::path(program).is_absolute() ? fs::path(program) : fs::path(dir) / program;
    const std::string path = p.lexically_normal().string();
    if (::access(path.c_str(), X_OK) != 0)
      return Bad(file, "\"" + key + "\" runs " + path + ", which is not an executable file (" +
                           std::strerror(errno) + ")");
    return path;
  }
  const char* env = std::getenv("PATH");
  std::stringstream dirs(env ? env : "/usr/sbin:/usr/bin:/sbin:/bin");
  std::string d;
  while (std::getline(dirs, d, ':')) {
    const std::string path = (d.empty() ? std::string(".") : d) + "/" + program;
    if (::access(path.c_str(), X_OK) == 0) return path;
  }
  return Bad(file, "\"" + key + "\" runs " + program + ", which is not on PATH");
}

Result<std::vector<std::string>> StringArray(const std::string& file, const std::string& key,
                                             const rapidjson::Value& v, bool allow_empty) {
  if (!v.IsArray() || (!allow_empty && v.Empty()))
    return Bad(file, "\"" + key + "\" must be " +
                         (allow_empty ? "an array of strings" : "a non-empty array of strings") +
                         " (a command is an argv array, e.g. [\"./" + key + ".sh\"])");
  std::vector<std::string> out;
  for (const auto& e : v.GetArray()) {
    if (!e.IsString()) return Bad(file, "\"" + key + "\" must hold strings only");
    out.emplace_back(e.GetString(), e.GetStringLength());
  }
  return out;
}

Result<std::string> LibraryOverride(const std::string& file, const std::string& dir,
                                    const std::string& value) {
  static const std::map<std::string, Bundled> kBundled = {
      {"bundled:loop-clone", Bundled::kLoopCloneProvider},
      {"bundled:software-cow", Bundled::kCowProvider},
      {"bundled:iscsi", Bundled::kIscsiProvider}};
  if (auto it = kBundled.find(value); it != kBundled.end()) {
    auto path = BundledPath(it->second);
    if (!path.ok()) return path.status().WithContext("command fixture " + file + ": " + value);
    return *path;
  }
  if (value.starts_with("bundled:"))
    return Bad(file, "\"library\" is \"" + value +
                         "\"; the bundled ones are bundled:loop-clone, bundled:software-cow "
                         "and bundled:iscsi");
  const fs::path p = fs::path(value).is_absolute() ? fs::path(value) : fs::path(dir) / value;
  return p.lexically_normal().string();
}

Result<Spec> ParseSpec(const std::string& file, const std::string& work_dir) {
  Spec spec;
  std::error_code ec;
  const fs::path absolute = fs::absolute(file, ec);
  spec.file = absolute.lexically_normal().string();
  spec.dir = absolute.parent_path().lexically_normal().string();
  auto text = ReadWholeFile(spec.file);
  if (!text.ok()) return Bad(file, text.status().message());
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseCommentsFlag | rapidjson::kParseTrailingCommasFlag>(text->data(),
                                                                                 text->size());
  if (doc.HasParseError()) {
    const size_t at = std::min(doc.GetErrorOffset(), text->size());
    const size_t line = size_t(std::count(text->begin(), text->begin() + long(at), '\n')) + 1;
    const size_t line_start = at == 0 ? 0 : text->find_last_of('\n', at - 1) + 1;  // npos+1 = 0
    const size_t column = at - line_start + 1;
    return Bad(spec.file, "malformed JSON at line " + std::to_string(line) + ", column " +
                              std::to_string(column) + ": " +
                              rapidjson::GetParseError_En(doc.GetParseError()));
  }
  if (!doc.IsObject()) return Bad(spec.file, "must be a JSON object");

  for (auto m = doc.MemberBegin(); m != doc.MemberEnd(); ++m) {
    const std::string key(m->name.GetString(), m->name.GetStringLength());
    const bool known =
        std::find(std::begin(kCommandKeys), std::end(kCommandKeys), key) !=
            std::end(kCommandKeys) ||
        std::find(std::begin(kOtherKeys), std::end(kOtherKeys), key) != std::end(kOtherKeys);
    if (!known) return Bad(spec.file, "unknown key \"" + key + "\" (known: " + KnownKeys() + ")");
  }

  for (const char* key : kCommandKeys) {
    if (!doc.HasMember(key)) continue;
    auto argv = StringArray(spec.file, key, doc[key], false);
    if (!argv.ok()) return argv.status();
    auto program = ResolveProgram(spec.file, spec.dir, key, (*argv)[0]);
    if (!program.ok()) return program.status();
    (*argv)[0] = *program;
    spec.commands[key] = std::move(*argv);
  }
  for (const char* key : {"create", "destroy"}) {
    if (!spec.commands.count(key))
      return Bad(spec.file, std::string("\"") + key + "\" is missing: the suite must make and " +
                                "destroy its own volumes");
  }
  const bool some_data = spec.commands.count("write") || spec.commands.count("read") ||
                         spec.commands.count("read_exposed");
  if (some_data && !(spec.commands.count("write") && spec.commands.count("read")))
    return Bad(spec.file, "\"write\" and \"read\" come together (read_exposed needs both)");

  if (doc.HasMember("secrets")) {
    auto secrets = StringArray(spec.file, "secrets", doc["secrets"], true);
    if (!secrets.ok()) return secrets.status();
    spec.secrets = std::move(*secrets);
  }
  if (doc.HasMember("timeout_s")) {
    const auto& t = doc["timeout_s"];
    if (!t.IsInt() || t.GetInt() <= 0 || t.GetInt() > 3600)
      return Bad(spec.file, "\"timeout_s\" must be a whole number of seconds from 1 to 3600");
    spec.timeout = std::chrono::seconds(t.GetInt());
  }
  if (doc.HasMember("initiator_iqn")) {
    if (!doc["initiator_iqn"].IsString())
      return Bad(spec.file, "\"initiator_iqn\" must be a string");
    spec.initiator_iqn = doc["initiator_iqn"].GetString();
  }

  if (!doc.HasMember("registration") || !doc["registration"].IsString())
    return Bad(spec.file,
               "\"registration\" must name the provider's registration file (the same JSON as "
               "in providers.d)");
  const std::string reg_value = doc["registration"].GetString();
  const fs::path reg_path =
      (fs::path(reg_value).is_absolute() ? fs::path(reg_value) : fs::path(spec.dir) / reg_value)
          .lexically_normal();
  auto reg_text = ReadWholeFile(reg_path.string());
  if (!reg_text.ok()) return Bad(spec.file, "\"registration\": " + reg_text.status().message());
  for (size_t at; (at = reg_text->find(kWorkDirPlaceholder)) != std::string::npos;)
    reg_text->replace(at, sizeof kWorkDirPlaceholder - 1, work_dir);
  auto reg = ParseRegistration(reg_path.string(), *reg_text);
  if (!reg.ok()) return reg.status();
  spec.registration = std::move(*reg);
  if (doc.HasMember("library")) {
    if (!doc["library"].IsString())
      return Bad(spec.file, "\"library\" must be a string (a path or bundled:NAME)");
    auto library = LibraryOverride(spec.file, spec.dir, doc["library"].GetString());
    if (!library.ok()) return library.status();
    spec.registration.library = *library;
  }
  return spec;
}

class CommandFixture : public Fixture {
 public:
  CommandFixture(Spec spec, std::string work_dir)
      : spec_(std::move(spec)), work_dir_(std::move(work_dir)) {}
  ~CommandFixture() override { Stop(); }

  std::string Describe() const override {
    return std::to_string(count_) + " volumes made by the commands of " + spec_.file;
  }

  Result<FixtureSetup> Start(int count) override {
    owner_ = ::getpid();
    count_ = count;
    std::error_code ec;
    fs::create_directories(work_dir_, ec);
    if (ec) return Status::Unavailable("cannot create " + work_dir_ + ": " + ec.message());
    for (int i = 0; i < count; ++i) {
      auto out = Run("create", i, {});
      if (!out.ok()) return out.status();
      const std::string name = LastLine(*out);
      if (name.empty())
        return Status::Unavailable(
            "command fixture: \"create\" (" + CommandLine(spec_.commands.at("create")) +
            ") for volume " + std::to_string(i) + " exited 0 but printed no volume name on stdout");
      if (std::find(volumes_.begin(), volumes_.end(), name) != volumes_.end())
        return Status::Unavailable("command fixture: \"create\" printed " + name +
                                   " twice; each volume needs a name of its own");
      volumes_.push_back(name);
    }
    FixtureSetup setup;
    setup.provider_library = spec_.registration.library;
    setup.provider_config = spec_.registration.config_json;
    setup.provider_name = spec_.registration.name;
    setup.initiator_iqn = spec_.initiator_iqn;
    return setup;
  }

  const std::vector<std::string>& volumes() const override { return volumes_; }

  Status WriteRecord(int index, const std::string& record) override {
    if (!Has("write")) return NoData("write");
    if (record.find('\n') != std::string::npos)
      return Status::InvalidArgument("a record is one line of text");
    return Run("write", index, {"SNAPSET_CONFORMANCE_RECORD=" + record}).status();
  }

  Result<std::string> ReadRecord(int index) override {
    if (!Has("read")) return NoData("read");
    return Record("read", index, {});
  }

  Result<std::string> ReadExposedRecord(int index, const std::string& exposed_as) override {
    if (!Has("read_exposed")) return NoData("read_exposed");
    return Record("read_exposed", index, {"SNAPSET_CONFORMANCE_EXPOSED=" + exposed_as});
  }

  // Only write_exposed's exit code says whether the exposure took a write.
  // NotImplemented (the case reports it as a skip) when the file has none.
  Status TryWriteExposed(int index, const std::string& exposed_as) override {
    if (!Has("write_exposed"))
      return Status::NotImplemented("the command fixture " + spec_.file +
                                    " has no \"write_exposed\" command");
    int exit_code = -1;
    auto out =
        Run("write_exposed", index, {"SNAPSET_CONFORMANCE_EXPOSED=" + exposed_as}, &exit_code);
    if (!out.ok()) return out.status();
    if (exit_code == 0) return Status::Ok();  // it could write: a defect
    return Status::BadState("write_exposed exited " + std::to_string(exit_code) +
                            ": the exposure is read-only");
  }

  Result<std::vector<std::string>> Residue() override {
    if (!Has("residue")) return std::vector<std::string>{};
    auto out = Run("residue", -1, {});
    if (!out.ok()) return out.status();
    std::vector<std::string> lines;
    std::stringstream s(*out);
    std::string line;
    while (std::getline(s, line)) {
      line = TrimEnd(line);
      if (!line.empty()) lines.push_back(line);
    }
    return lines;
  }
  bool residue_visible() const override { return Has("residue"); }

  std::vector<std::string> secrets() const override { return spec_.secrets; }

  // Destroys the volumes, last first. Only in the process that made them:
  // a case's forked process destroying its copy of the fixture leaves them.
  void Stop() override {
    if (owner_ == 0 || owner_ != ::getpid()) return;
    for (int i = int(volumes_.size()) - 1; i >= 0; --i) {
      auto out = Run("destroy", i, {});
      if (!out.ok())
        std::fprintf(stderr, "snapset-conformance: %s\n", out.status().message().c_str());
    }
    volumes_.clear();
    owner_ = 0;
  }

 private:
  bool Has(const std::string& key) const { return spec_.commands.count(key) > 0; }

  Status NoData(const std::string& key) const {
    return Status::NotImplemented("the command fixture " + spec_.file + " has no \"" + key +
                                  "\" command, so it cannot move data");
  }

  // A record a read command printed: its last line; none printed is NotFound.
  Result<std::string> Record(const std::string& key, int index,
                             const std::vector<std::string>& extra) {
    auto out = Run(key, index, extra);
    if (!out.ok()) return out.status();
    const std::string record = LastLine(*out);
    if (record.empty())
      return Status::NotFound("\"" + key + "\" printed no record for " + volumes_.at(index));
    return record;
  }

  // Runs command `key` for volume `index` (-1: none); its stdout. A nonzero
  // exit is an error naming the command, its exit code and its stderr,
  // unless the caller takes the exit code (`exit_code`). Safe to call from
  // several threads (the load cases write to all volumes at once).
  Result<std::string> Run(const std::string& key, int index, const std::vector<std::string>& extra,
                          int* exit_code = nullptr) {
    const std::vector<std::string>& argv = spec_.commands.at(key);
    std::vector<std::string> env;
    static const std::string kOurs = "SNAPSET_CONFORMANCE_";
    for (char** e = environ; *e; ++e) {
      const std::string v(*e);
      if (!v.starts_with(kOurs)) env.push_back(v);
    }
    env.push_back(kOurs + "WORK_DIR=" + work_dir_);
    env.push_back(kOurs + "FIXTURE_DIR=" + spec_.dir);
    if (index >= 0) {
      env.push_back(kOurs + "INDEX=" + std::to_string(index));
      if (size_t(index) < volumes_.size()) env.push_back(kOurs + "VOLUME=" + volumes_[index]);
    }
    env.insert(env.end(), extra.begin(), extra.end());
    Outcome o = Spawn(argv, env, spec_.dir, spec_.timeout);
    if (exit_code) *exit_code = o.exit_code;
    const std::string what = "command fixture: \"" + key + "\" (" + CommandLine(argv) + ")" +
                             (index >= 0 ? " for volume " + std::to_string(index) : "");
    if (o.timed_out)
      return Status::Unavailable(what + " did not finish within " +
                                 std::to_string(spec_.timeout.count()) + " s and was killed" +
                                 (o.err.empty() ? "" : "; stderr: " + TrimEnd(o.err)));
    if (o.exit_code < 0 || (!exit_code && o.exit_code != 0))
      return Status::Unavailable(what + " failed (exit " + std::to_string(o.exit_code) + ")" +
                                 (o.err.empty() ? "" : "; stderr: " + TrimEnd(o.err)));
    return o.out;
  }

  const Spec spec_;
  const std::string work_dir_;
  pid_t owner_ = 0;
  int count_ = 0;
  std::vector<std::string> volumes_;
};

}  // namespace

Result<std::unique_ptr<Fixture>> MakeCommandFixture(const FixtureOptions& options) {
  if (options.command_file.empty())
    return Status::InvalidArgument("the command fixture needs --fixture-file FILE");
  const std::string work_dir = options.work_dir + "/command";
  auto spec = ParseSpec(options.command_file, work_dir);
  if (!spec.ok()) return spec.status();
  return std::unique_ptr<Fixture>(new CommandFixture(std::move(*spec), work_dir));
}

}  // namespace snapset::conformance
