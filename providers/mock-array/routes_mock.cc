#include <httplib.h>

#include "providers/mock-array/mock_array.hpp"

namespace snapset::mock {

void MockArray::RegisterMockRoutes(httplib::Server& server) { static_cast<void>(server); }

bool MockArray::InjectFault(const std::string& operation, const httplib::Request& req,
                            httplib::Response& res) {
  static_cast<void>(operation);
  static_cast<void>(req);
  static_cast<void>(res);
  return false;
}

}  // namespace snapset::mock
