// SPDX-License-Identifier: Apache-2.0
// The smallest provider over the iSCSI LUN toolkit: enough to prove that an
// installed snapset builds one (out_of_tree_test.sh), not a real provider.
// It takes an iscsi:// volume when the LUN, probed on the wire, answers with
// the NAA the host resolved.
#include <algorithm>
#include <chrono>
#include <snapset/iscsi_lun.hpp>
#include <snapset/provider.hpp>

namespace {

using snapset::Call;
using snapset::Status;
using snapset::VolumeRef;

class OotIscsiProvider final : public snapset::Provider {
 public:
  using Provider::Provider;
  Status IsVolumeSupported(const Call& call, const VolumeRef& volume, uint32_t) override {
    snapset::Result<snapset::iscsi::LunUrl> url = snapset::iscsi::ParseLunUrl(volume.name());
    if (!url.ok()) return Status::VolumeNotSupported("not an iSCSI LUN");
    snapset::iscsi::LunLogin login;
    login.initiator_iqn = "iqn.2026-11.com.example:oot-provider";
    const auto deadline =
        std::min(call.deadline(), std::chrono::steady_clock::now() + std::chrono::seconds(5));
    snapset::Result<snapset::iscsi::LunIdentity> lun =
        snapset::iscsi::ProbeLun(*url, login, deadline);
    if (!lun.ok()) return Status::VolumeNotSupported(lun.status().message());
    if (lun->naa != volume.naa()) return Status::VolumeNotSupported("another array's LUN");
    return Status::Ok();
  }
  Status BeginPrepareSnapshot(const Call&, std::string_view, std::string_view, const VolumeRef&,
                              uint32_t) override {
    return Status::NotImplemented("example");
  }
  Status CommitSnapshots(const Call&, std::string_view) override {
    return Status::NotImplemented("example");
  }
  Status AbortSnapshots(const Call&, std::string_view) override { return Status::Ok(); }
  Status DeleteSnapshot(const Call&, std::string_view) override { return Status::Ok(); }
  Status ListSnapshots(const Call&, std::vector<snapset::SnapshotInfo>*) override {
    return Status::Ok();
  }
};

}  // namespace

SNAPSET_PROVIDER(OotIscsiProvider)
