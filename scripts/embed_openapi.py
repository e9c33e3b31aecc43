#!/usr/bin/env python3
"""embed_openapi.py: api/openapi.yaml -> a C file holding the YAML text and
its JSON form, so `fieldmatch serve` answers /openapi.yaml and /openapi.json
with nothing beside the binary.  Run by CMake at build time (python3-yaml,
from scripts/setup.sh); the output is written to a temporary name and
renamed, so a failed run leaves no half file.

usage: embed_openapi.py api/openapi.yaml OUT.c
"""
import json
import os
import sys

import yaml


def c_bytes(name, data):
    rows = []
    for i in range(0, len(data), 16):
        rows.append("  " + ",".join(str(b) for b in data[i:i + 16]) + ",")
    return ("const unsigned char %s[] = {\n%s\n  0};\nconst unsigned long %s_len = %d;\n"
            % (name, "\n".join(rows), name, len(data)))


def main():
    src, out = sys.argv[1], sys.argv[2]
    text = open(src, "rb").read()
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        sys.exit("%s: not valid YAML: %s" % (src, e))
    js = json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=False).encode() + b"\n"
    body = ("/* generated from %s by scripts/embed_openapi.py: do not edit */\n"
            % os.path.basename(src)) + c_bytes("fm_openapi_yaml", text) + c_bytes("fm_openapi_json", js)
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        f.write(body)
    os.replace(tmp, out)


if __name__ == "__main__":
    main()
