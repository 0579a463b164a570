#include <httplib.h>

#include "providers/mock-array/mock_array.hpp"

namespace snapset::mock {

void MockArray::RegisterFabricRoutes(httplib::Server& server) { static_cast<void>(server); }

}  // namespace snapset::mock
