#include "tests/mock-array/connections.hpp"

#include <boost/test/unit_test.hpp>

namespace snapset::test {

std::string ConnectionBody(const ConnectionRequest& request) {
  std::string body = "{";
  if (!request.name.empty()) body += R"("Name":")" + request.name + R"(",)";
  body += R"("VolumeInfo":[)";
  for (size_t i = 0; i < request.volumes.size(); ++i) {
    body += std::string(i == 0 ? "" : ",") + R"({"Volume":{"@odata.id":")" + request.volumes[i] +
            R"("})" + (request.read_only ? R"(,"AccessCapabilities":["Read"])" : "") + "}";
  }
  body += "]";
  if (!request.chap_user.empty()) {
    body += R"(,"ConnectionKeys":{"CHAP":{"CHAPUsername":")" + request.chap_user +
            R"(","CHAPPassword":")" + request.chap_password + R"("}})";
  }
  body += R"(,"Oem":{"Snapset":{"InitiatorIqn":")" + request.initiator + R"("}}})";
  return body;
}

Connection ConnectionFromJson(const rapidjson::Value& body) {
  Connection c;
  c.path = body["@odata.id"].GetString();
  c.target = body["Oem"]["Snapset"]["IscsiTarget"].GetString();
  const std::string portal = body["Oem"]["Snapset"]["Portal"].GetString();
  for (const auto& info : body["VolumeInfo"].GetArray()) {
    c.urls.push_back("iscsi://" + portal + "/" + c.target + "/" +
                     std::to_string(info["LUN"].GetInt()));
  }
  return c;
}

Connection Connect(const MockArrayProcess& array, const std::string& token,
                   const ConnectionRequest& request) {
  HttpResponse r = Http("POST", array.Url(kConnections), ConnectionBody(request), token);
  BOOST_REQUIRE_MESSAGE(r.status == 201, r.status << " " << r.body);
  rapidjson::Document doc = r.Json();
  return ConnectionFromJson(doc);
}

Connection GetConnection(const MockArrayProcess& array, const std::string& token,
                         const std::string& path) {
  HttpResponse r = Http("GET", array.Url(path), "", token);
  BOOST_REQUIRE_MESSAGE(r.status == 200, r.status << " " << r.body);
  rapidjson::Document doc = r.Json();
  return ConnectionFromJson(doc);
}

}  // namespace snapset::test
