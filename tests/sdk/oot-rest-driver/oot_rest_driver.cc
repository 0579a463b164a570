// SPDX-License-Identifier: Apache-2.0
// The smallest array driver over the REST toolkit: enough to prove that an
// installed snapset builds one (out_of_tree_test.sh), not an array's API.
#include <memory>
#include <snapset/array.hpp>
#include <snapset/rest.hpp>

namespace {

using snapset::ArrayCall;
using snapset::Result;
using snapset::Status;

class OotRestDriver final : public snapset::ArrayDriver {
 public:
  using ArrayDriver::ArrayDriver;
  Status Open(std::string_view config_json) override {
    snapset::rest::RestEndpoint e;
    e.base_url = std::string(config_json);
    e.login.scheme = snapset::rest::RestLogin::Scheme::kBasic;
    session_ = std::make_unique<snapset::rest::RestSession>(e);
    return Status::Ok();
  }
  Result<std::vector<snapset::ArrayVolume>> Inventory(const ArrayCall& call) override {
    Result<snapset::rest::RestResponse> r = session_->Call("GET", "/volumes", "", call);
    if (!r.ok()) return r.status();
    return std::vector<snapset::ArrayVolume>{};
  }
  Result<std::vector<snapset::ArrayGroup>> Groups(const ArrayCall&) override {
    return std::vector<snapset::ArrayGroup>{};
  }
  Result<snapset::ArrayGroup> CreateGroup(const std::string&, const std::vector<std::string>&,
                                          const ArrayCall&) override {
    return Status::NotImplemented("example");
  }
  Status DeleteGroup(const std::string&, const ArrayCall&) override { return Status::Ok(); }
  Result<std::vector<snapset::ArrayVolume>> SnapshotGroup(const snapset::SnapshotRequest&,
                                                          const ArrayCall&) override {
    return Status::NotImplemented("example");
  }
  Status DeleteSnapshot(const std::string&, const ArrayCall&) override { return Status::Ok(); }
  Result<snapset::ArrayExposure> Expose(const snapset::ExposeRequest&, const ArrayCall&) override {
    return Status::NotImplemented("example");
  }
  Status Unexpose(const std::string&, const ArrayCall&) override { return Status::Ok(); }
  Result<std::vector<snapset::ArrayExposure>> Exposures(const ArrayCall&) override {
    return std::vector<snapset::ArrayExposure>{};
  }
  Status Settle(const ArrayCall&) override { return Status::Ok(); }

 private:
  std::unique_ptr<snapset::rest::RestSession> session_;
};

}  // namespace

SNAPSET_ARRAY_DRIVER(OotRestDriver)
