#!/usr/bin/env python3
"""Jobs for examples/restaurant8k.yaml, and the score of its output.

  restaurant8k.py jobs TEST.json JOBS.jsonl
      writes one job per example: {"id", "text", "context"}, where context
      is context.requestedSlots joined with ", " as `roj train` joins it
  restaurant8k.py score TEST.json RESULTS.jsonl [--json]
      compares the booking frames that `roj run` wrote with the gold spans

Scores follow `roj eval` for extract models: per slot, exact match over
all examples (a missing span must be answered with none), and span F1,
where a predicted span counts only when it equals the gold span (both
trimmed of spaces). The runner writes a span skill's none word ("none")
when it finds no span, so "none" and "" both count as no span. "all" is the exact match over every example and slot
and the mean F1 of the slots.
"""
import json
import sys

SLOTS = ["date", "time", "people", "first_name", "last_name"]
NONE_WORD = "none"


def gold_frames(path):
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    frames = []
    for ex in data:
        text = ex["userInput"]["text"]
        frame = {s: "" for s in SLOTS}
        for lab in ex.get("labels", []):
            span = lab["valueSpan"]
            value = text[span.get("startIndex", 0):span["endIndex"]]
            if lab["slot"] in frame and not frame[lab["slot"]]:
                frame[lab["slot"]] = value.strip(" \t\n")
        ctx = ex.get("context", {}).get("requestedSlots", [])
        frames.append((text, ", ".join(ctx), frame))
    return frames


def write_jobs(test, out):
    with open(out, "w", encoding="utf-8") as f:
        for i, (text, ctx, _) in enumerate(gold_frames(test)):
            job = {"id": str(i), "text": text, "context": ctx}
            f.write(json.dumps(job, ensure_ascii=False) + "\n")


def score(test, results, as_json):
    gold = gold_frames(test)
    with open(results, encoding="utf-8") as f:
        lines = [json.loads(line) for line in f if line.strip()]
    if len(lines) != len(gold):
        sys.exit(f"{results}: {len(lines)} lines, {test}: {len(gold)} "
                 "examples")

    counts = {s: {"n": 0, "exact": 0, "tp": 0, "fp": 0, "fn": 0}
              for s in SLOTS}
    failed = 0
    for i, (line, (_, _, g)) in enumerate(zip(lines, gold)):
        if line.get("id") != str(i):
            sys.exit(f"{results}: line {i + 1} has id {line.get('id')!r}")
        pred = line.get("result") if line.get("ok") else None
        if pred is None:
            failed += 1
            pred = {}
        for s in SLOTS:
            p = str(pred.get(s, "")).strip(" \t\n")
            if p == NONE_WORD:
                p = ""
            c = counts[s]
            equal = p == g[s]
            c["n"] += 1
            c["exact"] += equal
            c["tp"] += bool(g[s]) and equal
            c["fp"] += bool(p) and not equal
            c["fn"] += bool(g[s]) and not equal

    report = {"examples": len(gold), "failed_jobs": failed, "slots": {}}
    f1_sum = 0.0
    for s in SLOTS:
        c = counts[s]
        prec = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else 0.0
        rec = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        f1_sum += f1
        report["slots"][s] = {"exact_match": c["exact"] / c["n"],
                              "precision": prec, "recall": rec, "f1": f1}
    report["exact_match"] = (sum(c["exact"] for c in counts.values()) /
                             sum(c["n"] for c in counts.values()))
    report["f1"] = f1_sum / len(SLOTS)
    if as_json:
        print(json.dumps(report, indent=1))
        return
    print(f"{len(gold)} examples, {failed} failed jobs")
    print(f"{'slot':<12} {'exact':>6} {'prec':>6} {'recall':>6} {'F1':>6}")
    for s in SLOTS:
        r = report["slots"][s]
        print(f"{s:<12} {r['exact_match']:6.3f} {r['precision']:6.3f} "
              f"{r['recall']:6.3f} {r['f1']:6.3f}")
    print(f"{'all':<12} {report['exact_match']:6.3f} {'':>6} {'':>6} "
          f"{report['f1']:6.3f}")


def main():
    args = sys.argv[1:]
    if len(args) == 3 and args[0] == "jobs":
        write_jobs(args[1], args[2])
    elif len(args) in (3, 4) and args[0] == "score":
        score(args[1], args[2], args[3:] == ["--json"])
    else:
        sys.exit("usage:\n" + __doc__.strip().split("\n\n")[1])


if __name__ == "__main__":
    main()
