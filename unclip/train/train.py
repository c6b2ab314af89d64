"""Train the unCLIP stack on chest radiographs and export it as a bundle.

Stages, in order: bpe → clip → prior → ar_prior → decoder → upsampler → export. Every stage
checkpoints to ``runs/<name>/ckpt_<stage>.pt`` every few minutes and at its end; running the same
command again resumes where it stopped (mid-stage included: each step's random draws come from a
generator seeded by (seed, stage, step), so a resumed run makes the same draws as an unbroken one).
Losses go to ``runs/<name>/losses.jsonl``.

    /usr/bin/python3 unclip/train/train.py                 # default CPU recipe -> unclip/bundles/cxr-tiny
    /usr/bin/python3 unclip/train/train.py --quick --out unclip/train/runs/quick-bundle   # about a minute
    /usr/bin/python3 unclip/train/train.py --gpu --name gpu --out bundles/cxr-gpu   # one GPU, ~10 min

See docs/training.md.
"""
import argparse
import json
import math
import os
import shutil
import signal
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bpe  # noqa: E402
import data  # noqa: E402
import export  # noqa: E402
import models  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
STAGES = ["clip", "prior", "ar_prior", "decoder", "upsampler"]

RECIPES = {
    "quick": dict(config="quick", num_merges=400, aug_copies=2, ckpt_secs=60, ema=0.99, threads=2,
                  steps=dict(clip=30, prior=40, ar_prior=20, decoder=30, upsampler=15),
                  batch=dict(clip=32, prior=32, ar_prior=32, decoder=8, upsampler=8),
                  lr=dict(clip=1e-3, prior=1e-3, ar_prior=1e-3, decoder=5e-4, upsampler=5e-4),
                  sampling=dict(prior=10, decoder=20, upsampler=5)),
    "cpu": dict(config="cpu", num_merges=2000, aug_copies=8, ckpt_secs=180, ema=0.995, threads=1,
                steps=dict(clip=500, prior=1500, ar_prior=1000, decoder=1600, upsampler=800),
                batch=dict(clip=64, prior=64, ar_prior=32, decoder=32, upsampler=32),
                lr=dict(clip=5e-4, prior=3e-4, ar_prior=3e-4, decoder=3e-4, upsampler=3e-4),
                sampling=dict(prior=25, decoder=50, upsampler=10)),
    "gpu": dict(config="gpu", num_merges=4000, aug_copies=32, ckpt_secs=120, ema=0.999, threads=8,
                steps=dict(clip=3000, prior=8000, ar_prior=8000, decoder=10000, upsampler=6000),
                batch=dict(clip=256, prior=256, ar_prior=256, decoder=64, upsampler=32),
                lr=dict(clip=5e-4, prior=3e-4, ar_prior=3e-4, decoder=2e-4, upsampler=2e-4),
                sampling=dict(prior=64, decoder=100, upsampler=27)),
}
T_DIFF = 1000


# ----------------------------------------------------------------------------- diffusion

def cosine_alphas_bar(T=T_DIFF, s=0.008):
    """ᾱ at training indices 0..T-1 (Nichol & Dhariwal): β_i = min(1 − f(i+1)/f(i), 0.999)."""
    f = lambda t: math.cos(((t / T) + s) / (1 + s) * math.pi / 2) ** 2
    betas = torch.tensor([min(1 - f(i + 1) / f(i), 0.999) for i in range(T)], dtype=torch.float64)
    return torch.cumprod(1 - betas, 0).float()


def q_sample(x0, t, noise, ab):
    a = ab[t].reshape(-1, *([1] * (x0.dim() - 1))).to(x0.device)
    return a.sqrt() * x0 + (1 - a).sqrt() * noise


# ----------------------------------------------------------------------------- stage runner

class Run:
    def __init__(self, name, recipe, seed, device, log=print):
        self.name = name
        self.dir = os.path.join(data.RUNS, name)
        os.makedirs(self.dir, exist_ok=True)
        self.recipe = recipe
        self.seed = seed
        self.device = device
        self.log = log
        self.loss_log = open(os.path.join(self.dir, "losses.jsonl"), "a")
        self.stop_requested = False

        def stop(signum, frame):
            self.stop_requested = True
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)

    def gen(self, stage, step):
        g = torch.Generator()
        g.manual_seed((self.seed * 1000003 + STAGES.index(stage) * 100003 + step) % (2 ** 62))
        return g

    def ckpt_path(self, stage):
        return os.path.join(self.dir, f"ckpt_{stage}.pt")

    def load_done(self, stage, model):
        """Load a finished stage's EMA weights into model; True when the stage is done."""
        p = self.ckpt_path(stage)
        if not os.path.exists(p):
            return False
        ck = torch.load(p, map_location="cpu")
        if not ck.get("done"):
            return False
        model.load_state_dict(ck["ema"])
        return True

    def train(self, stage, model, loss_fn, steps, lr, batch):
        """Train model (in place) with AdamW + EMA; resume from the stage's checkpoint."""
        p = self.ckpt_path(stage)
        model.to(self.device)
        ema = {k: v.detach().clone() for k, v in model.state_dict().items()}
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
        step, elapsed = 0, 0.0
        if os.path.exists(p):
            ck = torch.load(p, map_location=self.device)
            model.load_state_dict(ck["model"])
            ema = ck["ema"]
            opt.load_state_dict(ck["opt"])
            step, elapsed = ck["step"], ck["elapsed"]
            if ck.get("done"):
                model.load_state_dict(ema)
                self.log(f"[{stage}] done earlier ({step} steps, {elapsed/60:.1f} min)")
                return ck
            self.log(f"[{stage}] resuming at step {step}")
        warm = min(100, steps // 10 + 1)
        t0, last_ck, run_loss = time.time(), time.time(), []

        def save(done):
            ck = {"model": model.state_dict(), "ema": ema, "opt": opt.state_dict(), "step": step,
                  "elapsed": elapsed + time.time() - t0, "done": done, "steps": steps, "batch": batch}
            torch.save(ck, p + ".tmp")
            os.replace(p + ".tmp", p)
            return ck

        model.train()
        while step < steps:
            if self.stop_requested:
                save(False)
                self.log(f"[{stage}] stopped at step {step} (checkpoint saved); run again to resume")
                sys.exit(130)
            cur = lr * min(1.0, (step + 1) / warm) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / steps)))
            for gparam in opt.param_groups:
                gparam["lr"] = cur
            loss = loss_fn(self.gen(stage, step), batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            decay = min(self.recipe["ema"], (1 + step) / (10 + step))
            with torch.no_grad():
                for k, v in model.state_dict().items():
                    if v.dtype.is_floating_point:
                        ema[k].mul_(decay).add_(v.detach(), alpha=1 - decay)
                    else:
                        ema[k].copy_(v)
            step += 1
            run_loss.append(float(loss))
            if step % 10 == 0 or step == steps:
                rec = {"stage": stage, "step": step, "loss": sum(run_loss) / len(run_loss), "lr": cur,
                       "elapsed_s": round(elapsed + time.time() - t0, 1)}
                self.loss_log.write(json.dumps(rec) + "\n")
                self.loss_log.flush()
                run_loss = []
                if step % 100 == 0 or step == steps:
                    self.log(f"[{stage}] step {step}/{steps} loss {rec['loss']:.4f} "
                             f"{rec['elapsed_s']/60:.1f} min")
            if time.time() - last_ck > self.recipe["ckpt_secs"]:
                save(False)
                last_ck = time.time()
        ck = save(True)
        model.load_state_dict(ema)
        model.eval()
        return ck


def hardware():
    """CPU model and core count (or the GPU's name) for the model card."""
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores (shared with other work)"


# ----------------------------------------------------------------------------- the recipe

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny sizes, about a minute (smoke test)")
    ap.add_argument("--gpu", action="store_true", help="the larger recipe for one GPU (CUDA)")
    ap.add_argument("--name", default=None, help="run name under unclip/train/runs (default: recipe name)")
    ap.add_argument("--data", default=data.DEFAULT_ROOT, help="folder with train/ and val/ (../shared/data/cxr)")
    ap.add_argument("--out", default=None, help="bundle folder (default unclip/bundles/cxr-tiny; "
                                                "runs/<name>/bundle for --quick)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads (default: the recipe's; 1 for the CPU recipe, which is faster "
                         "than 2 on a machine shared with other work)")
    ap.add_argument("--fresh", action="store_true", help="delete the run's checkpoints first")
    ap.add_argument("--no-export", action="store_true")
    ap.add_argument("--steps-scale", type=float, default=1.0, help="multiply every stage's steps")
    ap.add_argument("--steps", action="append", default=[], metavar="STAGE=N",
                    help="override one stage's number of steps (repeatable)")
    args = ap.parse_args(argv)

    kind = "quick" if args.quick else ("gpu" if args.gpu else "cpu")
    recipe = json.loads(json.dumps(RECIPES[kind]))
    for k in recipe["steps"]:
        recipe["steps"][k] = max(1, int(recipe["steps"][k] * args.steps_scale))
    for kv in args.steps:
        k, v = kv.split("=")
        if k not in recipe["steps"]:
            ap.error(f"--steps {kv}: unknown stage {k}")
        recipe["steps"][k] = int(v)
    name = args.name or kind
    args.threads = args.threads or recipe["threads"]
    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if args.gpu and torch.cuda.is_available() else "cpu")
    out = args.out or (os.path.join(data.RUNS, name, "bundle") if args.quick
                       else os.path.join(REPO, "unclip", "bundles", "cxr-tiny"))
    rdir = os.path.join(data.RUNS, name)
    if args.fresh and os.path.isdir(rdir):
        shutil.rmtree(rdir)
    os.makedirs(rdir, exist_ok=True)
    logf = open(os.path.join(rdir, "train.log"), "a")

    def log(msg):
        line = f"{time.strftime('%H:%M:%S')} {msg}"
        print(line, flush=True)
        logf.write(line + "\n")
        logf.flush()

    t_start = time.time()
    run = Run(name, recipe, args.seed, device, log)
    cfg = models.default_configs(recipe["config"])
    c = cfg["clip"]
    S, cs, L = cfg["decoder"]["size"], c["clip_size"], c["context_length"]
    up_sizes = sorted({u["out_size"] for u in cfg["upsamplers"]} | {u["in_size"] for u in cfg["upsamplers"]})
    sizes = tuple(sorted({S, cs, *up_sizes}))
    log(f"recipe {kind}: loading {args.data} sizes {sizes}")
    train = data.load_split(args.data, "train", sizes)
    N = len(train["captions"])
    log(f"{N} training images")

    # bpe
    merges_path = os.path.join(rdir, "bpe_merges.txt.gz")
    if not os.path.exists(merges_path):
        bpe.write_merges(merges_path, bpe.learn(train["captions"], recipe["num_merges"]))
    merges = bpe.read_merges(merges_path)
    tok = bpe.Tokenizer(merges, L)
    tokens = torch.tensor([tok.tokens(t) for t in train["captions"]], dtype=torch.int64)
    log(f"bpe: {len(merges)} merges, vocab {tok.vocab_size}")

    torch.manual_seed(args.seed)
    ms = models.build_models(cfg, tok.vocab_size)
    for k, m in ms.items():
        log(f"{k}: {models.count_params(m)/1e6:.3f} M parameters")
    imgs = {s: v.to(device) for s, v in train["images"].items()}
    tokens = tokens.to(device)
    ab = cosine_alphas_bar().to(device)
    steps, batch, lr = recipe["steps"], recipe["batch"], recipe["lr"]

    def pick(g, B):
        return torch.randint(0, N, (B,), generator=g)

    def clip_in(x):
        return x if x.shape[-1] == cs else F.adaptive_avg_pool2d(x, cs)

    # clip
    clip = ms["clip"]

    def clip_loss(g, B):
        i = pick(g, B)
        x = data.augment(imgs[cs][i].cpu(), g).to(device)
        return clip.loss(x, tokens[i])

    run.train("clip", clip, clip_loss, steps["clip"], lr["clip"], batch["clip"])
    clip.eval()
    for p_ in clip.parameters():
        p_.requires_grad_(False)

    # embeddings: clean and augmented copies
    emb_path = os.path.join(rdir, "embeds.pt")
    if os.path.exists(emb_path):
        E = torch.load(emb_path, map_location=device)
    else:
        with torch.no_grad():
            te, th = clip.text(tokens)
            zi = clip.image(imgs[cs])
            g = torch.Generator().manual_seed(args.seed + 77)
            aug = [clip.image(data.augment(imgs[cs].cpu(), g).to(device)) for _ in range(recipe["aug_copies"])]
        E = {"te": te, "th": th, "zi": zi, "zi_aug": torch.cat([zi] + aug)}
        torch.save(E, emb_path)
    zi_mean, zi_std = E["zi"].mean(0), E["zi"].std(0).clamp_min(1e-4)
    te_mean, te_std = E["te"].mean(0), E["te"].std(0).clamp_min(1e-4)
    nrep = E["zi_aug"].shape[0] // N
    log(f"embeddings: {E['zi_aug'].shape[0]} image embeddings ({nrep} per image)")

    # diffusion prior
    prior = ms["prior"]

    def prior_loss(g, B):
        j = torch.randint(0, N * nrep, (B,), generator=g)
        i = j % N
        x0 = ((E["zi_aug"][j] - zi_mean) / zi_std)
        t = torch.randint(0, T_DIFF, (B,), generator=g).to(device)
        noise = torch.randn(x0.shape, generator=g).to(device)
        drop = (torch.rand(B, generator=g) < 0.1).float().to(device)
        pred = prior(q_sample(x0, t, noise, ab), t, E["te"][i], E["th"][i], tokens[i], drop)
        return F.mse_loss(pred, x0)

    run.train("prior", prior, prior_loss, steps["prior"], lr["prior"], batch["prior"])

    # AR prior
    a = cfg["ar"]
    tables = export.make_ar_tables(E["zi"].cpu(), E["te"].cpu(), a["kept_dims"], a["levels"], a["dot_levels"])
    log(f"ar tables: PCA {a['kept_dims']} dims keep {tables['explained_variance']*100:.1f} % of the variance")
    seqs = export.ar_sequence(E["zi_aug"].cpu(), E["te"].repeat(nrep, 1).cpu(), tables).to(device)
    arp = ms["ar_prior"]

    def ar_loss(g, B):
        j = torch.randint(0, N * nrep, (B,), generator=g)
        i = j % N
        s = seqs[j]
        drop = (torch.rand(B, generator=g) < 0.1).float().to(device)
        logits = arp(s[:, :-1], E["te"][i], E["th"][i], tokens[i], drop)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), s[:, 1:].reshape(-1))

    run.train("ar_prior", arp, ar_loss, steps["ar_prior"], lr["ar_prior"], batch["ar_prior"])

    # decoder
    dec = ms["decoder"]

    def dec_loss(g, B):
        i = pick(g, B)
        x0 = data.augment(imgs[S][i].cpu(), g).to(device)
        with torch.no_grad():
            zi = clip.image(clip_in(x0))
        t = torch.randint(0, T_DIFF, (B,), generator=g).to(device)
        noise = torch.randn(x0.shape, generator=g).to(device)
        di = (torch.rand(B, generator=g) < 0.1).float().to(device)
        dt = (torch.rand(B, generator=g) < 0.5).float().to(device)
        pred = dec(q_sample(x0, t, noise, ab), t, zi, E["th"][i], tokens[i], di, dt)
        return F.mse_loss(pred, noise)

    run.train("decoder", dec, dec_loss, steps["decoder"], lr["decoder"], batch["decoder"])

    # upsamplers: random crops of 1/4 of the target size, blurred low-resolution conditioning
    for k, (up, uc) in enumerate(zip(ms["upsamplers"], cfg["upsamplers"])):
        si, so = uc["in_size"], uc["out_size"]
        f = so // si
        crop = so // 4
        stage = "upsampler" if k == 0 else f"upsampler{k + 1}"
        if stage not in STAGES:
            STAGES.append(stage)

        def up_loss(g, B, up=up, si=si, so=so, f=f, crop=crop):
            # crop first (aligned to the scale factor), then blur the area-downsampled crop;
            # intensity jitter only (the affine jitter adds nothing to a local super-resolution task)
            i = pick(g, B)
            oy = torch.randint(0, (so - crop) // f + 1, (1,), generator=g).item() * f
            ox = torch.randint(0, (so - crop) // f + 1, (1,), generator=g).item() * f
            hi = imgs[so][i][:, :, oy:oy + crop, ox:ox + crop].cpu()
            hi = data.augment(hi, g, rot_deg=0.0, scale=0.0, shift=0.0)
            lo = data.gaussian_blur(F.adaptive_avg_pool2d(hi, crop // f), 0.6, 3)
            hi, lo = hi.to(device), lo.to(device)
            t = torch.randint(0, T_DIFF, (B,), generator=g).to(device)
            noise = torch.randn(hi.shape, generator=g).to(device)
            return F.mse_loss(up(q_sample(hi, t, noise, ab), t, lo), noise)

        run.train(stage, up, up_loss, steps["upsampler"], lr["upsampler"], batch["upsampler"])

    train_s = 0.0
    for st in STAGES:
        p = run.ckpt_path(st)
        if os.path.exists(p):
            train_s += torch.load(p, map_location="cpu")["elapsed"]
    summary = {"recipe": kind, "name": name, "seed": args.seed, "steps": steps, "batch": batch, "lr": lr,
               "train_seconds": round(train_s, 1), "num_train_images": N, "num_merges": len(merges),
               "params": {k: models.count_params(m) for k, m in ms.items()},
               "ar_explained_variance": tables["explained_variance"], "device": str(device),
               "threads": args.threads, "hardware": hardware(), "config": cfg,
               "command": "/usr/bin/python3 unclip/train/train.py " + " ".join(argv if argv is not None else sys.argv[1:])}
    with open(os.path.join(rdir, "summary.json"), "w") as fh:
        json.dump(summary, fh, indent=1)
    log(f"training done: {train_s/60:.1f} min of stage time")
    if args.no_export:
        return
    for m in ms.values():
        m.to("cpu").eval()
    stats = {"image_embed_mean": zi_mean.cpu().tolist(), "image_embed_std": zi_std.cpu().tolist(),
             "text_embed_mean": te_mean.cpu().tolist(), "text_embed_std": te_std.cpu().tolist()}
    sm = recipe["sampling"]
    diff = {"prior": export.diffusion_block("x0", sm["prior"], 1.0, clip_x0=False),
            # DDIM with eta = 1 (ancestral-like): at this training length eta = 0 leaves speckle noise
            # (decoder) and grain (upsampler: validation MSE to the real 256 px images 0.011 vs 0.027)
            "decoder": export.diffusion_block("eps", sm["decoder"], 3.0, eta=1.0),
            "upsampler": export.diffusion_block("eps", sm["upsampler"], 1.0, eta=1.0)}
    os.makedirs(out, exist_ok=True)
    card = os.path.join(out, "MODEL_CARD.md")
    if not os.path.exists(card):
        with open(card, "w") as fh:
            fh.write(f"# {os.path.basename(os.path.abspath(out))}\n\nTrained by `unclip/train/train.py` "
                     f"(recipe `{kind}`); not yet evaluated: run `unclip/train/eval.py`.\n")
    export.export_bundle(out, name=os.path.basename(os.path.abspath(out)),
                         description=f"unCLIP trained on chest radiographs (recipe {kind})",
                         models=ms, cfg=cfg, merges_path=merges_path, num_merges=len(merges), stats=stats,
                         ar_tables=tables, diffusion=diff, model_card=card,
                         training={k: v for k, v in summary.items() if k != "config"})
    torch.save({"cfg": cfg, "vocab_size": tok.vocab_size, "state": {k: m.state_dict() for k, m in ms.items()}},
               os.path.join(rdir, "models.pt"))
    size = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
    log(f"bundle at {out}: {size/1e6:.1f} MB; total wall time {(time.time()-t_start)/60:.1f} min")


if __name__ == "__main__":
    main()
