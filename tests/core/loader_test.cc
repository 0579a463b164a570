// Registration and loading errors, each a distinct message that names the
// file at fault, as an integrator reading it needs.
#define BOOST_TEST_MODULE loader
#include <boost/test/unit_test.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "core/host_log.hpp"
#include "core/provider_registration.hpp"
#include "core/provider_registry.hpp"
#include "tests/support/temp_dir.hpp"

using namespace snapset;
using snapset::test::Registration;
using snapset::test::TempDir;

namespace {

const std::string kPlugins = SNAPSET_TEST_PLUGIN_DIR;
const std::string kScripted = kPlugins + "/libscripted_provider.so";
const std::string kId1 = "11111111-1111-4111-8111-111111111111";
const std::string kId2 = "22222222-2222-4222-8222-222222222222";

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// Loads the registry of `dir` and returns the error message ("" if it loaded).
std::string LoadError(const TempDir& dir) {
  HostLog log(nullptr);
  auto r = ProviderRegistry::Load(dir.str(), &log);
  if (r.ok()) return "";
  BOOST_TEST(r.status().Is(Code::kConfig));
  return r.status().message();
}

// A private copy of a plugin, so a test can change its mode or owner.
std::string CopyPlugin(const TempDir& dir, const std::string& from) {
  auto to = dir.path() / "lib" / std::filesystem::path(from).filename();
  std::filesystem::create_directories(to.parent_path());
  ::chmod(to.parent_path().c_str(), 0755);
  std::filesystem::copy_file(from, to, std::filesystem::copy_options::overwrite_existing);
  ::chmod(to.c_str(), 0755);
  return to.string();
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_valid_registration_loads_with_its_fields) {
  TempDir dir;
  dir.Write("providers.d/a.json",
            Registration(kId1, "alpha", "hardware", kScripted, R"({"supports": ["*"]})", 7));
  HostLog log(nullptr);
  auto r = ProviderRegistry::Load(dir.str(), &log);
  BOOST_TEST_REQUIRE(r.ok(), r.status().ToString());
  BOOST_TEST_REQUIRE((*r)->providers().size() == 1u);
  const auto& p = *(*r)->providers().front();
  BOOST_TEST(p.name() == "alpha");
  BOOST_TEST(p.id() == kId1);
  BOOST_TEST(p.priority() == 7);
  BOOST_TEST((p.type() == ProviderType::kHardware));
  BOOST_TEST((*r)->FindByName("alpha") == &p);
  BOOST_TEST((*r)->FindById(kId1) == &p);
}

BOOST_AUTO_TEST_CASE(no_providers_d_means_no_providers) {
  TempDir dir;
  HostLog log(nullptr);
  auto r = ProviderRegistry::Load(dir.str(), &log);
  BOOST_TEST_REQUIRE(r.ok());
  BOOST_TEST((*r)->providers().empty());
}

BOOST_AUTO_TEST_CASE(a_missing_config_dir_is_not_found) {
  HostLog log(nullptr);
  auto r = ProviderRegistry::Load("/nonexistent/snapset-config", &log);
  BOOST_TEST(r.status().IsNotFound());
  BOOST_TEST(Contains(r.status().message(), "/nonexistent/snapset-config"));
}

BOOST_AUTO_TEST_CASE(malformed_json_names_file_line_and_column) {
  TempDir dir;
  auto file = dir.Write("providers.d/bad.json", "{\n  \"id\": \"x\",\n  \"name\" \"oops\"\n}\n");
  std::string m = LoadError(dir);
  BOOST_TEST(Contains(m, file + ": malformed JSON at line 3, column 10"), m);
}

BOOST_AUTO_TEST_CASE(each_missing_field_is_named) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"name": "a", "type": "system", "library": "x.so"})", "missing field \"id\""},
      {R"({"id": "11111111-1111-4111-8111-111111111111", "type": "system", "library": "x.so"})",
       "missing field \"name\""},
      {R"({"id": "11111111-1111-4111-8111-111111111111", "name": "a", "library": "x.so"})",
       "missing field \"type\""},
      {R"({"id": "11111111-1111-4111-8111-111111111111", "name": "a", "type": "system"})",
       "missing field \"library\""},
  };
  for (const auto& [json, expected] : cases) {
    TempDir dir;
    auto file = dir.Write("providers.d/p.json", json);
    std::string m = LoadError(dir);
    BOOST_TEST(Contains(m, file + ": " + expected), m);
  }
}

BOOST_AUTO_TEST_CASE(bad_values_are_explained) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {Registration(kId1, "a", "firmware", kScripted), "unknown provider type \"firmware\""},
      {Registration("not-a-uuid", "a", "system", kScripted),
       "field \"id\" is \"not-a-uuid\", not a UUID"},
      {Registration(kId1, "a=b", "system", kScripted), "field \"name\" is \"a=b\""},
      {R"({"id": "11111111-1111-4111-8111-111111111111", "name": "a", "type": "system",
          "library": "x.so", "priorty": 3})",
       "unknown field \"priorty\""},
      {R"({"id": "11111111-1111-4111-8111-111111111111", "name": "a", "type": "system",
          "library": "x.so", "priority": "high"})",
       "field \"priority\" must be an integer"},
      {R"({"id": "11111111-1111-4111-8111-111111111111", "name": "a", "type": "system",
          "library": "x.so", "config": []})",
       "field \"config\" must be a JSON object"},
      {"[1, 2]", "a provider registration must be a JSON object"},
  };
  for (const auto& [json, expected] : cases) {
    TempDir dir;
    auto file = dir.Write("providers.d/p.json", json);
    std::string m = LoadError(dir);
    BOOST_TEST(Contains(m, file + ": " + expected), m);
  }
}

BOOST_AUTO_TEST_CASE(duplicate_id_and_name_name_both_files) {
  {
    TempDir dir;
    auto a = dir.Write("providers.d/a.json", Registration(kId1, "alpha", "system", kScripted));
    auto b = dir.Write("providers.d/b.json", Registration(kId1, "beta", "system", kScripted));
    std::string m = LoadError(dir);
    BOOST_TEST(Contains(m, b + ": duplicate provider id " + kId1 + " (also in " + a + ")"), m);
  }
  {
    TempDir dir;
    auto a = dir.Write("providers.d/a.json", Registration(kId1, "alpha", "system", kScripted));
    auto b = dir.Write("providers.d/b.json", Registration(kId2, "alpha", "system", kScripted));
    std::string m = LoadError(dir);
    BOOST_TEST(Contains(m, b + ": duplicate provider name \"alpha\" (also in " + a + ")"), m);
  }
}

BOOST_AUTO_TEST_CASE(missing_library_is_named) {
  TempDir dir;
  auto file = dir.Write("providers.d/a.json",
                        Registration(kId1, "alpha", "system", "libs/nowhere.so"));
  std::string m = LoadError(dir);
  // A relative library path is resolved against the registration's folder.
  BOOST_TEST(Contains(m, file + ": provider \"alpha\": library " + dir.str() +
                             "/providers.d/libs/nowhere.so does not exist"),
             m);
}

BOOST_AUTO_TEST_CASE(library_that_is_not_a_shared_object) {
  TempDir dir;
  auto fake = dir.Write("lib/libfake.so", "not an ELF file");
  auto file = dir.Write("providers.d/a.json", Registration(kId1, "alpha", "system", fake));
  std::string m = LoadError(dir);
  BOOST_TEST(Contains(m, file + ": provider \"alpha\": cannot load library " + fake), m);
}

BOOST_AUTO_TEST_CASE(missing_entry_point_is_named) {
  TempDir dir;
  const std::string lib = kPlugins + "/libraw_abi_no_entry.so";
  auto file = dir.Write("providers.d/a.json", Registration(kId1, "alpha", "system", lib));
  std::string m = LoadError(dir);
  BOOST_TEST(Contains(m, file + ": provider \"alpha\": library " + lib +
                             " has no entry point snapset_provider_entry"),
             m);
}

BOOST_AUTO_TEST_CASE(abi_mismatch_names_the_registration) {
  TempDir dir;
  auto file = dir.Write("providers.d/a.json",
                        Registration(kId1, "alpha", "system", kPlugins + "/libraw_abi_too_new.so"));
  std::string m = LoadError(dir);
  BOOST_TEST(Contains(m, file + ": "), m);
  BOOST_TEST(Contains(m, "provider ABI too new"), m);
  TempDir dir2;
  auto file2 = dir2.Write(
      "providers.d/a.json",
      Registration(kId1, "alpha", "system", kPlugins + "/libraw_abi_too_old.so"));
  std::string m2 = LoadError(dir2);
  BOOST_TEST(Contains(m2, file2 + ": "), m2);
  BOOST_TEST(Contains(m2, "provider ABI too old"), m2);
}

BOOST_AUTO_TEST_CASE(on_load_failure_carries_the_providers_reason) {
  TempDir dir;
  auto file = dir.Write("providers.d/a.json",
                        Registration(kId1, "alpha", "system", kScripted, R"({"fail_load": true})"));
  std::string m = LoadError(dir);
  BOOST_TEST(Contains(m, file + ": provider \"alpha\": on_load failed: invalid-argument: "
                                "scripted provider: told to fail on_load"),
             m);
}

BOOST_AUTO_TEST_CASE(every_broken_file_is_reported_at_once) {
  TempDir dir;
  auto a = dir.Write("providers.d/a.json", "{");
  auto b = dir.Write("providers.d/b.json", Registration(kId1, "b", "weird", kScripted));
  std::string m = LoadError(dir);
  BOOST_TEST(Contains(m, a + ": malformed JSON"), m);
  BOOST_TEST(Contains(m, b + ": unknown provider type"), m);
}

BOOST_AUTO_TEST_CASE(world_writable_library_is_refused) {
  TempDir dir;
  auto lib = CopyPlugin(dir, kScripted);
  ::chmod(lib.c_str(), 0777);
  auto file = dir.Write("providers.d/a.json", Registration(kId1, "alpha", "system", lib));
  std::string m = LoadError(dir);
  BOOST_TEST(Contains(m, file + ": provider \"alpha\": provider library " + lib +
                             " is writable by anyone; refusing to load it (run: chmod go-w " +
                             lib + ")"),
             m);
}

BOOST_AUTO_TEST_CASE(group_writable_library_directory_is_refused) {
  TempDir dir;
  auto lib = CopyPlugin(dir, kScripted);
  ::chmod(std::filesystem::path(lib).parent_path().c_str(), 0775);
  auto file = dir.Write("providers.d/a.json", Registration(kId1, "alpha", "system", lib));
  std::string m = LoadError(dir);
  BOOST_TEST(Contains(m, file + ": provider \"alpha\": directory " +
                             std::filesystem::path(lib).parent_path().string() +
                             " holding provider library " + lib + " is writable by its group"),
             m);
}

BOOST_AUTO_TEST_CASE(world_writable_registration_is_refused) {
  TempDir dir;
  auto file = dir.Write("providers.d/a.json", Registration(kId1, "alpha", "system", kScripted));
  ::chmod(file.c_str(), 0666);
  std::string m = LoadError(dir);
  BOOST_TEST(Contains(m, "provider registration " + file + " is writable by anyone"), m);
}

BOOST_AUTO_TEST_CASE(library_owned_by_another_user_is_refused) {
  if (::geteuid() != 0) {
    BOOST_TEST_MESSAGE("skipped: changing a file's owner needs root");
    BOOST_TEST(!snapset::test::InCi(), "CI runs as root; this test must not skip there");
    return;
  }
  TempDir dir;
  auto lib = CopyPlugin(dir, kScripted);
  BOOST_TEST_REQUIRE(::chown(lib.c_str(), 65534, 65534) == 0);  // nobody
  auto file = dir.Write("providers.d/a.json", Registration(kId1, "alpha", "system", lib));
  std::string m = LoadError(dir);
  BOOST_TEST(Contains(m, file + ": provider \"alpha\": provider library " + lib +
                             " is owned by uid 65534, not by root or the current user"),
             m);
}
