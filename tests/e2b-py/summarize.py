"""Summarise pytest's JUnit XML from run.sh: per-group counts, each failure
with the first line of its message, and a last line `N passed, M failed`.

usage: summarize.py <junit.xml> <in-scope.txt>
Exit status 0 when nothing failed, 1 otherwise. Errors (fixture/setup
failures) count as failures; skipped tests are listed and not counted.
"""

import sys
import xml.etree.ElementTree as ET


def groups(in_scope_path):
    out = []
    for line in open(in_scope_path, encoding="utf-8"):
        parts = line.split()
        if len(parts) == 2:
            out.append((parts[1], parts[0]))
    return out


def group_of(path, scope):
    for prefix, group in scope:
        prefix = "tests/" + prefix.removesuffix(".py")
        if path == prefix or path.startswith(prefix + "/") or (prefix.endswith("/") and path.startswith(prefix)):
            return group
    return "?"


def main():
    report, in_scope = sys.argv[1], sys.argv[2]
    scope = groups(in_scope)
    counts, failures, skipped = {}, [], []
    for case in ET.parse(report).getroot().iter("testcase"):
        # importlib mode: classname is the dotted file path (plus a class).
        dotted = case.get("classname", "")
        path = dotted.replace(".", "/")
        name = f"{path}::{case.get('name')}"
        group = group_of(path, scope)
        c = counts.setdefault(group, {"passed": 0, "failed": 0, "skipped": 0})
        bad = case.find("failure")
        if bad is None:
            bad = case.find("error")
        if bad is not None:
            c["failed"] += 1
            msg = (bad.get("message") or bad.text or "").strip().splitlines()
            failures.append(f"{name}: {(msg[0] if msg else '')[:220]}")
        elif case.find("skipped") is not None:
            c["skipped"] += 1
            skipped.append(f"{name}: {(case.find('skipped').get('message') or '')[:120]}")
        else:
            c["passed"] += 1
    passed = sum(c["passed"] for c in counts.values())
    failed = sum(c["failed"] for c in counts.values())
    print("\n================ Stockade / E2B Python SDK test summary ================")
    for group, c in sorted(counts.items()):
        extra = f", {c['skipped']} skipped" if c["skipped"] else ""
        print(f"  group {group:8} {c['passed']} passed, {c['failed']} failed{extra}")
    if skipped:
        print(f"skipped (not counted): {len(skipped)}")
        for s in skipped:
            print("  " + s)
    if failures:
        print(f"failed tests ({len(failures)}):")
        for f in failures:
            print("  " + f)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
