#!/usr/bin/env python3
"""batch_thresholds.py: how precise is the top-1 above a score threshold and
a best-minus-runner-up margin?  Used to choose `batch run`'s defaults
(docs/batch.md).

    fieldmatch map --model M.fmm -k 3 -o top.jsonl --quiet
    python3 tests/bench/batch_thresholds.py top.jsonl GOLD.tsv [GOLD.tsv ...]

For every gold query in the map output: the top-1 is "proposed" when
score >= T and (score - runner-up) >= M; prints, per (T, M), how many gold
queries would be proposed, how many of those are right (precision) and the
share of all gold queries proposed (coverage)."""
import json
import sys
from collections import defaultdict

top = defaultdict(list)
for line in open(sys.argv[1]):
    r = json.loads(line)
    top[r["query_id"]].append((r["rank"], r["reference_id"], r["score"]))
gold = defaultdict(set)
for path in sys.argv[2:]:
    for i, line in enumerate(open(path)):
        cols = line.rstrip("\n").split("\t")
        if i == 0 or len(cols) < 2:
            continue
        gold[cols[0]].add(cols[1])
qs = [q for q in gold if q in top]
print(f"gold queries {len(gold)}, in the model {len(qs)}; "
      f"top-1 right overall {sum(sorted(top[q])[0][1] in gold[q] for q in qs) / max(len(qs), 1):.3f}")
print(f"{'T':>5} {'M':>5} {'proposed':>8} {'right':>6} {'precision':>9} {'coverage':>8}")
for t in [0.0, 1.0, 1.5, 2.0, 2.25, 2.5, 3.0]:
    for m in [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8]:
        n = right = 0
        for q in qs:
            c = sorted(top[q])
            s1 = c[0][2]
            s2 = c[1][2] if len(c) > 1 else None
            if s1 < t or (s2 is not None and s1 - s2 < m):
                continue
            n += 1
            right += c[0][1] in gold[q]
        print(f"{t:5.2f} {m:5.2f} {n:8d} {right:6d} {right / n if n else 0:9.3f} "
              f"{n / max(len(qs), 1):8.3f}")
