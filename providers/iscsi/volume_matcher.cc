#include "providers/iscsi/volume_matcher.hpp"

#include <algorithm>
#include <cctype>
#include <future>
#include <utility>

namespace snapset::iscsi {
namespace {

std::string Quoted(const std::string& s) { return "\"" + s + "\""; }

std::string Plural(size_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

const ArrayVolume* ById(const std::vector<ArrayVolume>& inventory, const std::string& id) {
  for (const ArrayVolume& v : inventory) {
    if (v.id == id) return &v;
  }
  return nullptr;
}

}  // namespace

std::string NormalizeNaa(std::string_view naa) {
  if (naa.size() > 4 && (naa.substr(0, 4) == "naa." || naa.substr(0, 4) == "NAA.")) {
    naa.remove_prefix(4);
  }
  if (naa.size() != 16 && naa.size() != 32) return "";
  std::string out;
  for (unsigned char c : naa) {
    if (!std::isxdigit(c)) return "";
    out += static_cast<char>(std::tolower(c));
  }
  return out;
}

VolumeMatcher::VolumeMatcher(std::vector<NamedDialect> arrays,
                             std::chrono::milliseconds refresh_timeout)
    : refresh_timeout_(refresh_timeout) {
  for (NamedDialect& a : arrays) caches_.push_back(Cache{std::move(a)});
}

Result<VolumeMatch> VolumeMatcher::Find(std::string_view naa) {
  const std::string wanted = NormalizeNaa(naa);
  if (wanted.empty()) {
    return Status::InvalidArgument("\"" + std::string(naa) +
                                   "\" is not an NAA: expected 16 or 32 hex digits, as VPD page "
                                   "0x83 reports them");
  }
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Hit> hits = Search(wanted);
  if (hits.empty()) {
    RefreshAll();
    hits = Search(wanted);
  }
  return Answer(wanted, hits);
}

void VolumeMatcher::Forget(const std::string& array) {
  std::lock_guard<std::mutex> lock(mu_);
  for (Cache& c : caches_) {
    if (c.array.name == array) {
      c.loaded = false;
      c.inventory.clear();
    }
  }
}

int VolumeMatcher::refreshes(const std::string& array) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const Cache& c : caches_) {
    if (c.array.name == array) return c.refreshes;
  }
  return -1;
}

std::vector<VolumeMatcher::Hit> VolumeMatcher::Search(const std::string& naa) const {
  std::vector<Hit> hits;
  for (const Cache& c : caches_) {
    for (const ArrayVolume& v : c.inventory) {
      if (v.naa == naa) hits.push_back({&c, &v});
    }
  }
  return hits;
}

void VolumeMatcher::RefreshAll() {
  // The arrays are asked in parallel (each dialect is its own object, used
  // by one thread), so one slow array costs its timeout once, not once per
  // array behind it.
  ArrayCall policy;
  policy.deadline = std::chrono::steady_clock::now() + refresh_timeout_;
  std::vector<std::future<Result<std::vector<ArrayVolume>>>> answers;
  for (Cache& c : caches_) {
    ArrayDriver* dialect = c.array.dialect;
    answers.push_back(
        std::async(std::launch::async, [dialect, policy] { return dialect->Inventory(policy); }));
  }
  for (size_t i = 0; i < caches_.size(); ++i) {
    Cache& c = caches_[i];
    Result<std::vector<ArrayVolume>> inventory = answers[i].get();
    ++c.refreshes;
    if (inventory.ok()) {
      c.inventory = std::move(*inventory);
      c.loaded = true;
      c.last_error = Status::Ok();
    } else {
      // The previous inventory stays: still the best knowledge there is.
      c.last_error = inventory.status();
    }
  }
}

Result<VolumeMatch> VolumeMatcher::Answer(const std::string& naa,
                                          const std::vector<Hit>& hits) const {
  std::vector<Hit> volumes;
  for (const Hit& h : hits) {
    if (!h.volume->is_snapshot()) volumes.push_back(h);
  }
  if (volumes.size() > 1) {
    std::string where;
    for (const Hit& h : volumes) {
      where += (where.empty() ? "" : " and ") + Quoted(h.cache->array.name);
    }
    return Status::BadState("NAA " + naa + " is held by arrays " + where +
                            ": an NAA names one logical unit, so one array is configured twice "
                            "under different names; remove one of them from the config");
  }
  if (volumes.size() == 1) {
    const Hit& h = volumes.front();
    VolumeMatch match{h.cache->array.name, *h.volume, ""};
    match.reason = "array " + Quoted(h.cache->array.name) + " holds NAA " + naa + " as volume " +
                   Quoted(h.volume->name) + " (" + h.volume->id + ")";
    return match;
  }
  if (!hits.empty()) {
    const Hit& h = hits.front();
    const ArrayVolume* source = ById(h.cache->inventory, h.volume->source_id);
    return Status::VolumeNotSupported(
        "array " + Quoted(h.cache->array.name) + " holds NAA " + naa + " as snapshot " +
        Quoted(h.volume->name) + " of volume " +
        (source ? Quoted(source->name) + " (" + source->id + ")" : h.volume->source_id) +
        "; a snapshot is not a source for a new snapshot: snapshot its source volume instead");
  }
  // Not found, but an array could not be asked: it may hold the volume, so
  // the answer is "cannot tell now", not "not supported" (which would let a
  // lower provider take an array LUN while its array is down).
  const bool all_asked = std::all_of(caches_.begin(), caches_.end(),
                                     [](const Cache& c) { return c.last_error.ok(); });
  const std::string why = "no configured array holds NAA " + naa + " as a volume; " + LookedAt();
  return all_asked ? Status::VolumeNotSupported(why) : Status::Unavailable(why);
}

std::string VolumeMatcher::LookedAt() const {
  std::string out = "looked at ";
  for (size_t i = 0; i < caches_.size(); ++i) {
    const Cache& c = caches_[i];
    out += (i == 0 ? "" : ", ") + Quoted(c.array.name) + " (";
    if (!c.last_error.ok()) {
      out += (c.last_error.Is(Code::kUnavailable) ? "unreachable: " : "failed: ") +
             c.last_error.message();
      if (c.loaded) out += "; searched its inventory as last seen";
    } else {
      size_t snapshots = 0;
      for (const ArrayVolume& v : c.inventory) snapshots += v.is_snapshot() ? 1 : 0;
      out += Plural(c.inventory.size() - snapshots, "volume", "volumes") + ", " +
             Plural(snapshots, "snapshot", "snapshots");
    }
    out += ")";
  }
  return out;
}

}  // namespace snapset::iscsi
