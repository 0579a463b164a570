#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
#
# Judges one snapset-conformance JSON report for mutants_test.sh:
#   check_report.py REPORT EXPECTED STATUS
# EXPECTED "-": the provider is good, nothing may fail and the exit status
# must be 0. Otherwise a case name (a trailing "*" matches a prefix) that
# must have failed, with exit status 1. Prints "ok: ..." or "BAD: ...".
import json
import re
import sys

path, expected, status = sys.argv[1], sys.argv[2], int(sys.argv[3])
try:
    with open(path) as f:
        report = json.load(f)
except (OSError, ValueError):
    print(f"BAD: no report (exit {status})")
    sys.exit()
failed = [c for c in report["cases"] if c["verdict"] == "fail"]
if expected == "-":
    if status == 0 and not failed:
        print(f"ok: {report['totals']['pass']} passed, none failed")
    else:
        print("BAD: the good provider failed "
              + "; ".join(c["name"] + ": " + c["reason"] for c in failed) + f" (exit {status})")
    sys.exit()
pattern = re.compile("^" + re.escape(expected).replace(r"\*", ".*") + "$")
hit = [c for c in failed if pattern.match(c["name"])]
if status == 1 and hit:
    print("ok: " + hit[0]["name"] + " failed: " + hit[0]["reason"].splitlines()[0][:110])
else:
    print(f"BAD: {expected} did not fail (exit {status}; failed: "
          + ", ".join(c["name"] for c in failed) + ")")
