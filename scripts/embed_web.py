#!/usr/bin/env python3
"""embed_web.py: the review app's static files (web/) -> a C file holding
their bytes, so `fieldmatch serve` answers /ui/ with nothing beside the
binary.  Run by CMake at build time; the output is written to a temporary
name and renamed, so a failed run leaves no half file.  Only the files of
web/ itself are embedded (no subdirectories), and only known types.

usage: embed_web.py web/ OUT.c
"""
import os
import sys

TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
LIMIT = 200 * 1024  # the app stays small (issue 17)


def main():
    src, out = sys.argv[1], sys.argv[2]
    names = sorted(n for n in os.listdir(src)
                   if os.path.isfile(os.path.join(src, n)) and os.path.splitext(n)[1] in TYPES)
    parts, rows, total = [], [], 0
    for i, n in enumerate(names):
        data = open(os.path.join(src, n), "rb").read()
        total += len(data)
        body = ",".join(str(b) for b in data)
        parts.append("static const unsigned char f%d[] = {%s%s0};" % (i, body, "," if body else ""))
        rows.append('  {"%s", "%s", f%d, %d},' % (n, TYPES[os.path.splitext(n)[1]], i, len(data)))
    if total > LIMIT:
        sys.exit("%s: %d bytes, over the %d byte budget of the review app" % (src, total, LIMIT))
    text = ("/* generated from web/ by scripts/embed_web.py: do not edit */\n"
            "#include <stddef.h>\n"
            "typedef struct fm_web_file { const char *name, *ctype; const unsigned char *p; size_t n; } fm_web_file;\n"
            + "\n".join(parts) + "\n"
            "const fm_web_file fm_web_files[] = {\n" + "\n".join(rows) + "\n  {NULL, NULL, NULL, 0}};\n"
            "const size_t fm_web_nfiles = %d;\n" % len(names))
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, out)


if __name__ == "__main__":
    main()
