// SPDX-License-Identifier: Apache-2.0
// The array-driver ABI (include/snapset/array.h) from both sides:
//   - the host's negotiation, against a driver written in plain C and built
//     with different ABI declarations (tests/plugins/raw_array_driver.c):
//     the same and a newer minor load, a newer major, a short table, a NULL
//     mandatory op and half the fence ops are refused, saying why;
//   - a driver without any optional op is used through the host view as
//     array.h promises (NotImplemented, no crash);
//   - the C++ helper (array.hpp): unknown flags are INVALID_ARGUMENT, an
//     exception never crosses, every error has a message, the fence ops are
//     offered only by a class that overrides them.
#define BOOST_TEST_MODULE array_abi
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <snapset/array.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "providers/iscsi/driver_library.hpp"

using snapset::ArrayCall;
using snapset::ArrayDriver;
using snapset::Code;
using snapset::Result;
using snapset::Status;
using snapset::iscsi::DriverLibrary;

namespace {

std::string Plugin(const std::string& name) {
  return std::string(SNAPSET_TEST_PLUGIN_DIR) + "/lib" + name + ".so";
}

std::unique_ptr<ArrayDriver> OpenDriver(const std::string& name, const std::string& config = "{}") {
  auto lib = DriverLibrary::Load(Plugin(name));
  BOOST_TEST_REQUIRE(lib.ok(), lib.status().ToString());
  auto driver = (*lib)->Open(config, ArrayCall{}, nullptr);
  BOOST_TEST_REQUIRE(driver.ok(), driver.status().ToString());
  return std::move(*driver);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(negotiation)

BOOST_AUTO_TEST_CASE(a_driver_of_this_version_loads_and_works_through_the_host_view) {
  std::unique_ptr<ArrayDriver> d = OpenDriver("raw_array_current");
  Result<std::vector<snapset::ArrayVolume>> volumes = d->Inventory(ArrayCall{});
  BOOST_TEST_REQUIRE(volumes.ok(), volumes.status().ToString());
  BOOST_TEST(volumes->size() == 2u);
  BOOST_TEST((*volumes)[0].id == "v1");
  BOOST_TEST((*volumes)[0].naa.size() == 32u);

  Result<snapset::ArrayGroup> group = d->CreateGroup("snapset-g", {"v1", "v2"}, ArrayCall{});
  BOOST_TEST_REQUIRE(group.ok(), group.status().ToString());
  BOOST_TEST(group->member_ids == (std::vector<std::string>{"v1", "v2"}));
  snapset::SnapshotRequest request{*group, {"snapset-a", "snapset-b"}, ""};
  Result<std::vector<snapset::ArrayVolume>> snaps = d->SnapshotGroup(request, ArrayCall{});
  BOOST_TEST_REQUIRE(snaps.ok(), snaps.status().ToString());
  BOOST_TEST_REQUIRE(snaps->size() == 2u);
  BOOST_TEST((*snaps)[0].name == "snapset-a");
  BOOST_TEST((*snaps)[0].source_id == "v1");
  BOOST_TEST((*snaps)[1].source_id == "v2");
  // A name taken: ALREADY_EXISTS with the driver's message.
  Result<snapset::ArrayGroup> again = d->CreateGroup("snapset-g", {"v1"}, ArrayCall{});
  BOOST_TEST((again.status().code() == Code::kAlreadyExists));
  BOOST_TEST(again.status().message() == "raw array: group name taken");
  // Deletes are idempotent.
  BOOST_TEST(d->DeleteSnapshot((*snaps)[0].id, ArrayCall{}).ok());
  BOOST_TEST(d->DeleteSnapshot((*snaps)[0].id, ArrayCall{}).ok());
  BOOST_TEST(d->DeleteGroup(group->id, ArrayCall{}).ok());
  BOOST_TEST(d->Inventory(ArrayCall{})->size() == 3u);
}

BOOST_AUTO_TEST_CASE(a_newer_minor_loads_and_its_unknown_member_is_never_used) {
  auto lib = DriverLibrary::Load(Plugin("raw_array_newer_minor"));
  BOOST_TEST_REQUIRE(lib.ok(), lib.status().ToString());
  BOOST_TEST(SNAPSET_ABI_MINOR((*lib)->abi_version()) == 99u);
  auto driver = (*lib)->Open("{}", ArrayCall{}, nullptr);
  BOOST_TEST_REQUIRE(driver.ok(), driver.status().ToString());
  BOOST_TEST((*driver)->Inventory(ArrayCall{}).ok());
}

BOOST_AUTO_TEST_CASE(tables_the_host_cannot_use_are_refused_saying_why) {
  struct Case {
    const char* plugin;
    const char* says;
  };
  const Case cases[] = {
      {"raw_array_too_new", "array driver ABI 2.0, this host speaks 1.x"},
      {"raw_array_short_table", "smaller than ABI 1.0's"},
      {"raw_array_no_settle", "the mandatory op settle is NULL"},
      {"raw_array_half_fences", "must be all set or all NULL; 1 of them are set"},
  };
  for (const Case& c : cases) {
    auto lib = DriverLibrary::Load(Plugin(c.plugin));
    BOOST_TEST_REQUIRE(!lib.ok(), c.plugin);
    BOOST_TEST((lib.status().code() == Code::kConfig));
    BOOST_TEST(lib.status().message().find(c.says) != std::string::npos, lib.status().message());
    BOOST_TEST(lib.status().message().find(Plugin(c.plugin)) != std::string::npos,
               "the message names the library: " << lib.status().message());
  }
}

BOOST_AUTO_TEST_CASE(a_missing_library_or_one_without_the_entry_point_is_refused) {
  auto missing = DriverLibrary::Load("/nonexistent/libdriver.so");
  BOOST_TEST(!missing.ok());
  BOOST_TEST(missing.status().message().find("/nonexistent/libdriver.so") != std::string::npos);
  // A provider is not an array driver.
  auto provider = DriverLibrary::Load(Plugin("raw_abi_current"));
  BOOST_TEST_REQUIRE(!provider.ok());
  BOOST_TEST(provider.status().message().find("has no entry point snapset_array_driver_entry") !=
                 std::string::npos,
             provider.status().message());
}

BOOST_AUTO_TEST_CASE(a_refused_open_gives_the_drivers_code_and_message) {
  auto lib = DriverLibrary::Load(Plugin("raw_array_current"));
  BOOST_TEST_REQUIRE(lib.ok());
  auto driver = (*lib)->Open(R"({"fail_open": true})", ArrayCall{}, nullptr);
  BOOST_TEST_REQUIRE(!driver.ok());
  BOOST_TEST((driver.status().code() == Code::kInvalidArgument));
  BOOST_TEST(driver.status().message().find("fail_open") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(missing_optional_ops_are_not_implemented_not_a_crash) {
  std::unique_ptr<ArrayDriver> d = OpenDriver("raw_array_current");
  BOOST_TEST(!d->offers_fences());
  BOOST_TEST(!d->offers_revert());
  BOOST_TEST(d->Warm(ArrayCall{}).ok());  // nothing to warm
  BOOST_TEST((d->Revert("v1", "s1", ArrayCall{}).code() == Code::kNotImplemented));
  BOOST_TEST((d->StartFence({{"v1"}, "f", std::chrono::seconds(1)}, ArrayCall{}).status().code() ==
              Code::kNotImplemented));
  BOOST_TEST((d->LiftFence("f", ArrayCall{}).code() == Code::kNotImplemented));
  BOOST_TEST(d->counters().requests == 0u);
}

BOOST_AUTO_TEST_CASE(a_driver_with_fences_offers_them) {
  std::unique_ptr<ArrayDriver> d = OpenDriver("raw_array_fences");
  BOOST_TEST(d->offers_fences());
  Result<snapset::ArrayFence> f =
      d->StartFence({{"v1", "v2"}, "snapset-fence", std::chrono::seconds(5)}, ArrayCall{});
  BOOST_TEST_REQUIRE(f.ok(), f.status().ToString());
  BOOST_TEST(f->name == "snapset-fence");
  BOOST_TEST(d->Fences(ArrayCall{})->size() == 1u);
  BOOST_TEST(d->LiftFence(f->id, ArrayCall{}).ok());
  BOOST_TEST(d->LiftFence(f->id, ArrayCall{}).ok());  // idempotent
  BOOST_TEST(d->Fences(ArrayCall{})->empty());
}

BOOST_AUTO_TEST_CASE(the_c_driver_rejects_unknown_flags) {
  auto lib = DriverLibrary::Load(Plugin("raw_array_current"));
  BOOST_TEST_REQUIRE(lib.ok());
  const snapset_array_driver_ops& ops = (*lib)->ops();
  snapset_array_host host{};
  host.abi_version = SNAPSET_ARRAY_ABI_VERSION;
  host.struct_size = sizeof host;
  static std::string last_error;
  host.set_error = [](const snapset_array_call*, const char* m) { last_error = m; };
  snapset_array_call call{sizeof call, 0, INT64_MAX};
  snapset_array* a = nullptr;
  BOOST_TEST(ops.open(&host, &call, 1u << 7, "{}", &a) == SNAPSET_E_INVALID_ARGUMENT);
  BOOST_TEST_REQUIRE(ops.open(&host, &call, 0, "{}", &a) == SNAPSET_OK);
  BOOST_TEST(ops.settle(a, &call, 1u << 3) == SNAPSET_E_INVALID_ARGUMENT);
  BOOST_TEST(last_error.find("unknown flag bits") != std::string::npos);
  ops.close(a, 0);
}

BOOST_AUTO_TEST_SUITE_END()

// ------------------------------------------------------------ array.hpp

namespace {

// An in-memory driver on array.hpp whose Inventory throws when asked to.
class ThrowingDriver : public ArrayDriver {
 public:
  using ArrayDriver::ArrayDriver;
  Status Open(std::string_view config) override {
    throw_ = config.find("throw") != std::string_view::npos;
    return Status::Ok();
  }
  Result<std::vector<snapset::ArrayVolume>> Inventory(const ArrayCall&) override {
    if (throw_) throw std::runtime_error("inventory exploded");
    return std::vector<snapset::ArrayVolume>{{"v1", "one", "600a", "", 4096, 512, "", 0}};
  }
  Result<std::vector<snapset::ArrayGroup>> Groups(const ArrayCall&) override {
    return std::vector<snapset::ArrayGroup>{};
  }
  Result<snapset::ArrayGroup> CreateGroup(const std::string&, const std::vector<std::string>&,
                                          const ArrayCall& call) override {
    return call.DeadlinePassed("create_group: the deadline passed");
  }
  Status DeleteGroup(const std::string&, const ArrayCall&) override { return Status::Ok(); }
  Result<std::vector<snapset::ArrayVolume>> SnapshotGroup(const snapset::SnapshotRequest&,
                                                          const ArrayCall& call) override {
    return call.DeadlinePassed("snapshot_group: the array did not answer in time");
  }
  Status DeleteSnapshot(const std::string&, const ArrayCall&) override {
    return Status::BadState("delete_snapshot: 409, a job still runs on it");
  }
  Result<snapset::ArrayExposure> Expose(const snapset::ExposeRequest&, const ArrayCall&) override {
    return Status::Unavailable("no target");
  }
  Status Unexpose(const std::string&, const ArrayCall&) override { return Status::Ok(); }
  Result<std::vector<snapset::ArrayExposure>> Exposures(const ArrayCall&) override {
    return std::vector<snapset::ArrayExposure>{};
  }
  Status Settle(const ArrayCall&) override { return Status::Ok(); }

 private:
  bool throw_ = false;
};

class FencingDriver : public ThrowingDriver {
 public:
  using ThrowingDriver::ThrowingDriver;
  Result<snapset::ArrayFence> StartFence(const snapset::FenceRequest& r,
                                         const ArrayCall&) override {
    return snapset::ArrayFence{"f1", r.name, r.volume_ids, int64_t(r.timeout.count())};
  }
  Status LiftFence(const std::string&, const ArrayCall&) override { return Status::Ok(); }
  Result<std::vector<snapset::ArrayFence>> Fences(const ArrayCall&) override {
    return std::vector<snapset::ArrayFence>{};
  }
};

// A host table whose set_error keeps the last message.
struct HelperHost {
  snapset_array_host host{};
  static inline std::string last;
  HelperHost() {
    host.abi_version = SNAPSET_ARRAY_ABI_VERSION;
    host.struct_size = sizeof host;
    host.set_error = [](const snapset_array_call*, const char* m) { last = m; };
  }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(cpp_helper)

BOOST_AUTO_TEST_CASE(no_exception_crosses_and_every_error_has_a_message) {
  const snapset_array_driver_ops* ops = snapset::array_detail::Adapter<ThrowingDriver>::Ops();
  HelperHost h;
  snapset_array_call call{sizeof call, SNAPSET_ARRAY_CALL_IN_WINDOW, INT64_MAX};
  snapset_array* a = nullptr;
  BOOST_TEST_REQUIRE(ops->open(&h.host, &call, 0, R"({"throw": 1})", &a) == SNAPSET_OK);
  auto sink = [](void*, const snapset_array_volume*) {};
  HelperHost::last.clear();
  BOOST_TEST(ops->list_volumes(a, &call, 0, sink, nullptr) == SNAPSET_E_INTERNAL);
  BOOST_TEST(HelperHost::last.find("inventory exploded") != std::string::npos, HelperHost::last);

  // Unknown flags, NULL arguments and a NULL call are INVALID_ARGUMENT, with
  // a message.
  HelperHost::last.clear();
  BOOST_TEST(ops->settle(a, &call, 0x40) == SNAPSET_E_INVALID_ARGUMENT);
  BOOST_TEST(HelperHost::last.find("unknown flag bits 0x40") != std::string::npos);
  HelperHost::last.clear();
  BOOST_TEST(ops->delete_group(a, &call, 0, nullptr) == SNAPSET_E_INVALID_ARGUMENT);
  BOOST_TEST(HelperHost::last.find("group_id is NULL") != std::string::npos);
  BOOST_TEST(ops->settle(a, nullptr, 0) == SNAPSET_E_INVALID_ARGUMENT);

  // Inside the window a passed deadline is HOLD_WRITES_TIMEOUT, outside it
  // UNAVAILABLE (array.h's rule, ArrayCall::DeadlinePassed).
  const char* ids[] = {"v1"};
  snapset_array_group group{sizeof group, 1, "g", "g", ids};
  snapset_array_snapshot_request request{sizeof request, 0, &group, nullptr, nullptr};
  BOOST_TEST(ops->snapshot_group(a, &call, 0, &request, sink, nullptr) ==
             SNAPSET_E_HOLD_WRITES_TIMEOUT);
  snapset_array_call outside{sizeof outside, SNAPSET_ARRAY_CALL_RETRY, INT64_MAX};
  auto group_sink = [](void*, const snapset_array_group*) {};
  BOOST_TEST(ops->create_group(a, &outside, 0, "g", ids, 1, group_sink, nullptr) ==
             SNAPSET_E_UNAVAILABLE);
  // A short request struct is refused, not read past its end.
  snapset_array_snapshot_request short_request = request;
  short_request.struct_size = 8;
  BOOST_TEST(ops->snapshot_group(a, &call, 0, &short_request, sink, nullptr) ==
             SNAPSET_E_INVALID_ARGUMENT);
  BOOST_TEST(ops->delete_snapshot(a, &call, 0, "s") == SNAPSET_E_BAD_STATE);
  ops->close(a, 0);
}

BOOST_AUTO_TEST_CASE(fence_and_revert_ops_are_offered_only_when_overridden) {
  const snapset_array_driver_ops* plain = snapset::array_detail::Adapter<ThrowingDriver>::Ops();
  BOOST_TEST(plain->start_fence == nullptr);
  BOOST_TEST(plain->lift_fence == nullptr);
  BOOST_TEST(plain->list_fences == nullptr);
  BOOST_TEST(plain->revert == nullptr);
  BOOST_TEST(plain->abi_version == SNAPSET_ARRAY_ABI_VERSION);
  BOOST_TEST(plain->struct_size == sizeof(snapset_array_driver_ops));
  const snapset_array_driver_ops* fencing = snapset::array_detail::Adapter<FencingDriver>::Ops();
  BOOST_TEST(fencing->start_fence != nullptr);
  BOOST_TEST(fencing->lift_fence != nullptr);
  BOOST_TEST(fencing->list_fences != nullptr);
  // And the host accepts the table the helper makes.
  snapset_array_driver_ops copy{};
  BOOST_TEST(snapset::iscsi::NegotiateArrayAbi(fencing, "helper", &copy).ok());
}

BOOST_AUTO_TEST_SUITE_END()
