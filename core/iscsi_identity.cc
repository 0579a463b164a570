#include "core/iscsi_identity.hpp"

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <snapset/iscsi_lun.hpp>
#include <string>
#include <utility>

namespace snapset {
namespace {

// Said when an array refuses the log-in: how the CLI's user changes the name.
constexpr char kRefusedHint[] =
    "map it, or give snapset another name with --initiator-iqn or SNAPSET_INITIATOR_IQN";

}  // namespace

std::string HostInitiatorIqn() {
  if (const char* env = std::getenv("SNAPSET_INITIATOR_IQN"); env && env[0] != '\0') return env;
  std::ifstream in("/etc/iscsi/initiatorname.iscsi");
  std::string line;
  while (std::getline(in, line)) {
    constexpr std::string_view kKey = "InitiatorName=";
    if (line.rfind(kKey, 0) != 0) continue;
    std::string name = line.substr(kKey.size());
    while (!name.empty() && std::isspace(static_cast<unsigned char>(name.back()))) name.pop_back();
    if (!name.empty()) return name;
  }
  return kDefaultInitiatorIqn;
}

// The wire work is the iSCSI LUN toolkit's (include/snapset/iscsi_lun.hpp),
// the same the iSCSI provider checks exposed LUNs with. This adds what the
// host's volume names allow: CHAP credentials in the URL.
Result<Volume> ResolveIscsiVolume(std::string_view url, const IscsiOptions& options) {
  const auto deadline = std::chrono::steady_clock::now() + options.timeout;
  if (options.timeout <= std::chrono::milliseconds::zero()) {
    return Status::InvalidArgument("iSCSI timeout must be positive");
  }
  if (options.initiator_iqn.empty()) {
    return Status::InvalidArgument("iSCSI initiator name is empty");
  }
  Result<iscsi::LunUrl> parsed = iscsi::ParseLunUrl(url, iscsi::UrlCredentials::kAllowed);
  if (!parsed.ok()) return parsed.status();
  iscsi::LunLogin login;
  login.initiator_iqn = options.initiator_iqn;
  login.chap_user = parsed->chap_user;
  login.chap_password = parsed->chap_password;
  login.target_user = parsed->target_user;
  login.target_password = parsed->target_password;
  login.refused_hint = kRefusedHint;
  Result<iscsi::LunIdentity> lun = iscsi::ProbeLun(*parsed, login, deadline);
  if (!lun.ok()) return lun.status();

  Volume volume;
  volume.kind = VolumeKind::kIscsi;
  volume.name = parsed->canonical;
  volume.device_path = parsed->canonical;
  volume.size_bytes = lun->capacity_bytes;
  volume.block_size = lun->block_size;
  volume.identity.designators = std::move(lun->designators);
  volume.identity.serial = std::move(lun->serial);
  return volume;
}

}  // namespace snapset
