// Presents a Volume to a provider as the C struct snapset_volume. The view
// owns the designator array and borrows the Volume's strings, so it must not
// outlive the Volume.
#ifndef SNAPSET_CORE_VOLUME_ABI_HPP
#define SNAPSET_CORE_VOLUME_ABI_HPP

#include <snapset/provider.h>

#include <string>
#include <vector>

#include "core/volume.hpp"

namespace snapset {

class VolumeAbiView {
 public:
  explicit VolumeAbiView(const Volume& volume);
  VolumeAbiView(const VolumeAbiView&) = delete;
  VolumeAbiView& operator=(const VolumeAbiView&) = delete;
  const snapset_volume* get() const { return &raw_; }

 private:
  std::string naa_;
  std::vector<snapset_designator> designators_;
  snapset_volume raw_{};
};

}  // namespace snapset

#endif  // SNAPSET_CORE_VOLUME_ABI_HPP
