#!/usr/bin/env python3
"""abbrev_candidates.py: the parts of Bloomberg Data License mnemonics that
the curated table (data/abbreviations.tsv) does not expand, by frequency.

Population: the Data License categories "Pricing - ..." and "Derived - ..."
(bissli-bbdl fields.csv), from which the realtime gold is drawn (gold
README).  A part is a candidate when it is alphabetic, has two letters or
more, occurs in at least MIN mnemonics, is not a key of the curated table,
and is not a word of the vendors' prose (it occurs fewer than 3 times in
the RDM long names, the fundamentals glossary or the BBGsymbols
descriptions).  Each candidate is printed with its count and four example
mnemonics; the curator expands it in data/abbreviations.tsv or leaves it
out with a reason (docs/text.md).

  python3 train/abbrev_candidates.py [--check] [SHARED] [MIN]   (defaults ../shared 8)

--check: print nothing and exit 0 when every candidate is either expanded in
the table or named in its "Left out:" comment, else name the others on
stderr and exit 1 (tests/cli/test_shared.sh), so the curation stays a
decision over the whole list, not over a few parts.
"""
import collections
import csv
import os
import re
import sys

here = os.path.dirname(os.path.abspath(__file__))
args = sys.argv[1:]
check = bool(args) and args[0] == "--check"
if check:
    args = args[1:]
shared = args[0] if args else os.path.join(here, "..", "..", "shared")
least = int(args[1]) if len(args) > 1 else 8
vendor = os.path.join(shared, "data", "vendor")

table, left_out, in_left_out = set(), set(), False
with open(os.path.join(here, "..", "data", "abbreviations.tsv"), encoding="utf-8") as f:
    for line in f:
        if line.startswith("#"):
            # the "Left out:" paragraph of a section's comment, up to its end
            in_left_out = in_left_out or line.startswith("# Left out:")
            if in_left_out:
                left_out.update(re.findall(r"[a-z]+", line[1:].replace("Left out:", "")))
        elif line.strip():
            in_left_out = False
            table.add(line.split("\t")[0].strip().lower())
        else:
            in_left_out = False

prose = collections.Counter()
def words(text):
    prose.update(re.findall(r"[a-z]+", (text or "").lower()))

with open(os.path.join(vendor, "lseg-Example.EMA.Java.Kotlin", "RDMFieldDictionary"), encoding="latin-1") as f:
    for line in f:
        m = re.match(r'\S+\s+"([^"]*)"', line)
        if m and not line.startswith("!"):
            words(m.group(1))
with open(os.path.join(vendor, "fintechsandbox-project-sandcastle",
                       "Fundamentals_Glossary_Parsed.from_xlsx.csv"), encoding="utf-8") as f:
    for row in csv.DictReader(f):
        for v in row.values():
            words(v)
with open(os.path.join(vendor, "bautheac-BBGsymbols", "fields.from_rda.csv"), encoding="utf-8") as f:
    for row in csv.DictReader(f):
        words(row["name"])
        words(row["description"])

count, examples = collections.Counter(), collections.defaultdict(list)
with open(os.path.join(vendor, "bissli-bbdl", "fields.csv"), encoding="utf-8") as f:
    for row in csv.DictReader(f):
        cat = row["Data License Category"]
        if not (cat.startswith("Pricing") or cat.startswith("Derived")):
            continue
        for part in set(row["Field Mnemonic"].lower().split("_")):
            if part.isalpha() and len(part) >= 2:
                count[part] += 1
                if len(examples[part]) < 4:
                    examples[part].append(row["Field Mnemonic"])

missing = []
for part, n in count.most_common():
    if n < least:
        break
    if part in table or prose[part] >= 3:
        continue
    if check:
        if part not in left_out:
            missing.append(f"{part} ({n})")
    else:
        print(f"{part}\t{n}\t{' '.join(examples[part])}")
if missing:
    print("abbrev_candidates: neither expanded in data/abbreviations.tsv nor left out "
          "in its comment: " + ", ".join(missing), file=sys.stderr)
    sys.exit(1)
