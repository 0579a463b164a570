// What every route of the mock array shares: the resource paths, JSON
// replies written with RapidJSON, and Redfish error bodies (error.code,
// error.message, @Message.ExtendedInfo) in the Base message registry.
#ifndef SNAPSET_PROVIDERS_MOCK_ARRAY_REDFISH_JSON_HPP
#define SNAPSET_PROVIDERS_MOCK_ARRAY_REDFISH_JSON_HPP

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <functional>
#include <set>
#include <string>
#include <vector>

namespace httplib {
struct Request;
struct Response;
}  // namespace httplib

namespace snapset::mock {

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

inline constexpr char kStorageId[] = "array";
inline constexpr char kPoolId[] = "pool";
inline constexpr char kSessions[] = "/redfish/v1/SessionService/Sessions";

std::string StoragePath();  // /redfish/v1/Storage/array
std::string PoolPath();
std::string VolumesPath();
std::string GroupsPath();

// Writes a JSON document with `body` and sets it as the response.
void SendJson(httplib::Response& res, int status, const std::function<void(JsonWriter&)>& body);
void Key(JsonWriter& w, const char* key, const std::string& value);
// "key": {"@odata.id": path}
void Link(JsonWriter& w, const char* key, const std::string& path);

// A 200 with a Redfish resource collection: @odata.id `path`, @odata.type
// `type` (e.g. "#VolumeCollection.VolumeCollection"), Name, and Members as
// links to `members`, with their count.
void SendCollection(httplib::Response& res, const std::string& path, const std::string& type,
                    const std::string& name, const std::vector<std::string>& members);

// A Redfish error body: error.code, error.message and one ExtendedInfo
// message naming the properties at fault.
void SendError(httplib::Response& res, int status, const std::string& message_id,
               const std::string& message, const std::vector<std::string>& properties = {});

// Parses the body as a JSON object whose members are all in `allowed`
// (`what` names the object in the error), or sends a 400 and returns false.
bool ParseObject(const httplib::Request& req, httplib::Response& res, rapidjson::Document& doc,
                 const std::set<std::string>& allowed, const std::string& what);

// ReplicaType is present and "Snapshot", the one kind the mock makes;
// else a 400 is sent.
bool SnapshotTypeGiven(const rapidjson::Document& doc, httplib::Response& res);

// 1 to 64 of [A-Za-z0-9._-]: a volume, snapshot or group name.
bool ValidName(const std::string& name);

// True when the request's storage id (matches[1]) is this array's; else a
// 404 is sent.
bool KnownStorage(const httplib::Request& req, httplib::Response& res);

}  // namespace snapset::mock

#endif  // SNAPSET_PROVIDERS_MOCK_ARRAY_REDFISH_JSON_HPP
