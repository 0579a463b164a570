// SPDX-License-Identifier: Apache-2.0
#include "core/holdings_audit.hpp"

#include <map>
#include <set>

namespace snapset {

namespace {

// What the catalog says of the ids it names.
struct CatalogView {
  std::map<std::string, const SetRecord*> sets;                   // set id -> set
  std::map<std::string, const SetRecord*> set_of_snapshot;        // planned or complete
  std::map<std::string, const SnapshotRecord*> snapshot_records;  // same
};

CatalogView View(const std::vector<SetRecord>& catalog) {
  CatalogView v;
  for (const SetRecord& set : catalog) {
    v.sets[set.set_id] = &set;
    for (const SnapshotRecord& s : set.snapshots) {
      v.set_of_snapshot[s.snapshot_id] = &set;
      v.snapshot_records[s.snapshot_id] = &s;
    }
  }
  return v;
}

// Who owns what `set` made, if not the user: "in-progress" (the set is
// being created), "abort-incomplete", or "" (nobody: an orphan).
std::string Owner(const SetRecord* set) {
  if (!set) return "";
  if (set->state == SetState::kCreating) return "in-progress";
  if (set->state == SetState::kAbortIncomplete) return "abort-incomplete";
  return "";
}

VerifyFinding LeftByIncompleteAbort(VerifyFinding f, const std::string& set_id) {
  f.problem = "left by the incomplete abort of set " + set_id +
              ", which every snapset command retries (see `snapset show " + set_id + "`)";
  f.orphan = false;
  return f;
}

}  // namespace

std::vector<VerifyFinding> AuditHoldings(const std::vector<ProviderHoldings>& providers,
                                         const std::vector<SetRecord>& catalog_before,
                                         const std::vector<SetRecord>& catalog_after) {
  const CatalogView before = View(catalog_before);
  const CatalogView after = View(catalog_after);
  std::vector<VerifyFinding> findings;
  std::set<std::string> registered;

  for (const ProviderHoldings& p : providers) {
    registered.insert(p.provider_id);
    // Snapshots of sets complete before and after the listing, on p.
    std::set<std::string> expected;
    for (const auto& [id, set] : before.set_of_snapshot) {
      if (set->state != SetState::kComplete) continue;
      auto now = after.set_of_snapshot.find(id);
      if (now == after.set_of_snapshot.end() || now->second->state != SetState::kComplete) continue;
      if (before.snapshot_records.at(id)->provider_id == p.provider_id) expected.insert(id);
    }
    if (!p.snapshots_listed.ok()) {
      for (const auto& id : expected)
        findings.push_back(
            {id, p.provider_name, "cannot verify: " + p.snapshots_listed.ToString()});
    } else {
      const std::set<std::string> listed(p.snapshot_ids.begin(), p.snapshot_ids.end());
      for (const auto& id : expected) {
        const std::string& lost = before.snapshot_records.at(id)->lost_reason;
        const std::string known = lost.empty() ? "" : " (recorded lost: " + lost + ")";
        if (!listed.count(id)) {
          findings.push_back(
              {id, p.provider_name, "in the catalog but not on the provider" + known});
        } else if (auto bad = p.invalid.find(id); bad != p.invalid.end()) {
          findings.push_back(
              {id, p.provider_name, "on the provider, but it cannot be read: " + bad->second});
        }
      }
      for (const auto& id : listed) {
        auto owner = after.set_of_snapshot.find(id);
        const SetRecord* set = owner == after.set_of_snapshot.end() ? nullptr : owner->second;
        VerifyFinding f{id, p.provider_name, "on the provider but not in the catalog"};
        f.set_id = set ? set->set_id : "";
        if (set && set->state == SetState::kComplete) continue;
        const std::string why = Owner(set);
        if (why == "in-progress") continue;
        if (why == "abort-incomplete") {
          findings.push_back(LeftByIncompleteAbort(f, set->set_id));
          continue;
        }
        if (set)
          f.problem =
              "on the provider, but its set " + set->set_id + " is " + SetStateName(set->state);
        f.orphan = true;
        findings.push_back(f);
      }
    }

    if (p.objects_listed.Is(Code::kNotImplemented)) continue;
    if (!p.objects_listed.ok()) {
      VerifyFinding f{"", p.provider_name,
                      "cannot look for leftovers: " + p.objects_listed.ToString()};
      f.kind = "object";
      findings.push_back(f);
      continue;
    }
    for (const ProviderObject& o : p.objects) {
      VerifyFinding f{o.snapshot_id, p.provider_name, ""};
      f.kind = o.kind;
      f.name = o.name;
      f.location = o.location;
      f.set_id = o.set_id;
      const SetRecord* set = nullptr;
      if (!o.snapshot_id.empty()) {
        auto owner = after.set_of_snapshot.find(o.snapshot_id);
        if (owner != after.set_of_snapshot.end()) set = owner->second;
      }
      if (!set && !o.set_id.empty()) {
        auto it = after.sets.find(o.set_id);
        if (it != after.sets.end()) set = it->second;
      }
      if (set && f.set_id.empty()) f.set_id = set->set_id;
      // An exposure of a snapshot the user has is the user's.
      if (set && set->state == SetState::kComplete && !o.snapshot_id.empty()) continue;
      const std::string why = Owner(set);
      if (why == "in-progress") continue;
      if (why == "abort-incomplete") {
        findings.push_back(LeftByIncompleteAbort(f, set->set_id));
        continue;
      }
      if (set) {
        f.problem = "made for set " + set->set_id + ", which is " + SetStateName(set->state);
      } else if (!o.snapshot_id.empty()) {
        f.problem = "made for snapshot " + o.snapshot_id + ", which is in no set of the catalog";
      } else if (!o.set_id.empty()) {
        f.problem = "made for set " + o.set_id + ", which the catalog does not have";
      } else {
        f.problem = "made by snapset for no set or snapshot its name tells";
      }
      f.orphan = true;
      findings.push_back(f);
    }
  }

  for (const auto& [id, record] : after.snapshot_records) {
    const SetRecord* set = after.set_of_snapshot.at(id);
    if (set->state != SetState::kComplete || registered.count(record->provider_id)) continue;
    findings.push_back({id, record->provider_name,
                        "its provider " + record->provider_id + " is no longer registered"});
  }
  return findings;
}

}  // namespace snapset
