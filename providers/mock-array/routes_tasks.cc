#include <httplib.h>

#include "providers/mock-array/mock_array.hpp"

namespace snapset::mock {

void MockArray::RegisterTaskRoutes(httplib::Server& server) { static_cast<void>(server); }

bool MockArray::RunsAsTask(const std::string& operation, const httplib::Request& req) {
  static_cast<void>(operation);
  static_cast<void>(req);
  return false;
}

void MockArray::StartTask(const std::string& operation, const std::string& pattern,
                          const Handler& handler, const httplib::Request& req,
                          httplib::Response& res) {
  static_cast<void>(operation);
  static_cast<void>(pattern);
  handler(req, res);
}

}  // namespace snapset::mock
