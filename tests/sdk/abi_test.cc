// The provider ABI as a vendor relies on it: version negotiation, tables of
// other sizes, flags, the per-set state machine and exception containment,
// all through the real loader and dlopen.
#define BOOST_TEST_MODULE abi
#include <boost/test/unit_test.hpp>

#include <dlfcn.h>

#include <atomic>
#include <cstring>
#include <memory>

#include "core/host_log.hpp"
#include "core/provider_instance.hpp"
#include "core/provider_registration.hpp"
#include "tests/support/temp_dir.hpp"

using namespace snapset;
using snapset::test::TempDir;

namespace {

const std::string kPlugins = SNAPSET_TEST_PLUGIN_DIR;
const std::string kId = "0f6c3c2e-1d1a-4f4b-9a53-4c1b7f0e2a11";

std::string Lib(const std::string& name) { return kPlugins + "/lib" + name + ".so"; }

struct Loaded {
  std::unique_ptr<HostLog> log = std::make_unique<HostLog>(nullptr);
  Result<std::unique_ptr<ProviderInstance>> instance = Status::Internal("not loaded");
};

Loaded Load(const std::string& library, const std::string& config = "{}") {
  ProviderRegistration reg;
  reg.file = "/etc/snapset/providers.d/test.json";
  reg.id = kId;
  reg.name = "test";
  reg.type = ProviderType::kHardware;
  reg.library = library;
  reg.config_json = config;
  Loaded l;
  l.instance = ProviderInstance::Load(reg, l.log.get());
  return l;
}

Volume CowVolume() {
  Volume v;
  v.kind = VolumeKind::kCow;
  v.name = v.device_path = "cow:db";
  return v;
}

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(negotiation)

BOOST_AUTO_TEST_CASE(current_plugin_loads_and_answers) {
  auto l = Load(Lib("raw_abi_current"));
  BOOST_TEST_REQUIRE(l.instance.ok(), l.instance.status().ToString());
  BOOST_TEST((*l.instance)->IsVolumeSupported(CowVolume(), 0).ok());
  Volume block;
  block.name = block.device_path = "/dev/sdz";
  Status s = (*l.instance)->IsVolumeSupported(block, 0);
  BOOST_TEST(s.IsVolumeNotSupported());
  BOOST_TEST(s.message() == "raw provider only takes cow: volumes");
}

BOOST_AUTO_TEST_CASE(plugin_of_a_newer_minor_interoperates) {
  // Built for ABI 1.99 with a table larger than this host knows.
  auto l = Load(Lib("raw_abi_newer_minor"));
  BOOST_TEST_REQUIRE(l.instance.ok(), l.instance.status().ToString());
  auto& p = *l.instance;
  BOOST_TEST(SNAPSET_ABI_MINOR(p->plugin_abi_version()) == 99u);
  BOOST_TEST(p->plugin_ops_size() > sizeof(snapset_provider_ops));
  BOOST_TEST(p->IsVolumeSupported(CowVolume(), 0).ok());
  BOOST_TEST(p->BeginPrepareSnapshot("s1", "x1", CowVolume(), 0).ok());
  BOOST_TEST(p->CommitSnapshots("s1").ok());
  auto list = p->ListSnapshots();
  BOOST_TEST_REQUIRE(list.ok());
  BOOST_TEST(list->size() == 1u);
}

BOOST_AUTO_TEST_CASE(short_ops_table_leaves_later_members_unset) {
  // struct_size ends before delete_snapshot, as a plugin of an older minor
  // would: the host must not call the members the table does not declare,
  // even though this plugin happens to have them.
  auto l = Load(Lib("raw_abi_short_table"));
  BOOST_TEST_REQUIRE(l.instance.ok(), l.instance.status().ToString());
  auto& p = *l.instance;
  BOOST_TEST(p->plugin_ops_size() == offsetof(snapset_provider_ops, delete_snapshot));
  BOOST_TEST(p->CommitSnapshots("s1").ok());
  BOOST_TEST(p->DeleteSnapshot("x").Is(Code::kNotImplemented));
  auto list = p->ListSnapshots();
  BOOST_TEST(list.status().Is(Code::kNotImplemented));
  BOOST_TEST(p->ExposeSnapshot("x").status().Is(Code::kNotImplemented));
  BOOST_TEST(p->RevertToSnapshot("x").Is(Code::kNotImplemented));
}

BOOST_AUTO_TEST_CASE(too_new_major_is_refused_with_a_clear_message) {
  auto l = Load(Lib("raw_abi_too_new"));
  BOOST_TEST_REQUIRE(!l.instance.ok());
  const std::string m = l.instance.status().message();
  BOOST_TEST(l.instance.status().Is(Code::kConfig));
  BOOST_TEST(Contains(m, "provider ABI too new"), m);
  BOOST_TEST(Contains(m, "built for ABI 2.0"), m);
  BOOST_TEST(Contains(m, "speaks ABI " + std::to_string(SNAPSET_ABI_VERSION_MAJOR) + "." +
                             std::to_string(SNAPSET_ABI_VERSION_MINOR)),
             m);
  BOOST_TEST(Contains(m, "libraw_abi_too_new.so"), m);
}

BOOST_AUTO_TEST_CASE(too_old_major_is_refused_with_a_clear_message) {
  auto l = Load(Lib("raw_abi_too_old"));
  BOOST_TEST_REQUIRE(!l.instance.ok());
  const std::string m = l.instance.status().message();
  BOOST_TEST(Contains(m, "provider ABI too old"), m);
  BOOST_TEST(Contains(m, "built for ABI 0.9"), m);
}

BOOST_AUTO_TEST_CASE(negotiation_rejects_a_table_too_short_to_hold_on_load) {
  snapset_provider_ops tiny{};
  tiny.abi_version = SNAPSET_ABI_VERSION;
  tiny.struct_size = 8;
  snapset_provider_ops out;
  Status s = NegotiateAbi(&tiny, "libtiny.so", &out);
  BOOST_TEST(s.Is(Code::kConfig));
  BOOST_TEST(Contains(s.message(), "struct_size 8"), s.message());
}

BOOST_AUTO_TEST_CASE(negotiation_wants_list_objects_and_remove_object_together) {
  void* dl = ::dlopen(Lib("raw_abi_current").c_str(), RTLD_NOW | RTLD_LOCAL);
  BOOST_TEST_REQUIRE(dl);
  auto entry =
      reinterpret_cast<snapset_provider_entry_fn>(::dlsym(dl, SNAPSET_PROVIDER_ENTRY_SYMBOL));
  BOOST_TEST_REQUIRE(entry);
  snapset_provider_ops half = *entry();
  half.struct_size = sizeof half;
  half.list_objects = [](snapset_provider*, snapset_call*, uint32_t, snapset_object_sink,
                         void*) -> snapset_status { return SNAPSET_OK; };
  half.remove_object = nullptr;
  snapset_provider_ops out;
  Status s = NegotiateAbi(&half, "libhalf.so", &out);
  BOOST_TEST(s.Is(Code::kConfig));
  BOOST_TEST(Contains(s.message(), "libhalf.so"), s.message());
  BOOST_TEST(Contains(s.message(), "both, or neither"), s.message());
  ::dlclose(dl);
}

BOOST_AUTO_TEST_CASE(an_sdk_provider_lists_and_removes_its_objects_through_the_abi) {
  auto l = Load(Lib("scripted_provider"),
                R"({"supports": ["*"], "objects": [
                    {"kind": "group", "name": "snapset-g", "location": "array a", "set_id": "s"},
                    {"kind": "exposure", "name": "snapset-e", "location": "array a",
                     "snapshot_id": "x"}]})");
  BOOST_TEST_REQUIRE(l.instance.ok(), l.instance.status().ToString());
  auto& p = *l.instance;
  BOOST_TEST(p->lists_objects());
  auto objects = p->ListObjects();
  BOOST_TEST_REQUIRE(objects.ok(), objects.status().ToString());
  BOOST_TEST_REQUIRE(objects->size() == 2u);
  const ProviderObject& g = (*objects)[0];
  BOOST_TEST(g.kind == "group");
  BOOST_TEST(g.name == "snapset-g");
  BOOST_TEST(g.location == "array a");
  BOOST_TEST(g.set_id == "s");
  BOOST_TEST(g.snapshot_id.empty());  // NULL on the wire
  BOOST_TEST((*objects)[1].snapshot_id == "x");
  BOOST_TEST(p->RemoveObject(g).ok());
  BOOST_TEST(p->ListObjects()->size() == 1u);
  BOOST_TEST(p->RemoveObject(g).ok());  // gone already: OK
  CallOptions flagged;
  flagged.flags = 0x4;
  BOOST_TEST(p->ListObjects(flagged).status().IsInvalidArgument());
}

BOOST_AUTO_TEST_CASE(a_plugin_without_list_objects_has_no_objects_to_show) {
  // raw_abi_current is a 1.0-style C table: list_objects is NULL.
  auto l = Load(Lib("raw_abi_current"));
  BOOST_TEST_REQUIRE(l.instance.ok(), l.instance.status().ToString());
  BOOST_TEST(!(*l.instance)->lists_objects());
  BOOST_TEST((*l.instance)->ListObjects().status().Is(Code::kNotImplemented));
  BOOST_TEST((*l.instance)->RemoveObject({"group", "g", "here", "", ""}).Is(Code::kNotImplemented));
}

// Changed blocks (1.3): the SDK cuts what a provider gives to the start
// offset and max_ranges, the host pages through them, and a page that is not
// sorted or leaves the volume is refused naming the provider; a table
// without the member loads and says it does not report them.
BOOST_AUTO_TEST_CASE(changed_blocks_cross_the_abi_cut_to_the_page_and_checked) {
  auto l = Load(Lib("scripted_provider"),
                R"({"supports": ["*"], "volume_size": 1048576,
                    "changed_ranges": [[0, 4096], [8192, 4096], [65536, 65536]]})");
  BOOST_TEST_REQUIRE(l.instance.ok(), l.instance.status().ToString());
  auto& p = *l.instance;
  BOOST_TEST(p->offers_changed_blocks());
  auto page = p->ChangedBlocks("x", "", 0, 2);
  BOOST_TEST_REQUIRE(page.ok(), page.status().ToString());
  BOOST_TEST(page->volume_size == 1048576u);
  BOOST_TEST((page->ranges == std::vector<ByteRange>{{0, 4096}, {8192, 4096}}));
  page = p->ChangedBlocks("x", "y", 10000, 10);
  BOOST_TEST_REQUIRE(page.ok(), page.status().ToString());
  BOOST_TEST((page->ranges == std::vector<ByteRange>{{10000, 2288}, {65536, 65536}}));
  CallOptions flagged;
  flagged.flags = 0x4;
  BOOST_TEST(p->ChangedBlocks("x", "", 0, 10, flagged).status().IsInvalidArgument());
  BOOST_TEST(p->ChangedBlocks("x", "", 0, 0).status().IsInvalidArgument());

  auto bad = Load(Lib("scripted_provider"),
                  R"({"supports": ["*"], "volume_size": 65536,
                      "changed_ranges": [[8192, 4096], [0, 4096]]})");
  BOOST_TEST_REQUIRE(bad.instance.ok(), bad.instance.status().ToString());
  auto refused = (*bad.instance)->ChangedBlocks("x", "", 0, 10);
  BOOST_TEST(refused.status().Is(Code::kInternal));
  BOOST_TEST(Contains(refused.status().message(), "provider test"), refused.status().message());
  BOOST_TEST(Contains(refused.status().message(), "unsorted"), refused.status().message());
  auto outside = Load(Lib("scripted_provider"),
                      R"({"supports": ["*"], "volume_size": 4096, "changed_ranges": [[0, 8192]]})");
  BOOST_TEST_REQUIRE(outside.instance.ok());
  BOOST_TEST((*outside.instance)->ChangedBlocks("x", "", 0, 10).status().Is(Code::kInternal));

  auto old = Load(Lib("raw_abi_current"));  // a C table without changed_blocks
  BOOST_TEST_REQUIRE(old.instance.ok(), old.instance.status().ToString());
  BOOST_TEST(!(*old.instance)->offers_changed_blocks());
  auto none = (*old.instance)->ChangedBlocks("x", "", 0, 10);
  BOOST_TEST(none.status().Is(Code::kNotImplemented));
  BOOST_TEST(Contains(none.status().message(), "does not report changed blocks"),
             none.status().message());
}

BOOST_AUTO_TEST_CASE(negotiation_rejects_a_table_without_required_events) {
  snapset_provider_ops ops{};
  ops.abi_version = SNAPSET_ABI_VERSION;
  ops.struct_size = sizeof ops;
  snapset_provider_ops out;
  Status s = NegotiateAbi(&ops, "libempty.so", &out);
  BOOST_TEST(Contains(s.message(), "does not implement on_load"), s.message());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(flags)

BOOST_AUTO_TEST_CASE(unknown_flag_bits_are_rejected_by_sdk_providers) {
  auto l = Load(Lib("scripted_provider"), R"({"supports": ["*"]})");
  BOOST_TEST_REQUIRE(l.instance.ok(), l.instance.status().ToString());
  CallOptions o;
  o.flags = 0x80000000u;
  Status s = (*l.instance)->IsVolumeSupported(CowVolume(), 0, o);
  BOOST_TEST(s.IsInvalidArgument());
  BOOST_TEST(Contains(s.message(), "unknown flag bits 0x80000000"), s.message());
  BOOST_TEST((*l.instance)->CommitSnapshots("s", o).IsInvalidArgument());
  BOOST_TEST((*l.instance)->DeleteSnapshot("x", o).IsInvalidArgument());
  BOOST_TEST((*l.instance)->IsVolumeSupported(CowVolume(), 0).ok());
}

BOOST_AUTO_TEST_CASE(unknown_flag_bits_are_rejected_by_c_providers) {
  auto l = Load(Lib("raw_abi_current"));
  BOOST_TEST_REQUIRE(l.instance.ok());
  CallOptions o;
  o.flags = 1;
  BOOST_TEST((*l.instance)->IsVolumeSupported(CowVolume(), 0, o).IsInvalidArgument());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(sdk_base_class)

BOOST_AUTO_TEST_CASE(events_out_of_order_get_bad_state) {
  auto l = Load(Lib("scripted_provider"), R"({"supports": ["*"]})");
  BOOST_TEST_REQUIRE(l.instance.ok());
  auto& p = *l.instance;
  Status s = p->CommitSnapshots("set-a");
  BOOST_TEST(s.IsBadState());
  BOOST_TEST(Contains(s.message(), "commit_snapshots is out of order: set set-a is idle"),
             s.message());
  BOOST_TEST(p->BeginPrepareSnapshot("set-a", "snap-1", CowVolume(), 0).ok());
  BOOST_TEST(p->BeginPrepareSnapshot("set-a", "snap-2", CowVolume(), 0).ok());
  BOOST_TEST(p->PreCommitSnapshots("set-a").IsBadState());  // end_prepare not yet
  BOOST_TEST(p->EndPrepareSnapshots("set-a").ok());
  BOOST_TEST(p->BeginPrepareSnapshot("set-a", "snap-3", CowVolume(), 0).IsBadState());
  BOOST_TEST(p->PreCommitSnapshots("set-a").ok());
  BOOST_TEST(p->CommitSnapshots("set-a").ok());
  BOOST_TEST(p->CommitSnapshots("set-a").IsBadState());  // twice
  BOOST_TEST(p->PostCommitSnapshots("set-a").ok());
  BOOST_TEST(p->PreFinalCommitSnapshots("set-a").ok());
  BOOST_TEST(p->PostFinalCommitSnapshots("set-a").ok());
  // Complete: no abort any more, and the snapshots are listed.
  BOOST_TEST(p->AbortSnapshots("set-a").IsBadState());
  auto list = p->ListSnapshots();
  BOOST_TEST_REQUIRE(list.ok());
  BOOST_TEST(list->size() == 2u);
  auto props = p->GetSnapshotProperties("snap-1");
  BOOST_TEST_REQUIRE(props.ok(), props.status().ToString());
  BOOST_TEST(props->set_id == "set-a");
  BOOST_TEST(props->original_volume == "cow:db");
  BOOST_TEST(props->state == SNAPSET_STATE_COMPLETE);
  BOOST_TEST(p->GetSnapshotProperties("nope").status().IsNotFound());
  auto exposed = p->ExposeSnapshot("snap-1");
  BOOST_TEST_REQUIRE(exposed.ok());
  BOOST_TEST(*exposed == "scripted://snap-1");
  BOOST_TEST(p->DeleteSnapshot("snap-1").ok());
  BOOST_TEST(p->DeleteSnapshot("snap-1").IsNotFound());
}

BOOST_AUTO_TEST_CASE(abort_is_idempotent_and_a_new_set_works_after_it) {
  auto l = Load(Lib("scripted_provider"), R"({"supports": ["*"]})");
  BOOST_TEST_REQUIRE(l.instance.ok());
  auto& p = *l.instance;
  BOOST_TEST(p->AbortSnapshots("never-seen").ok());
  BOOST_TEST(p->BeginPrepareSnapshot("s1", "a", CowVolume(), 0).ok());
  BOOST_TEST(p->EndPrepareSnapshots("s1").ok());
  BOOST_TEST(p->AbortSnapshots("s1").ok());
  BOOST_TEST(p->AbortSnapshots("s1").ok());
  BOOST_TEST(p->PreCommitSnapshots("s1").IsBadState());  // aborted stays aborted
  BOOST_TEST(p->BeginPrepareSnapshot("s2", "b", CowVolume(), 0).ok());
  BOOST_TEST(p->EndPrepareSnapshots("s2").ok());
  BOOST_TEST(p->PreCommitSnapshots("s2").ok());
  BOOST_TEST(p->CommitSnapshots("s2").ok());
  BOOST_TEST(p->PostCommitSnapshots("s2").ok());
  BOOST_TEST(p->PostFinalCommitSnapshots("s2").ok());
  auto list = p->ListSnapshots();
  BOOST_TEST_REQUIRE(list.ok());
  BOOST_TEST(list->size() == 1u);  // only s2's
}

BOOST_AUTO_TEST_CASE(a_failing_abort_can_be_retried) {
  auto l = Load(Lib("scripted_provider"),
                R"({"supports": ["*"], "fail": {"abort_snapshots": "unavailable"}})");
  BOOST_TEST_REQUIRE(l.instance.ok());
  auto& p = *l.instance;
  BOOST_TEST(p->BeginPrepareSnapshot("s1", "a", CowVolume(), 0).ok());
  Status first = p->AbortSnapshots("s1");
  BOOST_TEST(first.Is(Code::kUnavailable));
  BOOST_TEST(first.message() == "scripted failure in abort_snapshots");
  // Not recorded as aborted: the retry reaches the provider again.
  BOOST_TEST(p->AbortSnapshots("s1").Is(Code::kUnavailable));
}

BOOST_AUTO_TEST_CASE(a_provider_that_throws_is_contained) {
  auto l = Load(Lib("scripted_provider"),
                R"({"supports": ["*"], "throw": ["is_volume_supported", "commit_snapshots"]})");
  BOOST_TEST_REQUIRE(l.instance.ok());
  auto& p = *l.instance;
  Status s = p->IsVolumeSupported(CowVolume(), 0);
  BOOST_TEST(s.Is(Code::kInternal));
  BOOST_TEST(Contains(s.message(),
                      "is_volume_supported: provider threw an exception: scripted exception in "
                      "is_volume_supported"),
             s.message());
  BOOST_TEST(p->BeginPrepareSnapshot("s", "a", CowVolume(), 0).ok());
  BOOST_TEST(p->EndPrepareSnapshots("s").ok());
  BOOST_TEST(p->PreCommitSnapshots("s").ok());
  BOOST_TEST(p->CommitSnapshots("s").Is(Code::kInternal));
  // The process and the instance live on; the set can be aborted.
  BOOST_TEST(p->AbortSnapshots("s").ok());
}

BOOST_AUTO_TEST_CASE(error_codes_and_messages_cross_the_abi) {
  auto l = Load(Lib("scripted_provider"),
                R"({"supports": [], "not_supported_reason": "no array holds this LUN",
                    "fail": {"begin_prepare_snapshot": "max-snapshots"}})");
  BOOST_TEST_REQUIRE(l.instance.ok());
  Status s = (*l.instance)->IsVolumeSupported(CowVolume(), 0);
  BOOST_TEST(s.IsVolumeNotSupported());
  BOOST_TEST(s.message() == "no array holds this LUN");
  Status b = (*l.instance)->BeginPrepareSnapshot("s", "a", CowVolume(), 0);
  BOOST_TEST(b.Is(Code::kMaxSnapshots));
}

BOOST_AUTO_TEST_SUITE_END()

// Plugin side of the minor-version promise: a provider built with this SDK
// called by an older host whose table lacks members (here set_error) must not
// touch them.
BOOST_AUTO_TEST_CASE(sdk_provider_respects_a_shorter_host_table) {
  void* dl = ::dlopen(Lib("scripted_provider").c_str(), RTLD_NOW | RTLD_LOCAL);
  BOOST_TEST_REQUIRE(dl != nullptr);
  auto entry = reinterpret_cast<snapset_provider_entry_fn>(::dlsym(dl, "snapset_provider_entry"));
  BOOST_TEST_REQUIRE(entry != nullptr);
  const snapset_provider_ops* ops = entry();

  static std::atomic<int> logged{0};
  snapset_host host{};
  host.abi_version = SNAPSET_ABI_MAKE_VERSION(1, 0);
  host.struct_size = offsetof(snapset_host, set_error);  // no set_error
  host.log = [](snapset_host_context*, int32_t, const char*) { logged++; };
  host.deadline_ns = [](snapset_call*) { return INT64_MAX; };
  host.is_cancelled = [](snapset_call*) { return 0; };
  // A member beyond struct_size that must never be called:
  host.set_error = [](snapset_call*, const char*) { std::abort(); };

  snapset_provider* inst = nullptr;
  BOOST_TEST(ops->on_load(&host, nullptr, 0, R"({"supports": []})", &inst) == SNAPSET_OK);
  BOOST_TEST(logged.load() == 1);  // "scripted provider loaded"
  Volume v = CowVolume();
  snapset_volume raw{};
  raw.struct_size = sizeof raw;
  raw.kind = SNAPSET_VOLUME_COW;
  raw.name = v.name.c_str();
  BOOST_TEST(ops->is_volume_supported(inst, nullptr, 0, &raw, 0) ==
             SNAPSET_E_VOLUME_NOT_SUPPORTED);
  BOOST_TEST(ops->commit_snapshots(inst, nullptr, 1, "s") == SNAPSET_E_INVALID_ARGUMENT);
  ops->on_unload(inst, 0);
  ::dlclose(dl);
}
