// SPDX-License-Identifier: Apache-2.0
#include <algorithm>
#include <snapset/rest.hpp>
#include <thread>

namespace snapset::rest {

Result<RestResponse> PollJob(RestSession& session, const std::string& what, const std::string& path,
                             std::chrono::milliseconds first_wait, const ArrayCall& call,
                             const std::function<bool(const RestResponse&)>& finished,
                             const JobPolling& polling) {
  auto done = [&](const RestResponse& r) { return finished ? finished(r) : r.status != 202; };
  auto bounded = [&](std::chrono::milliseconds wait) { return std::min(wait, polling.max_wait); };
  // The last poll leaves `margin` for its own round trip.
  const Clock::time_point last_poll =
      call.deadline == Clock::time_point::max() ? call.deadline : call.deadline - polling.margin;
  std::chrono::milliseconds wait = bounded(first_wait);
  for (;;) {
    const Clock::time_point now = Clock::now();
    if (now >= last_poll) {
      return call.DeadlinePassed(what + ": the array's job (" + session.base_url() + path +
                                 ") was still running at the deadline");
    }
    Clock::duration sleep = wait;
    if (last_poll - now < wait) {
      sleep = std::min<Clock::duration>(polling.near_deadline_poll, last_poll - now);
    }
    std::this_thread::sleep_for(sleep);
    Result<RestResponse> r = session.Call("GET", path, "", call);
    if (!r.ok()) return r.status().WithContext(what + ": polling its job, still unfinished");
    if (done(*r)) return r;
    wait = bounded(r->RetryAfter(polling.default_wait));
  }
}

}  // namespace snapset::rest
