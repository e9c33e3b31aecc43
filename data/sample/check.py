#!/usr/bin/env python3
"""Consistency check of the fieldmatch sample data (standard library only).

Verifies that every sample file parses the way the importers expect, that
ids are unique within each source, and that every id in the gold files
exists in the sample dictionaries.  Exits 0 when all is well, 1 otherwise,
printing one "path:line: problem" message per fault.

Usage: python3 data/sample/check.py [SAMPLE_DIR]
"""
import csv
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = sys.argv[1] if len(sys.argv) > 1 else HERE
errors = []


def err(path, line, msg):
    errors.append(f"{os.path.relpath(path)}:{line}: {msg}")


# RDM definition: ACRONYM "DDE ACRONYM" FID RIPPLES TYPE LEN [( n )] RWF_TYPE RWF_LEN
RDM_LINE = re.compile(
    r'^(?P<acr>[A-Z0-9_]{1,10})\s+"(?P<dde>[^"]*)"\s+(?P<fid>-?\d+)\s+'
    r'(?P<rip>[A-Z0-9_]+)\s+(?P<ftype>[A-Z_]+)\s+(?P<len>\d+)(\s+\(\s*\d+\s*\))?\s+'
    r'(?P<rwf>[A-Z0-9_]+)\s+(?P<rwflen>\d+)\s*$')
FTYPES = {"INTEGER", "ALPHANUMERIC", "ENUMERATED", "TIME", "TIME_SECONDS", "DATE",
          "PRICE", "BINARY", "NONE"}
RWFTYPES = {"INT64", "UINT64", "REAL64", "DATE", "TIME", "ENUM", "RMTES_STRING",
            "ASCII_STRING", "BUFFER"}


def check_rdm(path):
    ids, fids = {}, {}
    pending, ripples = 0, []  # definitions not yet followed by a comment block
    with open(path, encoding="ascii") as f:
        lines = f.read().split("\n")
    for n, line in enumerate(lines, 1):
        if line.startswith("!"):
            if line.strip() not in ("!", "! ") and not line.startswith("!tag") \
                    and not line.startswith("!ACRONYM") and not line.startswith("!---"):
                pending = 0
            continue
        if not line.strip():
            continue
        m = RDM_LINE.match(line)
        if not m:
            err(path, n, "not an RDM definition line")
            continue
        acr, fid = m["acr"], int(m["fid"])
        if acr in ids:
            err(path, n, f"duplicate acronym {acr} (first on line {ids[acr]})")
        if fid in fids:
            err(path, n, f"duplicate FID {fid} (first on line {fids[fid]})")
        ids.setdefault(acr, n)
        fids.setdefault(fid, n)
        if m["ftype"] not in FTYPES:
            err(path, n, f"unknown field type {m['ftype']}")
        if m["rwf"] not in RWFTYPES:
            err(path, n, f"unknown RWF type {m['rwf']}")
        if (m["ftype"] == "ENUMERATED") != (m["rwf"] == "ENUM"):
            err(path, n, "ENUMERATED and ENUM must go together")
        if m["rip"] != "NULL":
            ripples.append((n, m["rip"]))
        pending += 1
    if pending:
        err(path, len(lines), f"{pending} definition(s) at end of file without a description")
    for n, rip in ripples:
        if rip not in ids:
            err(path, n, f"ripples to undefined acronym {rip}")
    return set(ids)


def read_csv(path, header, bom):
    with open(path, "rb") as f:
        raw = f.read()
    if raw.startswith(b"\xef\xbb\xbf") != bom:
        err(path, 1, "UTF-8 BOM expected" if bom else "unexpected UTF-8 BOM")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        err(path, 1, f"invalid UTF-8: {e}")
        return []
    rows = []
    reader = csv.reader(text.splitlines(keepends=True), strict=True)
    try:
        got = next(reader)
        if got != header:
            err(path, 1, f"header {got} != {header}")
        for row in reader:
            if len(row) != len(header):
                err(path, reader.line_num, f"{len(row)} columns, expected {len(header)}")
                continue
            rows.append((reader.line_num, row))
    except csv.Error as e:
        err(path, reader.line_num, f"CSV error: {e}")
    return rows


def unique_ids(path, rows, col, pattern):
    ids = {}
    for n, row in rows:
        v = row[col]
        if not re.fullmatch(pattern, v):
            err(path, n, f"malformed id {v!r}")
        if v in ids:
            err(path, n, f"duplicate id {v} (first on line {ids[v]})")
        ids.setdefault(v, n)
    return set(ids)


def read_gold(path):
    rows = []
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    if lines[0] != "bloomberg_field\trefinitiv_field\tconfidence":
        err(path, 1, "bad header")
    for n, line in enumerate(lines[1:], 2):
        if not line:
            continue
        cols = line.split("\t")
        if len(cols) != 3:
            err(path, n, f"{len(cols)} columns, expected 3")
            continue
        try:
            c = float(cols[2])
            if not 0 < c <= 1:
                raise ValueError
        except ValueError:
            err(path, n, f"confidence {cols[2]!r} is not in (0, 1]")
        rows.append((n, cols[0], cols[1]))
    return rows


def main():
    p = lambda *a: os.path.join(ROOT, *a)
    rdm = check_rdm(p("refinitiv", "RDMFieldDictionary.sample"))
    fund_rows = read_csv(p("refinitiv", "fundamentals.csv"),
                         ["Name", "COA Code", "Units", "COA Type", "Data Type", "Definition"], True)
    fund = unique_ids(p("refinitiv", "fundamentals.csv"), fund_rows, 1, r"[A-Z]{4}")
    if not any("\n" in r[5] for _, r in fund_rows):
        err(p("refinitiv", "fundamentals.csv"), 1, "no definition with an embedded newline")
    bbg_rows = read_csv(p("bloomberg", "fields.csv"),
                        ["mnemonic", "name", "description", "category", "type"], False)
    bbg = unique_ids(p("bloomberg", "fields.csv"), bbg_rows, 0, r"[A-Z0-9_&%]+")
    dl_hdr = ["Field Mnemonic", "Data License Category", "Comdty", "Equity", "Muni", "Pfd",
              "M-Mkt", "Govt", "Corp", "Index", "Curncy", "Mtge", "Field Type", "Width"]
    dl_rows = read_csv(p("bloomberg", "datalicense.csv"), dl_hdr, False)
    dl = unique_ids(p("bloomberg", "datalicense.csv"), dl_rows, 0, r"[A-Z0-9_&%]+")
    for n, row in dl_rows:
        for i, cls in enumerate(dl_hdr[2:12], 2):
            if row[i] not in (cls, " "):
                err(p("bloomberg", "datalicense.csv"), n, f"column {cls}: {row[i]!r}")
        if not row[13].isdigit():
            err(p("bloomberg", "datalicense.csv"), n, f"width {row[13]!r} is not a number")
    if rdm & fund:
        err(p("refinitiv"), 0, f"ids in both reference sources: {sorted(rdm & fund)}")
    refs, queries = rdm | fund, bbg | dl

    gold = read_gold(p("gold.tsv"))
    seen = set()
    for n, q, r in gold:
        if q not in queries:
            err(p("gold.tsv"), n, f"query {q} is not in bloomberg/fields.csv or datalicense.csv")
        if r not in refs:
            err(p("gold.tsv"), n, f"reference {r} is not in the RDM sample or fundamentals.csv")
        if (q, r) in seen:
            err(p("gold.tsv"), n, f"duplicate pair {q} {r}")
        seen.add((q, r))
    train = read_gold(p("gold-train.tsv"))
    test = read_gold(p("gold-test.tsv"))
    tq, sq = {q for _, q, _ in train}, {q for _, q, _ in test}
    if tq & sq:
        err(p("gold-train.tsv"), 0, f"queries in both train and test: {sorted(tq & sq)}")
    if sorted((q, r) for _, q, r in train + test) != sorted(seen):
        err(p("gold-train.tsv"), 0, "train + test is not exactly gold.tsv")

    for e in errors:
        print(e, file=sys.stderr)
    if errors:
        print(f"check.py: {len(errors)} problem(s)", file=sys.stderr)
        return 1
    print(f"check.py: ok: {len(rdm)} RDM fields, {len(fund)} fundamentals, "
          f"{len(bbg)} Bloomberg fields, {len(dl)} Data License fields "
          f"({len(dl - bbg)} only there), {len(seen)} gold pairs over "
          f"{len({q for _, q, _ in gold})} queries "
          f"({len(tq)} train / {len(sq)} test), "
          f"{len(bbg - {q for _, q, _ in gold})} Bloomberg fields without an answer")
    return 0


if __name__ == "__main__":
    sys.exit(main())
