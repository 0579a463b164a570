#include "core/volume_abi.hpp"

namespace snapset {

namespace {
const char* OrNull(const std::string& s) { return s.empty() ? nullptr : s.c_str(); }
}  // namespace

VolumeAbiView::VolumeAbiView(const Volume& v) : naa_(v.identity.Naa()) {
  designators_.reserve(v.identity.designators.size());
  for (const auto& d : v.identity.designators) {
    snapset_designator c{};
    c.type = d.type;
    c.code_set = d.code_set;
    c.association = d.association;
    c.length = static_cast<uint32_t>(d.value.size());
    c.value = d.value.data();
    designators_.push_back(c);
  }
  raw_.struct_size = sizeof raw_;
  raw_.kind = static_cast<uint32_t>(v.kind);
  raw_.name = v.name.c_str();
  raw_.device_path = OrNull(v.device_path);
  raw_.size_bytes = v.size_bytes;
  raw_.block_size = v.block_size;
  raw_.designator_count = static_cast<uint32_t>(designators_.size());
  raw_.mount_point = OrNull(v.mount_point);
  raw_.filesystem = OrNull(v.filesystem);
  raw_.naa = OrNull(naa_);
  raw_.serial = OrNull(v.identity.serial);
  raw_.designators = designators_.empty() ? nullptr : designators_.data();
}

}  // namespace snapset
