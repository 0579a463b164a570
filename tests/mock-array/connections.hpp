// Test helpers for exposure: map volumes to an initiator through
// POST /redfish/v1/Fabrics/iSCSI/Connections and get the iscsi:// URL of
// each LUN, as a host would be told.
#ifndef SNAPSET_TESTS_MOCK_ARRAY_CONNECTIONS_HPP
#define SNAPSET_TESTS_MOCK_ARRAY_CONNECTIONS_HPP

#include <string>
#include <vector>

#include "tests/mock-array/iscsi_lun.hpp"
#include "tests/mock-array/mock_array_process.hpp"

namespace snapset::test {

inline constexpr char kConnections[] = "/redfish/v1/Fabrics/iSCSI/Connections";

struct ConnectionRequest {
  std::vector<std::string> volumes;  // @odata.id of each, mapped as LUN 1, 2, ...
  std::string initiator = kTestInitiator;
  std::string chap_user;  // empty: no CHAP
  std::string chap_password;
  bool read_only = false;  // AccessCapabilities ["Read"] instead of the default
  std::string name;        // empty: the array names it
};

struct Connection {
  std::string path;               // its @odata.id
  std::string target;             // IQN of its iSCSI target
  std::vector<std::string> urls;  // iscsi://PORTAL/TARGET/LUN, in VolumeInfo order
};

// The JSON body for `request`.
std::string ConnectionBody(const ConnectionRequest& request);
// POSTs it; fails the test unless the array answers 201.
Connection Connect(const MockArrayProcess& array, const std::string& token,
                   const ConnectionRequest& request);
// GETs a connection (its portal changes when the array restarts).
Connection GetConnection(const MockArrayProcess& array, const std::string& token,
                         const std::string& path);
// Parses a Connection body.
Connection ConnectionFromJson(const rapidjson::Value& body);

}  // namespace snapset::test

#endif  // SNAPSET_TESTS_MOCK_ARRAY_CONNECTIONS_HPP
