#include "providers/iscsi/array_dialect.hpp"

namespace snapset::iscsi {

std::string ArrayExposure::Url(size_t i) const {
  if (i >= luns.size()) return "";
  return "iscsi://" + portal + "/" + target_iqn + "/" + std::to_string(luns[i]);
}

}  // namespace snapset::iscsi
