#!/usr/bin/env python3
"""Fails when a file in core/ includes a folder above its own in the layer order.

core/ is layered: base < model < formats < data < quant < engine < eval, export (peers at the
top). A file may include headers of its own folder and of the folders below it, written as
"folder/file.h" from core/; a core header included without its folder, a Qt header, or an
include upward is reported with its file and line. Usage: check_core_layers.py CORE_DIR
"""
import os
import re
import sys

RANK = {"base": 0, "model": 1, "formats": 2, "data": 3, "quant": 4, "engine": 5, "eval": 6, "export": 6}
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')


def problems(core):
    found = []
    for folder in os.listdir(core):
        path = os.path.join(core, folder)
        if not os.path.isdir(path):
            continue
        if folder not in RANK:
            found.append(f"{path}: folder not in the layer order {sorted(RANK, key=RANK.get)}")
            continue
        for dirpath, _, files in os.walk(path):
            for name in files:
                if name.endswith((".h", ".cpp", ".inc")):
                    found += check_file(core, folder, os.path.join(dirpath, name))
    return found


def check_file(core, folder, path):
    found = []
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            m = INCLUDE.match(line)
            if not m:
                continue
            kind, target = m.groups()
            where = f"{path}:{line_no}"
            if kind == "<" and re.match(r"Q[A-Za-z]*(/|$)", target):
                found.append(f"{where}: core/ must not include Qt ({target})")
            if kind != '"':
                continue
            top = target.split("/")[0]
            if top not in RANK:
                if os.path.exists(os.path.join(core, target)) or not os.path.exists(os.path.join(os.path.dirname(path), target)):
                    found.append(f'{where}: write core includes from core/ as "folder/file.h" ({target})')
                continue
            if top != folder and RANK[top] >= RANK[folder]:
                found.append(f"{where}: {folder}/ may not include {top}/ ({target}): "
                             f"{top} is {'beside' if RANK[top] == RANK[folder] else 'above'} {folder} in the layer order")
    return found


def main():
    core = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "core")
    found = problems(core)
    for p in found:
        print(p)
    print(f"core layering: {len(found)} problem(s)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
