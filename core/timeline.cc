#include "core/timeline.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <ctime>

namespace snapset {

namespace {
int64_t ClockNs(clockid_t clock) {
  timespec ts;
  clock_gettime(clock, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}
}  // namespace

int64_t Timeline::NowNs() { return ClockNs(CLOCK_MONOTONIC); }

Timeline::Timeline()
    : start_realtime_ns_(ClockNs(CLOCK_REALTIME)), start_monotonic_ns_(NowNs()) {
  events_.reserve(256);
}

void Timeline::Record(TimelineEvent e) {
  std::lock_guard<std::mutex> lock(mu_);
  events_.push_back(std::move(e));
}

void Timeline::Begin(const std::string& lane, const std::string& step) {
  Record({NowNs(), TimelineKind::kBegin, lane, step, ""});
}

void Timeline::End(const std::string& lane, const std::string& step, const Status& outcome) {
  Record({NowNs(), TimelineKind::kEnd, lane, step, outcome.ok() ? "ok" : outcome.ToString()});
}

void Timeline::Instant(const std::string& lane, const std::string& step,
                       const std::string& detail) {
  Record({NowNs(), TimelineKind::kInstant, lane, step, detail});
}

std::vector<TimelineEvent> Timeline::events() const {
  std::lock_guard<std::mutex> lock(mu_);
  return events_;
}

TimelineData Timeline::data() const {
  std::lock_guard<std::mutex> lock(mu_);
  return TimelineData{start_realtime_ns_, start_monotonic_ns_, events_};
}

std::string TimelineData::ToJson() const {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("start_realtime_ns");
  w.Int64(start_realtime_ns);
  w.Key("start_monotonic_ns");
  w.Int64(start_monotonic_ns);
  w.Key("events");
  w.StartArray();
  for (const auto& e : events) {
    w.StartObject();
    w.Key("t_ns");
    w.Int64(e.t_ns);
    w.Key("kind");
    w.String(e.kind == TimelineKind::kBegin ? "begin"
             : e.kind == TimelineKind::kEnd ? "end"
                                            : "instant");
    w.Key("lane");
    w.String(e.lane.c_str(), rapidjson::SizeType(e.lane.size()));
    w.Key("step");
    w.String(e.step.c_str(), rapidjson::SizeType(e.step.size()));
    w.Key("detail");
    w.String(e.detail.c_str(), rapidjson::SizeType(e.detail.size()));
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

Result<TimelineData> TimelineData::FromJson(const std::string& json) {
  rapidjson::Document d;
  d.Parse(json.c_str(), json.size());
  auto bad = [] { return Status::Internal("stored timeline is not valid timeline JSON"); };
  if (d.HasParseError() || !d.IsObject() || !d.HasMember("events") || !d["events"].IsArray() ||
      !d.HasMember("start_realtime_ns") || !d["start_realtime_ns"].IsInt64() ||
      !d.HasMember("start_monotonic_ns") || !d["start_monotonic_ns"].IsInt64())
    return bad();
  TimelineData t;
  t.start_realtime_ns = d["start_realtime_ns"].GetInt64();
  t.start_monotonic_ns = d["start_monotonic_ns"].GetInt64();
  for (const auto& e : d["events"].GetArray()) {
    if (!e.IsObject() || !e.HasMember("t_ns") || !e["t_ns"].IsInt64() || !e.HasMember("kind") ||
        !e["kind"].IsString() || !e.HasMember("lane") || !e["lane"].IsString() ||
        !e.HasMember("step") || !e["step"].IsString() || !e.HasMember("detail") ||
        !e["detail"].IsString())
      return bad();
    std::string kind = e["kind"].GetString();
    TimelineEvent ev;
    ev.t_ns = e["t_ns"].GetInt64();
    ev.kind = kind == "begin" ? TimelineKind::kBegin
              : kind == "end" ? TimelineKind::kEnd
                              : TimelineKind::kInstant;
    ev.lane = e["lane"].GetString();
    ev.step = e["step"].GetString();
    ev.detail = e["detail"].GetString();
    t.events.push_back(std::move(ev));
  }
  return t;
}

}  // namespace snapset
