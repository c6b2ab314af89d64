"""Train the unCLIP stack on chest radiographs and export it as a bundle.

Stages, in order: bpe → clip → prior → ar_prior → decoder → upsampler → export. Every stage
checkpoints to ``runs/<name>/ckpt_<stage>.pt`` every few minutes and at its end; running the same
command again resumes where it stopped (mid-stage included: each step's random draws come from a
generator seeded by (seed, stage, step), so a resumed run makes the same draws as an unbroken one).
Losses go to ``runs/<name>/losses.jsonl``.

    /usr/bin/python3 unclip/train/train.py                 # default CPU recipe -> unclip/bundles/cxr-tiny
    /usr/bin/python3 unclip/train/train.py --quick --out unclip/train/runs/quick-bundle   # about a minute
    /usr/bin/python3 unclip/train/train.py --gpu --minutes 6.3 --out unclip/train/runs/gpu/cxr-base  # one GPU

On a machine without pydicom (or without the data), train from a prepared cache and export here:

    /usr/bin/python3 unclip/train/train.py --gpu --prepare-cache .devdata/cxr_train.pt.gz   # here
    python3 unclip/train/train.py --gpu --cache .devdata/cxr_train.pt.gz --minutes 6.3 \
        --mirror OUTDIR --no-export                                                    # on the GPU
    /usr/bin/python3 unclip/train/train.py --gpu --import OUTDIR --out unclip/train/runs/gpu/cxr-base  # here

``--minutes`` (or ``--stage-minutes``) gives every stage a wall-clock budget: the learning-rate
schedule follows the larger of its step and time fractions, so a stage whose time is up has finished
its decay and stops with its EMA and checkpoint. ``--mirror`` writes the EMA weights of every stage
(at each checkpoint and at its end) and what the export needs into DIR, as files of at most 16 MB
(unclip/train/gpu_run.sh). See docs/training.md.
"""
import argparse
import contextlib
import glob
import io
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
    # one GPU: the steps are upper bounds, --minutes splits a wall-clock budget by "share"
    "gpu": dict(config="gpu", num_merges=2000, aug_copies=32, ckpt_secs=90, ema=0.999, threads=8,
                steps=dict(clip=1000, prior=12000, ar_prior=12000, decoder=30000, upsampler=20000),
                batch=dict(clip=128, prior=256, ar_prior=256, decoder=128, upsampler=64),
                lr=dict(clip=5e-4, prior=3e-4, ar_prior=3e-4, decoder=3e-4, upsampler=3e-4),
                share=dict(clip=0.06, prior=0.10, ar_prior=0.09, decoder=0.52, upsampler=0.23),
                sampling=dict(prior=25, decoder=50, upsampler=10)),
}
MIRROR_MAX = 16_000_000  # bytes per file written to --mirror (the device machine returns files of ≤ 16 MiB)
# EMA snapshots mirrored during a stage, at these fractions of it: a fallback if the fully trained
# decoder turns out to memorise its 418 training images (eval.py measures that)
SNAPSHOTS = {"decoder": 0.5}
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

def amp(enabled):
    """bf16 autocast on CUDA (GroupNorm, softmax and the losses stay in float32); nothing on CPU."""
    return torch.autocast("cuda", dtype=torch.bfloat16) if enabled else contextlib.nullcontext()


def no_amp(enabled):
    """Leave an amp() region: float32 for what must match the exported graphs (CLIP embeddings)."""
    return torch.autocast("cuda", enabled=False) if enabled else contextlib.nullcontext()


class Mirror:
    """Copies of what the export needs, in a folder that another machine sends back: the EMA
    weights of every stage (at each checkpoint and at its end) and the run's metadata, grouped in
    files "<group>.pt.partNN" of at most MIRROR_MAX bytes (concatenate the parts to load a group),
    plus losses.jsonl. read_mirror loads them back."""

    def __init__(self, folder, losses_path):
        self.dir = folder
        self.losses = losses_path
        self.groups = {}
        os.makedirs(folder, exist_ok=True)

    @staticmethod
    def group(stage):
        return stage if stage.startswith(("decoder", "upsampler")) else "small"

    def stage(self, stage, ema, step, done):
        g = self.groups.setdefault(self.group(stage), {})
        g[stage] = {"ema": {k: v.detach().to("cpu", copy=True) for k, v in ema.items()}, "step": step, "done": done}
        self._write(self.group(stage))

    def meta(self, **kw):
        self.groups.setdefault("small", {}).setdefault("meta", {}).update(kw)
        self._write("small")

    def _write(self, group):
        buf = io.BytesIO()
        torch.save(self.groups[group], buf)
        b = buf.getvalue()
        parts = [b[i:i + MIRROR_MAX] for i in range(0, len(b), MIRROR_MAX)]
        for k, part in enumerate(parts):
            p = os.path.join(self.dir, f"{group}.pt.part{k:02d}")
            with open(p + ".tmp", "wb") as fh:
                fh.write(part)
            os.replace(p + ".tmp", p)
        for old in glob.glob(os.path.join(self.dir, f"{group}.pt.part*")):
            if not old.endswith(".tmp") and int(old.rsplit("part", 1)[1]) >= len(parts):
                os.remove(old)
        if os.path.exists(self.losses):
            shutil.copyfile(self.losses, os.path.join(self.dir, "losses.jsonl"))


def read_mirror(folder):
    """The groups a Mirror wrote: {"small": {...}, "decoder": {...}, ...} merged into one dict of
    stage -> {"ema", "step", "done"} plus "meta"."""
    out = {}
    for first in sorted(glob.glob(os.path.join(folder, "*.pt.part00"))):
        base = first[:-len("00")]
        parts = sorted(glob.glob(glob.escape(base) + "[0-9][0-9]"))
        blob = b"".join(open(p, "rb").read() for p in parts)
        out.update(torch.load(io.BytesIO(blob), map_location="cpu"))
    return out

class Run:
    def __init__(self, name, recipe, seed, device, log=print, budget=None, mirror=None):
        self.name = name
        self.budget = budget or {}  # stage -> seconds of wall-clock time
        self.mirror = mirror  # callable(stage, ema, step, done) or None
        self.amp = device.type == "cuda"
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
        g = torch.Generator(device=self.device)
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
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01,
                                **({"fused": True} if self.amp else {}))
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
        budget = self.budget.get(stage)
        t0, last_ck, run_loss = time.time(), time.time(), []

        def frac():
            """How far the stage is: its step fraction, or its time fraction when that is larger."""
            f = step / steps
            if budget:
                f = max(f, (elapsed + time.time() - t0) / budget)
            return f

        def save(done):
            ck = {"model": model.state_dict(), "ema": ema, "opt": opt.state_dict(), "step": step,
                  "elapsed": elapsed + time.time() - t0, "done": done, "steps": steps, "batch": batch,
                  "budget_s": budget}
            torch.save(ck, p + ".tmp")
            os.replace(p + ".tmp", p)
            if self.mirror:
                self.mirror(stage, ema, step, done)
            return ck

        # float EMA entries, updated with one fused call per step (integer buffers are copied)
        # (state_dict() tensors share storage with the parameters the optimizer updates in place)
        sd = model.state_dict()
        fkeys = [k for k, v in sd.items() if v.dtype.is_floating_point]
        ikeys = [k for k, v in sd.items() if not v.dtype.is_floating_point]
        e_f, m_f = [ema[k] for k in fkeys], [sd[k] for k in fkeys]
        snap = SNAPSHOTS.get(stage) if self.mirror else None
        model.train()
        while step < steps:
            if self.stop_requested:
                save(False)
                self.log(f"[{stage}] stopped at step {step} (checkpoint saved); run again to resume")
                sys.exit(130)
            f = frac()
            if f >= 1.0:
                self.log(f"[{stage}] time budget of {budget:.0f} s used at step {step}")
                break
            cur = lr * min(1.0, (step + 1) / warm) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * f)))
            for gparam in opt.param_groups:
                gparam["lr"] = cur
            with amp(self.amp):
                loss = loss_fn(self.gen(stage, step), batch)
            opt.zero_grad(set_to_none=True)
            loss.float().backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            decay = min(self.recipe["ema"], (1 + step) / (10 + step))
            with torch.no_grad():
                torch._foreach_mul_(e_f, decay)
                torch._foreach_add_(e_f, m_f, alpha=1 - decay)
                for k in ikeys:
                    ema[k].copy_(sd[k])
            step += 1
            if snap is not None and f >= snap:
                self.mirror(f"{stage}_snapshot", ema, step, False)
                self.log(f"[{stage}] EMA snapshot at step {step} ({f * 100:.0f} % of the stage)")
                snap = None
            run_loss.append(loss.detach().float())
            if step % 10 == 0 or step == steps:
                rec = {"stage": stage, "step": step, "loss": float(torch.stack(run_loss).mean()), "lr": cur,
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
        if run_loss:
            self.loss_log.write(json.dumps({"stage": stage, "step": step,
                                            "loss": float(torch.stack(run_loss).mean()), "lr": cur,
                                            "elapsed_s": round(elapsed + time.time() - t0, 1)}) + "\n")
            self.loss_log.flush()
        ck = save(True)
        self.log(f"[{stage}] done: {step} steps in {ck['elapsed']:.0f} s ({ck['elapsed'] / max(step, 1) * 1e3:.1f} ms/step)")
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

def parse_stage_minutes(spec, ap):
    """"clip=0.5,decoder=3" -> {"clip": 30.0, "decoder": 180.0} (seconds)."""
    out = {}
    for kv in filter(None, (x.strip() for x in spec.split(","))):
        k, _, v = kv.partition("=")
        if k not in STAGES:
            ap.error(f"--stage-minutes {kv}: unknown stage {k} (stages: {', '.join(STAGES)})")
        try:
            out[k] = float(v) * 60
        except ValueError:
            ap.error(f"--stage-minutes {kv}: {v!r} is not a number of minutes")
    return out


DEFAULT_SHARE = dict(clip=0.06, prior=0.10, ar_prior=0.09, decoder=0.52, upsampler=0.23)


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
    ap.add_argument("--minutes", type=float, default=None,
                    help="wall-clock budget of all stages together, split by the recipe's shares")
    ap.add_argument("--stage-minutes", default="", metavar="STAGE=M,...",
                    help="wall-clock budget of single stages (overrides --minutes for them)")
    ap.add_argument("--prepare-cache", default=None, metavar="FILE",
                    help="only decode the training split and learn the BPE merges into FILE (no training)")
    ap.add_argument("--cache", default=None, metavar="FILE", help="train from a --prepare-cache file "
                                                                  "(no DICOM decoding, no pydicom needed)")
    ap.add_argument("--mirror", default=None, metavar="DIR",
                    help="also write every stage's EMA weights and the export's inputs into DIR")
    ap.add_argument("--import", dest="import_dir", default=None, metavar="DIR",
                    help="export the bundle from a --mirror folder (weights trained elsewhere)")
    ap.add_argument("--import-snapshot", action="append", default=[], metavar="STAGE",
                    help="with --import: take STAGE's mid-stage EMA snapshot instead of its final weights")
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
    budget = {}
    if args.minutes:
        share = recipe.get("share", DEFAULT_SHARE)
        budget = {k: args.minutes * 60 * share[k] / sum(share.values()) for k in share}
    budget.update(parse_stage_minutes(args.stage_minutes, ap))
    name = args.name or kind
    args.threads = args.threads or recipe["threads"]
    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if args.gpu and torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        try:  # float32 matrix products and convolutions outside autocast on TF32 tensor cores
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        except (AttributeError, RuntimeError) as e:
            print(f"TF32 not enabled: {e}", file=sys.stderr)
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

    if args.import_dir:
        return import_mirror(args.import_dir, out, kind, recipe, rdir, log, argv, args.import_snapshot)

    t_start = time.time()
    cfg = models.default_configs(recipe["config"])
    c = cfg["clip"]
    S, cs, L = cfg["decoder"]["size"], c["clip_size"], c["context_length"]
    up_sizes = sorted({u["out_size"] for u in cfg["upsamplers"]} | {u["in_size"] for u in cfg["upsamplers"]})
    sizes = tuple(sorted({S, cs, *up_sizes}))
    merges_path = os.path.join(rdir, "bpe_merges.txt.gz")
    if args.prepare_cache:
        log(f"recipe {kind}: decoding {args.data} sizes {sizes} into {args.prepare_cache}")
        train = data.load_split(args.data, "train", sizes)
        merges = bpe.learn(train["captions"], recipe["num_merges"])
        exact = tuple(s for s in sizes if s <= max(S, cs))
        data.write_compact(train, args.prepare_cache, exact=exact, coded=tuple(s for s in sizes if s not in exact),
                           extra={"bpe_merges": merges, "sizes": list(sizes)})
        log(f"{len(train['captions'])} images, {len(merges)} merges: "
            f"{os.path.getsize(args.prepare_cache) / 1e6:.1f} MB")
        return
    if args.cache:
        log(f"recipe {kind}: loading the prepared cache {args.cache}")
        train = data.read_compact(args.cache)
        missing = [s for s in sizes if s not in train["images"]]
        if missing:
            sys.exit(f"{args.cache}: no images of size {missing} (prepared for another config)")
        if not os.path.exists(merges_path) and train.get("bpe_merges"):
            bpe.write_merges(merges_path, train["bpe_merges"])
    else:
        log(f"recipe {kind}: loading {args.data} sizes {sizes}")
        train = data.load_split(args.data, "train", sizes)
    N = len(train["captions"])
    log(f"{N} training images on {device} ({hardware()})")

    # bpe
    if not os.path.exists(merges_path):
        bpe.write_merges(merges_path, bpe.learn(train["captions"], recipe["num_merges"]))
    merges = bpe.read_merges(merges_path)
    tok = bpe.Tokenizer(merges, L)
    tokens = torch.tensor([tok.tokens(t) for t in train["captions"]], dtype=torch.int64)
    log(f"bpe: {len(merges)} merges, vocab {tok.vocab_size}")

    mirror = Mirror(args.mirror, os.path.join(rdir, "losses.jsonl")) if args.mirror else None
    torch.manual_seed(args.seed)
    ms = models.build_models(cfg, tok.vocab_size)
    for k, m in ms.items():
        log(f"{k}: {models.count_params(m)/1e6:.3f} M parameters")
    run = Run(name, recipe, args.seed, device, log, budget=budget, mirror=mirror.stage if mirror else None)
    if budget:
        log("time budgets: " + ", ".join(f"{k} {v:.0f} s" for k, v in budget.items()))
    imgs = {s: v.to(device) for s, v in train["images"].items() if s in sizes}
    tokens = tokens.to(device)
    ab = cosine_alphas_bar().to(device)
    steps, batch, lr = recipe["steps"], recipe["batch"], recipe["lr"]
    cks = {}
    use_amp = device.type == "cuda"

    def pick(g, B):
        return torch.randint(0, N, (B,), generator=g, device=device)

    def clip_in(x):
        return x if x.shape[-1] == cs else F.adaptive_avg_pool2d(x, cs)

    # clip
    clip = ms["clip"]

    def clip_loss(g, B):
        i = pick(g, B)
        x = data.augment(imgs[cs][i], g)
        return clip.loss(x, tokens[i])

    cks["clip"] = run.train("clip", clip, clip_loss, steps["clip"], lr["clip"], batch["clip"])
    clip.eval()
    for p_ in clip.parameters():
        p_.requires_grad_(False)

    # embeddings: clean and augmented copies (float32)
    emb_path = os.path.join(rdir, "embeds.pt")
    if os.path.exists(emb_path):
        E = torch.load(emb_path, map_location=device)
    else:
        with torch.no_grad():
            te, th = clip.text(tokens)
            zi = clip.image(imgs[cs])
            g = torch.Generator(device=device).manual_seed(args.seed + 77)
            aug = [clip.image(data.augment(imgs[cs], g)) for _ in range(recipe["aug_copies"])]
        E = {"te": te, "th": th, "zi": zi, "zi_aug": torch.cat([zi] + aug)}
        torch.save(E, emb_path)
    zi_mean, zi_std = E["zi"].mean(0), E["zi"].std(0).clamp_min(1e-4)
    te_mean, te_std = E["te"].mean(0), E["te"].std(0).clamp_min(1e-4)
    nrep = E["zi_aug"].shape[0] // N
    log(f"embeddings: {E['zi_aug'].shape[0]} image embeddings ({nrep} per image)")
    stats = {"image_embed_mean": zi_mean.cpu().tolist(), "image_embed_std": zi_std.cpu().tolist(),
             "text_embed_mean": te_mean.cpu().tolist(), "text_embed_std": te_std.cpu().tolist()}

    # AR tables (computed before the priors so that a mirror has them from the start)
    a = cfg["ar"]
    tables = export.make_ar_tables(E["zi"].cpu(), E["te"].cpu(), a["kept_dims"], a["levels"], a["dot_levels"])
    log(f"ar tables: PCA {a['kept_dims']} dims keep {tables['explained_variance']*100:.1f} % of the variance")
    if mirror:
        mirror.meta(cfg=cfg, vocab_size=tok.vocab_size, stats=stats, tables=tables, merges=merges,
                    num_merges=len(merges), recipe=recipe, budget=budget, seed=args.seed, name=name,
                    device=str(device), hardware=hardware(), threads=args.threads, num_train_images=N,
                    command="python3 unclip/train/train.py " + " ".join(argv if argv is not None else sys.argv[1:]))

    # diffusion prior
    prior = ms["prior"]

    def prior_loss(g, B):
        j = torch.randint(0, N * nrep, (B,), generator=g, device=device)
        i = j % N
        x0 = ((E["zi_aug"][j] - zi_mean) / zi_std)
        t = torch.randint(0, T_DIFF, (B,), generator=g, device=device)
        noise = torch.randn(x0.shape, generator=g, device=device)
        drop = (torch.rand(B, generator=g, device=device) < 0.1).float()
        pred = prior(q_sample(x0, t, noise, ab), t, E["te"][i], E["th"][i], tokens[i], drop)
        return F.mse_loss(pred.float(), x0)

    cks["prior"] = run.train("prior", prior, prior_loss, steps["prior"], lr["prior"], batch["prior"])

    # AR prior
    seqs = export.ar_sequence(E["zi_aug"].cpu(), E["te"].repeat(nrep, 1).cpu(), tables).to(device)
    arp = ms["ar_prior"]

    def ar_loss(g, B):
        j = torch.randint(0, N * nrep, (B,), generator=g, device=device)
        i = j % N
        s = seqs[j]
        drop = (torch.rand(B, generator=g, device=device) < 0.1).float()
        logits = arp(s[:, :-1], E["te"][i], E["th"][i], tokens[i], drop)
        return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), s[:, 1:].reshape(-1))

    cks["ar_prior"] = run.train("ar_prior", arp, ar_loss, steps["ar_prior"], lr["ar_prior"], batch["ar_prior"])

    # decoder
    dec = ms["decoder"]

    def dec_loss(g, B):
        i = pick(g, B)
        x0 = data.augment(imgs[S][i], g)
        with torch.no_grad(), no_amp(use_amp):
            zi = clip.image(clip_in(x0))
        t = torch.randint(0, T_DIFF, (B,), generator=g, device=device)
        noise = torch.randn(x0.shape, generator=g, device=device)
        di = (torch.rand(B, generator=g, device=device) < 0.1).float()
        dt = (torch.rand(B, generator=g, device=device) < 0.5).float()
        pred = dec(q_sample(x0, t, noise, ab), t, zi, E["th"][i], tokens[i], di, dt)
        return F.mse_loss(pred.float(), noise)

    cks["decoder"] = run.train("decoder", dec, dec_loss, steps["decoder"], lr["decoder"], batch["decoder"])

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
            oy, ox = (torch.randint(0, (so - crop) // f + 1, (2,), generator=g, device=device) * f).tolist()
            hi = imgs[so][i][:, :, oy:oy + crop, ox:ox + crop]
            hi = data.augment(hi, g, rot_deg=0.0, scale=0.0, shift=0.0)
            lo = data.gaussian_blur(F.adaptive_avg_pool2d(hi, crop // f), 0.6, 3)
            t = torch.randint(0, T_DIFF, (B,), generator=g, device=device)
            noise = torch.randn(hi.shape, generator=g, device=device)
            return F.mse_loss(up(q_sample(hi, t, noise, ab), t, lo).float(), noise)

        cks[stage] = run.train(stage, up, up_loss, steps["upsampler"], lr["upsampler"], batch["upsampler"])

    train_s = sum(ck["elapsed"] for ck in cks.values())
    summary = {"recipe": kind, "name": name, "seed": args.seed,
               "steps": {k: ck["step"] for k, ck in cks.items()}, "batch": batch, "lr": lr,
               "budget_s": {k: round(v, 1) for k, v in budget.items()},
               "stage_seconds": {k: round(ck["elapsed"], 1) for k, ck in cks.items()},
               "train_seconds": round(train_s, 1), "num_train_images": N, "num_merges": len(merges),
               "params": {k: models.count_params(m) for k, m in ms.items()},
               "ar_explained_variance": tables["explained_variance"], "device": str(device),
               "threads": args.threads, "hardware": hardware(), "config": cfg,
               "final_loss": final_losses(os.path.join(rdir, "losses.jsonl")),
               "command": ("python3" if args.cache else "/usr/bin/python3") + " unclip/train/train.py "
               + " ".join(argv if argv is not None else sys.argv[1:])}
    with open(os.path.join(rdir, "summary.json"), "w") as fh:
        json.dump(summary, fh, indent=1)
    if mirror:
        mirror.meta(summary=summary)
    log(f"training done: {train_s/60:.1f} min of stage time; total wall time {(time.time()-t_start)/60:.1f} min")
    if args.no_export:
        return
    export_run(out, kind, recipe, ms, cfg, merges_path, len(merges), stats, tables, summary, rdir, log)


def final_losses(path):
    """The last logged loss of every stage in a losses.jsonl."""
    last = {}
    if os.path.exists(path):
        with open(path) as fh:
            for line in fh:
                if line.strip():
                    r = json.loads(line)
                    last[r["stage"]] = round(r["loss"], 5)
    return last


def export_run(out, kind, recipe, ms, cfg, merges_path, num_merges, stats, tables, summary, rdir, log):
    """Write the bundle of trained modules to out (ONNX graphs exported here, on the CPU)."""
    for m in ms.values():
        m.to("cpu").eval()
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
    desc = f"unCLIP trained on chest radiographs (recipe {kind})"
    export.export_bundle(out, name=os.path.basename(os.path.abspath(out)), description=desc,
                         models=ms, cfg=cfg, merges_path=merges_path, num_merges=num_merges, stats=stats,
                         ar_tables=tables, diffusion=diff, model_card=card,
                         training={k: v for k, v in summary.items() if k != "config"})
    torch.save({"cfg": cfg, "vocab_size": ms["clip"].text.tok.num_embeddings,
                "state": {k: m.state_dict() for k, m in ms.items()}}, os.path.join(rdir, "models.pt"))
    size = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
    log(f"bundle at {out}: {size/1e6:.1f} MB")


def import_mirror(folder, out, kind, recipe, rdir, log, argv, snapshots=()):
    """Export the bundle from the files a --mirror run wrote (typically on another machine)."""
    got = read_mirror(folder)
    meta = got.get("meta")
    if not meta:
        sys.exit(f"{folder}: no run metadata (small.pt.part00 missing or from a run stopped before "
                 "the CLIP embeddings)")
    cfg = meta["cfg"]
    ms = models.build_models(cfg, meta["vocab_size"])
    targets = {"clip": ms["clip"], "prior": ms["prior"], "ar_prior": ms["ar_prior"], "decoder": ms["decoder"]}
    for k, up in enumerate(ms["upsamplers"]):
        targets["upsampler" if k == 0 else f"upsampler{k + 1}"] = up
    used = {}
    for stage, m in targets.items():
        key = f"{stage}_snapshot" if stage in snapshots else stage
        if key not in got:
            sys.exit(f"{folder}: no weights of {key} in the mirror")
        m.load_state_dict(got[key]["ema"])
        used[stage] = got[key]["step"]
        log(f"{stage}: EMA weights of step {got[key]['step']}" + (" (mid-stage snapshot)" if key != stage else "")
            + ("" if got[key]["done"] or key != stage else " (stage unfinished)"))
    merges_path = os.path.join(rdir, "bpe_merges.txt.gz")
    bpe.write_merges(merges_path, meta["merges"])
    summary = dict(meta.get("summary") or {})
    if not summary:
        summary = {"recipe": kind, "name": meta["name"], "seed": meta["seed"],
                   "steps": {k: got[k]["step"] for k in targets}, "hardware": meta["hardware"],
                   "device": meta["device"], "command": meta["command"], "unfinished": True}
    summary["exported_steps"] = used
    summary["export_command"] = "/usr/bin/python3 unclip/train/train.py " + " ".join(
        argv if argv is not None else sys.argv[1:])
    with open(os.path.join(rdir, "summary.json"), "w") as fh:
        json.dump(summary, fh, indent=1)
    if os.path.exists(os.path.join(folder, "losses.jsonl")):
        shutil.copyfile(os.path.join(folder, "losses.jsonl"), os.path.join(rdir, "losses.jsonl"))
    export_run(out, kind, dict(recipe, **{"sampling": meta["recipe"]["sampling"]}), ms, cfg, merges_path,
               meta["num_merges"], meta["stats"], meta["tables"], summary, rdir, log)


if __name__ == "__main__":
    main()
