"""Evaluate a trained bundle on the held-out chest X-rays and write its numbers and sample grids.

Everything runs the bundle's own weights (rebuilt from its ONNX graphs by export.load_torch) through
the reference samplers (reference.py, the same algorithms as the Go runtime):

* CLIP: text→image recall@1/@5 on val against chance; linear probes of sex and view from z_i
  (fitted on train, scored on val).
* Generation from the val captions (≥ 200 samples, diffusion prior, decoder output at the bundle's
  size): Fréchet distance in the bundle's CLIP image space (L2-normalised z_i) to val, next to the
  train-vs-val distance (the floor); precision/recall/density/coverage (k = 5); CLIP score
  (cosine of each sample's z_i with its caption's z_t) next to the real val pairs'.
* Attribute binding: the share of samples whose requested sex and view the probes recover, next to
  the probes' accuracy on real val images.
* Memorisation: each sample's distance to its closest training image (pixels at the decoder size,
  and CLIP space), against the 1st percentile of the val-to-train closest distances; the number
  of samples closer than that.

    /usr/bin/python3 unclip/train/eval.py --bundle unclip/bundles/cxr-tiny [--samples 200]

Writes <bundle>/eval.json, PNG grids in <bundle>/samples/, and (with --card) the numbers into
MODEL_CARD.md, then refreshes bundle.json's SHA-256s.
"""
import argparse
import json
import os
import struct
import sys
import time
import zlib

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402
import export  # noqa: E402
import reference as R  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
VIEW_CLASSES = ["PA", "AP", "AP Supine", "L"]
SEX_CLASSES = ["M", "F"]


# ----------------------------------------------------------------------------- metrics

def sqrtm_psd(a):
    w, v = torch.linalg.eigh(a)
    return (v * w.clamp_min(0).sqrt()) @ v.t()


def frechet(x, y):
    """FD = |mu_x - mu_y|^2 + Tr(Sx + Sy - 2 (Sx Sy)^1/2), in float64."""
    x, y = x.double(), y.double()
    mx, my = x.mean(0), y.mean(0)
    sx, sy = torch.cov(x.t()), torch.cov(y.t())
    r = sqrtm_psd(sx)
    cross = torch.linalg.eigvalsh(r @ sy @ r).clamp_min(0).sqrt().sum()
    return float((mx - my).pow(2).sum() + torch.trace(sx) + torch.trace(sy) - 2 * cross)


def prdc(real, fake, k=5):
    """Precision/recall (Kynkäänniemi 2019), density/coverage (Naeem 2020); Euclidean k-NN radii."""
    real, fake = real.double(), fake.double()
    d_rr = torch.cdist(real, real)
    d_ff = torch.cdist(fake, fake)
    d_rf = torch.cdist(real, fake)
    r_real = d_rr.kthvalue(k + 1, dim=1).values  # k-th neighbour, self excluded
    r_fake = d_ff.kthvalue(k + 1, dim=1).values
    precision = (d_rf < r_real[:, None]).any(0).double().mean()
    recall = (d_rf < r_fake[None, :]).any(1).double().mean()
    density = (d_rf < r_real[:, None]).double().sum(0).mean() / k
    coverage = (d_rf.min(1).values < r_real).double().mean()
    return {"precision": float(precision), "recall": float(recall), "density": float(density),
            "coverage": float(coverage), "k": k}


def fit_probe(x, y, classes, steps=500, wd=1e-3):
    """Multinomial logistic regression on L2-normalised embeddings (full-batch Adam)."""
    x = F.normalize(x.float(), dim=-1)
    lin = torch.nn.Linear(x.shape[1], classes)
    opt = torch.optim.Adam(lin.parameters(), lr=0.05, weight_decay=wd)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(lin.weight.shape, generator=g) * 0.01)
        lin.bias.zero_()
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(lin(x), y).backward()
        opt.step()
    return lambda z: lin(F.normalize(z.float(), dim=-1)).argmax(-1)


def labels(meta, key, classes):
    idx = [i for i, m in enumerate(meta) if m[key] in classes]
    return idx, torch.tensor([classes.index(meta[i][key]) for i in idx])


# ----------------------------------------------------------------------------- images

def write_png(path, img):
    """Greyscale 8-bit PNG from a [H, W] tensor in [-1, 1] (zlib + struct: no imaging library)."""
    a = ((img.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
    h, w = a.shape
    raw = b"".join(b"\x00" + a[r].tobytes() for r in range(h))

    def chunk(tag, body):
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)) + \
        chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    with open(path + ".tmp", "wb") as f:
        f.write(png)
    os.replace(path + ".tmp", path)


def grid(images, cols, pad=2):
    """[N, 1, S, S] -> [H, W] with a dark border between tiles."""
    n, _, s, _ = images.shape
    rows = (n + cols - 1) // cols
    out = torch.full((rows * (s + pad) + pad, cols * (s + pad) + pad), -1.0)
    for i in range(n):
        r, c = divmod(i, cols)
        out[pad + r * (s + pad):pad + r * (s + pad) + s, pad + c * (s + pad):pad + c * (s + pad) + s] = images[i, 0]
    return out


# ----------------------------------------------------------------------------- main

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", default=os.path.join(REPO, "unclip", "bundles", "cxr-tiny"))
    ap.add_argument("--data", default=data.DEFAULT_ROOT)
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--batch", type=int, default=25)
    ap.add_argument("--prior-steps", type=int, default=None, help="default: the bundle's")
    ap.add_argument("--decoder-steps", type=int, default=None, help="default: the bundle's")
    ap.add_argument("--upsampler-steps", type=int, default=None, help="default: the bundle's")
    ap.add_argument("--grid", type=int, default=8, help="captions in the sample grids (upsampled)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--card", action="store_true", help="write the numbers into the bundle's MODEL_CARD.md")
    ap.add_argument("--save-samples", default=None, metavar="FILE",
                    help="also save the generated samples and their captions (for compare.py)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.time()
    bdir = os.path.abspath(args.bundle)
    cfg, ms = export.load_torch(bdir)
    M = R.Models.from_bundle(bdir, ms)
    man = M.manifest
    S, cs = man["image"]["size"], man["image"]["clip_size"]
    sizes = tuple(sorted({S, cs} | {u["out_size"] for u in man["components"].get("upsamplers", [])}))
    train = data.load_split(args.data, "train", sizes)
    val = data.load_split(args.data, "val", sizes)
    res = {"bundle": man["name"], "command": "/usr/bin/python3 unclip/train/eval.py " + " ".join(argv or sys.argv[1:]),
           "n_train": len(train["meta"]), "n_val": len(val["meta"]), "threads": args.threads}
    print(f"eval {bdir}: {res['n_train']} train, {res['n_val']} val images", flush=True)
    res["data"] = {split: _data_summary(d["meta"]) for split, d in (("train", train), ("val", val))}

    with torch.no_grad():
        zi_tr = R.encode_image(M, train["images"][S])
        zi_va = R.encode_image(M, val["images"][S])
        zt_va = R.encode_text(M, val["captions"])["embed"]
    n_zi_tr, n_zi_va, n_zt_va = F.normalize(zi_tr, dim=-1), F.normalize(zi_va, dim=-1), F.normalize(zt_va, dim=-1)

    # CLIP retrieval text -> image (a hit when an image whose caption equals the query is in the top k)
    sim = n_zt_va @ n_zi_va.t()
    caps = val["captions"]
    same = torch.tensor([[caps[i] == caps[j] for j in range(len(caps))] for i in range(len(caps))])
    rank = sim.argsort(dim=1, descending=True)
    ret = {}
    for k in (1, 5):
        hit = same.gather(1, rank[:, :k]).any(1).double().mean()
        chance = (1 - torch.tensor([_none_in_top(same[i].sum().item(), len(caps), k) for i in range(len(caps))])).mean()
        ret[f"recall@{k}"] = float(hit)
        ret[f"chance@{k}"] = float(chance)
    real_pairs = (n_zt_va * n_zi_va).sum(-1)
    ret["clip_score_real_pairs"] = float(real_pairs.mean())
    res["clip"] = ret
    print("clip", ret, flush=True)

    # linear probes from z_i
    probes, probe_res = {}, {}
    for key, classes in (("sex", SEX_CLASSES), ("view", VIEW_CLASSES)):
        itr, ytr = labels(train["meta"], key, classes)
        iva, yva = labels(val["meta"], key, classes)
        probe = fit_probe(zi_tr[itr], ytr, len(classes))
        probes[key] = probe
        acc = float((probe(zi_va[iva]) == yva).double().mean())
        major = float((yva == torch.bincount(ytr, minlength=len(classes)).argmax()).double().mean())
        probe_res[key] = {"val_accuracy": acc, "majority_baseline": major, "n_val": len(iva), "classes": classes}
    res["probes"] = probe_res
    print("probes", probe_res, flush=True)

    # generation from val captions
    n = args.samples
    gcaps = [caps[i % len(caps)] for i in range(n)]
    gmeta = [val["meta"][i % len(caps)] for i in range(n)]
    noise = R.TorchNoise(args.seed)
    popts = {"steps": args.prior_steps} if args.prior_steps else {}
    dopts = {"steps": args.decoder_steps} if args.decoder_steps else {}
    gen, gz, tg = [], [], time.time()
    for b in range(0, n, args.batch):
        out = R.generate(M, gcaps[b:b + args.batch], noise, prior="diffusion", prior_opts=popts,
                         decoder_opts=dopts, upsample_images=False)
        gen.append(out["base"])
        print(f"generated {min(n, b + args.batch)}/{n} ({time.time() - tg:.0f} s)", flush=True)
    gen = torch.cat(gen)
    gen_s = time.time() - tg
    if args.save_samples:
        os.makedirs(os.path.dirname(os.path.abspath(args.save_samples)), exist_ok=True)
        torch.save({"bundle": man["name"], "images": gen, "captions": gcaps, "seed": args.seed},
                   args.save_samples + ".tmp")
        os.replace(args.save_samples + ".tmp", args.save_samples)
    with torch.no_grad():
        zi_g = R.encode_image(M, gen)
        zt_g = R.encode_text(M, gcaps)["embed"]
    n_zi_g = F.normalize(zi_g, dim=-1)
    g = {"samples": n, "prior": "diffusion", "prior_steps": args.prior_steps or man["components"]["prior"]["diffusion"]["sampling_steps"],
         "prior_guidance": man["components"]["prior"]["diffusion"]["guidance_scale"],
         "decoder_steps": args.decoder_steps or man["components"]["decoder"]["diffusion"]["sampling_steps"],
         "decoder_guidance": man["components"]["decoder"]["diffusion"]["guidance_scale"],
         "prior_eta": man["components"]["prior"]["diffusion"].get("eta", 0.0),
         "decoder_eta": man["components"]["decoder"]["diffusion"].get("eta", 0.0),
         "sampler": "DDIM (bundle defaults for eta)", "seconds": round(gen_s, 1),
         "fd_generated_vs_val": frechet(n_zi_g, n_zi_va), "fd_train_vs_val_floor": frechet(n_zi_tr, n_zi_va),
         "clip_score_generated": float((n_zi_g * F.normalize(zt_g, dim=-1)).sum(-1).mean()),
         "clip_score_real_val_pairs": ret["clip_score_real_pairs"]}
    g["prdc_generated_vs_val"] = prdc(n_zi_va, n_zi_g, 5)
    g["prdc_train_vs_val"] = prdc(n_zi_va, n_zi_tr, 5)
    res["generation"] = g
    print("generation", g, flush=True)

    # attribute binding
    bind = {}
    for key, classes in (("sex", SEX_CLASSES), ("view", VIEW_CLASSES)):
        idx = [i for i, m in enumerate(gmeta) if m[key] in classes]
        want = torch.tensor([classes.index(gmeta[i][key]) for i in idx])
        got = probes[key](zi_g[idx])
        bind[key] = {"generated_recovered": float((got == want).double().mean()), "n": len(idx),
                     "probe_accuracy_real_val": probe_res[key]["val_accuracy"]}
    res["attribute_binding"] = bind
    print("binding", bind, flush=True)

    # memorisation
    mem = {}
    tr_px = train["images"][S].flatten(1).double()
    for space, gx, vx, tx in (("pixels", gen.flatten(1).double(), val["images"][S].flatten(1).double(), tr_px),
                              ("clip", n_zi_g.double(), n_zi_va.double(), n_zi_tr.double())):
        d_gen = torch.cdist(gx, tx).min(1).values
        d_val = torch.cdist(vx, tx).min(1).values
        thr = float(torch.quantile(d_val, 0.01))
        mem[space] = {"val_to_train_p01": thr, "val_to_train_median": float(d_val.median()),
                      "generated_to_train_min": float(d_gen.min()), "generated_to_train_median": float(d_gen.median()),
                      "generated_below_p01": int((d_gen < thr).sum())}
    res["memorisation"] = mem
    print("memorisation", mem, flush=True)

    # sample grids: generated (full cascade) beside real val images with the same captions
    sdir = os.path.join(bdir, "samples")
    os.makedirs(sdir, exist_ok=True)
    k = min(args.grid, len(caps))
    pick = [int(i) for i in torch.linspace(0, len(caps) - 1, k).round().long()]
    uopts = [{"steps": args.upsampler_steps}] * len(man["components"].get("upsamplers", [])) if args.upsampler_steps else None
    out = R.generate(M, [caps[i] for i in pick], R.TorchNoise(args.seed + 1), prior="diffusion", prior_opts=popts,
                     decoder_opts=dopts, upsampler_opts=uopts, upsample_images=True)
    big = out["images"]
    real_big = val["images"][big.shape[-1]][pick]
    write_png(os.path.join(sdir, "generated.png"), grid(big, 4))
    write_png(os.path.join(sdir, "real_val.png"), grid(real_big, 4))
    write_png(os.path.join(sdir, "generated_base.png"), grid(gen[:32], 8))
    write_png(os.path.join(sdir, "real_val_base.png"), grid(val["images"][S][:32], 8))
    var = R.vary(M, val["images"][S][pick[0]:pick[0] + 1], 3, R.TorchNoise(args.seed + 2), eta=0.8,
                 steps=args.decoder_steps, upsampler_opts=uopts, upsample_images=True)
    write_png(os.path.join(sdir, "variations.png"), grid(torch.cat([real_big[:1], var["images"]]), 4))
    res["grids"] = {"captions": [caps[i] for i in pick], "files": sorted(os.listdir(sdir))}
    res["seconds"] = round(time.time() - t0, 1)
    with open(os.path.join(bdir, "eval.json.tmp"), "w") as fh:
        json.dump(res, fh, indent=1)
    os.replace(os.path.join(bdir, "eval.json.tmp"), os.path.join(bdir, "eval.json"))
    print(f"eval done in {res['seconds']:.0f} s -> {bdir}/eval.json", flush=True)
    if args.card:
        import card
        card.write(bdir, res)
    export.refresh_hashes(bdir, add=["eval.json"] + [f"samples/{f}" for f in sorted(os.listdir(sdir))])


def _data_summary(meta):
    from collections import Counter
    return {"images": len(meta), "patients": len({m["patient_id"] for m in meta}),
            "sex": dict(Counter(m["sex"] or "unknown" for m in meta)),
            "view": dict(Counter(m["view"] for m in meta)),
            "finding": dict(Counter(m["finding"] for m in meta).most_common(8)),
            "license": dict(Counter(m["license"] or "none given" for m in meta))}


def _none_in_top(m, n, k):
    """P(no relevant item in a random top-k) with m relevant among n."""
    p = 1.0
    for j in range(k):
        p *= max(0.0, (n - m - j) / (n - j))
    return p


if __name__ == "__main__":
    main()
