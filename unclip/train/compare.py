"""Compare the generated samples of several bundles in each other's CLIP image spaces.

eval.py measures a bundle's samples in the bundle's own CLIP space, so its Fréchet distances and
precision/recall of two bundles are not on one scale. This script takes the samples that
``eval.py --save-samples FILE`` saved for each bundle and measures every sample set against the
val images in the image encoder of every bundle (same metrics as eval.py: Fréchet distance of the
L2-normalised embeddings, with the train-vs-val floor, and precision/recall/density/coverage, k = 5).
A bundle whose samples are closer to val in every space is better in a way that does not depend on
its own encoder. With --nearest DIR it also writes, per bundle, the 8 samples closest to a training
image (pixels at the decoder size) above those training images: DIR/nearest_<bundle>.png.

    /usr/bin/python3 unclip/train/compare.py --bundle NEW_BUNDLE --samples unclip/train/runs/compare/new.pt \\
        --bundle unclip/bundles/cxr-tiny --samples unclip/train/runs/compare/cxr-tiny.pt \\
        --out unclip/train/runs/compare/compare.json
"""
import argparse
import json
import os
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402
import eval as ev  # noqa: E402
import export  # noqa: E402
import reference as R  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", action="append", required=True, help="bundle folder (repeat, with --samples)")
    ap.add_argument("--samples", action="append", required=True, help="eval.py --save-samples file of that bundle")
    ap.add_argument("--data", default=data.DEFAULT_ROOT)
    ap.add_argument("--out", default=None, help="JSON results (default: print only)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--nearest", default=None, metavar="DIR", help="write nearest-training-image grids here")
    args = ap.parse_args(argv)
    if len(args.bundle) != len(args.samples):
        ap.error("give one --samples file per --bundle")
    torch.set_num_threads(args.threads)
    names, sets = [], []
    for b, s in zip(args.bundle, args.samples):
        d = torch.load(s, map_location="cpu")
        names.append(os.path.basename(os.path.abspath(b)))
        sets.append(d["images"])
    res = {"bundles": names, "samples": [int(x.shape[0]) for x in sets], "spaces": {}}
    for b, space in zip(args.bundle, names):
        bdir = os.path.abspath(b)
        _, ms = export.load_torch(bdir)
        M = R.Models.from_bundle(bdir, ms)
        S = M.manifest["image"]["size"]
        sizes = tuple(sorted({S, M.manifest["image"]["clip_size"]} |
                             {u["out_size"] for u in M.manifest["components"].get("upsamplers", [])}))
        train = data.load_split(args.data, "train", sizes)
        val = data.load_split(args.data, "val", sizes)
        with torch.no_grad():
            z_tr = F.normalize(R.encode_image(M, train["images"][S]), dim=-1)
            z_va = F.normalize(R.encode_image(M, val["images"][S]), dim=-1)
            r = {"fd_train_vs_val_floor": ev.frechet(z_tr, z_va), "prdc_train_vs_val": ev.prdc(z_va, z_tr, 5)}
            thr = float(torch.quantile(torch.cdist(z_va.double(), z_tr.double()).min(1).values, 0.01))
            r["memorisation_threshold"] = thr
            for name, x in zip(names, sets):
                z = F.normalize(R.encode_image(M, x), dim=-1)
                d = torch.cdist(z.double(), z_tr.double()).min(1).values
                r[name] = {"fd_generated_vs_val": ev.frechet(z, z_va), "prdc_generated_vs_val": ev.prdc(z_va, z, 5),
                           "below_val_to_train_p01": int((d < thr).sum())}
        res["spaces"][space] = r
        print(f"space of {space}: " + json.dumps(r), flush=True)
    if args.nearest:
        os.makedirs(args.nearest, exist_ok=True)
        S = sets[0].shape[-1]
        train = data.load_split(args.data, "train", (S, 256))
        tr = train["images"][S]
        res["nearest"] = {}
        for name, x in zip(names, sets):
            d = torch.cdist(x.flatten(1).double(), tr.flatten(1).double())
            dmin, j = d.min(1)
            order = dmin.argsort()[:8]
            res["nearest"][name] = [{"sample": int(i), "train": int(j[i]), "distance": float(dmin[i]),
                                     "train_file": train["meta"][int(j[i])]["file"]} for i in order]
            ev.write_png(os.path.join(args.nearest, f"nearest_{name}.png"),
                         ev.grid(torch.cat([x[order], tr[j[order]]]), 8))
    print(table(res))
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out + ".tmp", "w") as fh:
            json.dump(res, fh, indent=1)
        os.replace(args.out + ".tmp", args.out)


def x_n(res, name):
    return res["samples"][res["bundles"].index(name)]


def table(res):
    """The results as a Markdown table: one row per (space, samples)."""
    rows = ["| CLIP space of | samples of | Fréchet distance to val (floor) | precision | recall | density | coverage | "
            "closer to train than the val 1st percentile |",
            "|---|---|---|---|---|---|---|---|"]
    for space, r in res["spaces"].items():
        for name in res["bundles"]:
            g = r[name]
            p = g["prdc_generated_vs_val"]
            rows.append(f"| {space} | {name} | {g['fd_generated_vs_val']:.3f} ({r['fd_train_vs_val_floor']:.3f}) | "
                        f"{p['precision']:.3f} | {p['recall']:.3f} | {p['density']:.3f} | {p['coverage']:.3f} | "
                        f"{g['below_val_to_train_p01']} of {x_n(res, name)} |")
    return "\n".join(rows)


if __name__ == "__main__":
    main()
