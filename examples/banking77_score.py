#!/usr/bin/env python3
"""Score the output of `roj run examples/banking77.yaml` against the gold
intents of the test CSV.

usage: banking77_score.py TEST.csv RESULTS.jsonl

Prints the accuracy over all test rows (a failed job counts as wrong) and,
when the results carry a group (the routed pipeline), the accuracy of the
group and the share of intent errors made after a wrong group.
"""
import csv
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from banking77_groups import GROUPS  # noqa: E402


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[2])
    with open(sys.argv[1], newline="", encoding="utf-8") as f:
        gold = [r["category"] for r in csv.DictReader(f)]
    with open(sys.argv[2], encoding="utf-8") as f:
        lines = [json.loads(line) for line in f if line.strip()]
    if len(lines) != len(gold):
        sys.exit(f"{sys.argv[2]}: {len(lines)} lines, {sys.argv[1]}: "
                 f"{len(gold)} rows")
    group_of = {i: g for g, intents in GROUPS.items() for i in intents}
    right = failed = group_right = wrong_after_group = 0
    has_group = False
    for line, g in zip(lines, gold):
        if not line.get("ok"):
            failed += 1
            continue
        result = line["result"]
        right += result.get("intent") == g
        if "group" in result:
            has_group = True
            group_ok = result["group"] == group_of[g]
            group_right += group_ok
            wrong_after_group += not group_ok and result["intent"] != g
    n = len(gold)
    print(f"{n} rows, {failed} failed jobs")
    print(f"accuracy {right / n:.4f} ({right}/{n})")
    if has_group:
        print(f"group accuracy {group_right / n:.4f}")
        wrong = n - right
        if wrong:
            print(f"intent errors after a wrong group: {wrong_after_group} "
                  f"of {wrong}")


if __name__ == "__main__":
    main()
