#!/usr/bin/env python3
"""Runs `quantscope-cli suggest` with one budget on every corpus model that has a reference
accuracy (../shared/corpus/manifest.json) and on the sample models, and prints a Markdown
table: float and chosen held-out top-1, bits per weight, bytes, seconds.

usage: suggest_table.py CLI [--budget --bits-per-weight 4.5] [--only NAME]
"""
import json, os, subprocess, sys, tempfile, time

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.normpath(os.path.join(here, "..", ".."))
corpus = os.path.normpath(os.path.join(root, "..", "shared", "corpus"))
fashion = "/usr/share/datasets/fashion-mnist"

def runs():
    out = []
    manifest = os.path.join(corpus, "manifest.json")
    if os.path.exists(manifest):
        m = json.load(open(manifest))
        for f in (m["files"] if isinstance(m, dict) else m):
            ref = f.get("reference_accuracy")
            if not ref or f.get("dataset") not in ("mnist", "fashion_mnist"):
                continue
            data = os.path.join(corpus, "mnist") if f["dataset"] == "mnist" else fashion
            extra = []
            pre = f.get("preprocessing") or {}
            if pre.get("scale") == 1.0:
                extra += ["--scale", "1"]
            # Architecture sidecars the manifest names; a Keras 3 .weights.h5 takes the .keras beside it.
            for side in f.get("sidecars") or []:
                if side["file"].endswith((".json", ".yaml", ".keras")):
                    extra += ["--arch", os.path.join(corpus, side["file"])]
            if f["file"].endswith(".weights.h5"):
                keras = os.path.join(corpus, f["file"][: -len(".weights.h5")] + ".keras")
                if os.path.exists(keras):
                    extra += ["--arch", keras]
            out.append((f["file"], os.path.join(corpus, f["file"]), data, extra))
    for name in sorted(os.listdir(os.path.join(root, "sample_models"))):
        if name.endswith(".h5"):
            out.append((name, os.path.join(root, "sample_models", name), fashion, []))
    return out

def main():
    cli = sys.argv[1]
    args = sys.argv[2:]
    budget = ["--bits-per-weight", "4.5"]
    only = None
    if "--budget" in args:
        i = args.index("--budget")
        budget = args[i + 1:i + 3]
    if "--only" in args:
        only = args[args.index("--only") + 1]
    print("| model | float held-out | chosen held-out | drop (pts) | bits/weight | bytes (int8 baseline) | seconds |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name, path, data, extra in runs():
            if only and only not in name:
                continue
            pareto = os.path.join(tmp, "p.json")
            t0 = time.time()
            r = subprocess.run([cli, "suggest", path, "--data", data, *budget, "--out", os.path.join(tmp, "c.json"),
                                "--pareto", pareto, *extra], capture_output=True, text=True)
            secs = time.time() - t0
            if not os.path.exists(pareto):
                msg = (r.stderr.strip().splitlines() or ["?"])[-1]
                print(f"| {name} | - | - | - | - | - | {secs:.0f} ({msg[:90]}) |", flush=True)
                continue
            p = json.load(open(pareto))
            os.remove(pareto)
            fl = p["float"]["heldout_top1"]
            base = next(q for q in p["points"] if q["origin"].endswith("baseline"))
            if p["chosen"] is None:
                print(f"| {name} | {fl:.4f} | none: {p['note']} | - | - | - | {secs:.0f} |", flush=True)
                continue
            c = p["points"][p["chosen"]]
            h = c["heldout"]["top1"]
            print(f"| {name} | {fl:.4f} | {h:.4f} | {100 * (fl - h):+.2f} | {c['bits_per_weight']:.2f} | "
                  f"{c['bytes']} ({base['bytes']}) | {secs:.0f} |", flush=True)

main()
