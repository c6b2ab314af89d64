"""Reference unCLIP samplers in PyTorch: the same algorithms as the Go runtime (package ``unclip``).

Every function here mirrors one in Go operation for operation (docs/bundle.md, "Sampling" and
"Noise order and parity files"): the sampler state is float64, the graphs get float32, and every
random draw comes from a noise source object with two methods, ``normal(shape)`` and ``uniform(n)``,
consumed in the documented order. ``golden.py`` uses it to write the parity files the Go tests read;
the training kit uses it to sample for evaluation and sample grids.

Typical use::

    import reference as R
    models = R.Models.from_bundle(bundle_dir, modules)        # modules as models.build_models returns
    out = R.generate(models, ["PA chest radiograph, no finding"], R.TorchNoise(seed=0))
    out["images"]                                            # [B, C, S, S] float32 in [-1, 1]
    var = R.vary(models, image, 4, R.TorchNoise(1), eta=0.8)  # DDIM inversion, then η > 0

All functions run under ``torch.no_grad()``; modules are put in eval mode by ``Models``.
"""
import json
import math
import os

import torch
import torch.nn.functional as F

import bpe

# ----------------------------------------------------------------------------- noise sources


class TorchNoise:
    """Seeded noise from a torch.Generator. Draws are float32 values returned as float64 tensors
    (so that they round-trip exactly through the golden files)."""

    def __init__(self, seed=0):
        self.g = torch.Generator().manual_seed(int(seed))

    def normal(self, shape):
        return torch.randn(*shape, generator=self.g, dtype=torch.float32).double()

    def uniform(self, n):
        return torch.rand(n, generator=self.g, dtype=torch.float32).double()


class RecordingNoise:
    """Wraps a source and records every draw (golden files)."""

    def __init__(self, inner):
        self.inner = inner
        self.normals, self.uniforms = [], []

    def normal(self, shape):
        v = self.inner.normal(shape)
        self.normals.append(v.clone())
        return v

    def uniform(self, n):
        v = self.inner.uniform(n)
        self.uniforms.append(v.clone())
        return v


class ReplayNoise:
    """Returns recorded draws in order; a shape mismatch or a draw past the end is an error."""

    def __init__(self, normals, uniforms=()):
        self.normals, self.uniforms = list(normals), list(uniforms)
        self.ni = self.ui = 0

    def normal(self, shape):
        v = self.normals[self.ni]
        if tuple(v.shape) != tuple(shape):
            raise ValueError(f"replay: normal draw {self.ni + 1} has shape {tuple(shape)}, recorded {tuple(v.shape)}")
        self.ni += 1
        return v.double().clone()

    def uniform(self, n):
        v = self.uniforms[self.ui]
        if v.numel() != n:
            raise ValueError(f"replay: uniform draw {self.ui + 1} has {n} values, recorded {v.numel()}")
        self.ui += 1
        return v.double().clone()


# ----------------------------------------------------------------------------- schedules


def alphas_cumprod(block):
    """ᾱ_i, i = 0..T-1, float64 (docs/bundle.md): cosine β_i = min(1 - f(i+1)/f(i), 0.999), linear
    β = linspace(beta_start, beta_end, T); ᾱ = cumprod(1 - β). Train with the same schedule."""
    T = int(block["timesteps"])
    if block["schedule"] == "cosine":
        def f(u):
            return math.cos((u / T + 0.008) / 1.008 * math.pi / 2) ** 2
        betas = [min(1 - f(i + 1) / f(i), 0.999) for i in range(T)]
    elif block["schedule"] == "linear":
        b0, b1 = float(block["beta_start"]), float(block["beta_end"])
        betas = [b0 + (b1 - b0) * i / (T - 1) for i in range(T)]
    else:
        raise ValueError(f"schedule {block['schedule']!r} is not supported")
    out, acc = [], 1.0
    for b in betas:
        acc *= 1 - b
        out.append(acc)
    return torch.tensor(out, dtype=torch.float64)


def respace(T, n):
    """n evenly strided training indices floor(k(T-1)/(n-1) + 0.5), k = 0..n-1."""
    if not 1 <= n <= T:
        raise ValueError(f"respace: {n} steps must be in 1..{T}")
    if n == 1:
        return [T - 1]
    return [int(math.floor(k * (T - 1) / (n - 1) + 0.5)) for k in range(n)]


def q_sample(x0, t, eps, ab):
    """Training-time noising x_t = sqrt(ᾱ_t) x0 + sqrt(1-ᾱ_t) eps (t: int64 [B])."""
    a = ab[t].to(x0.dtype).reshape(-1, *([1] * (x0.dim() - 1)))
    return a.sqrt() * x0 + (1 - a).sqrt() * eps


# Numerical conditioning diagnostic for parity tests: the number of x̂_0 elements an ε-model predicted
# with a gain sqrt(1-ᾱ)/sqrt(ᾱ) above ILL_GAIN that were not clamped (at t = T-1 of the cosine schedule
# the gain is ~2e4, so float32 differences between runtimes become 1e-3 differences in x̂_0).
ILL_GAIN = 1e3
conditioning = {"ill": 0}


def _predict(param, x, out, ab, clip, lo, hi, diagnose=True):
    sa, s1 = math.sqrt(ab), math.sqrt(1 - ab)
    o = out.double()
    if diagnose and param == "eps" and s1 / sa > ILL_GAIN:
        x0u = (x - s1 * o) / sa
        conditioning["ill"] += int(((x0u >= lo) & (x0u <= hi)).sum()) if clip else x0u.numel()
    if param == "eps":
        eps, x0 = o, (x - s1 * o) / sa
    elif param == "x0":
        x0, eps = o, (x - sa * o) / s1
    elif param == "v":
        x0, eps = sa * x - s1 * o, s1 * x + sa * o
    else:
        raise ValueError(f"parameterization {param!r} is not supported")
    if clip:
        x0c = x0.clamp(lo, hi)
        changed = x0c != x0
        eps = torch.where(changed, (x - sa * x0c) / s1, eps)
        x0 = x0c
    return x0, eps


def _dynamic_threshold(x, x0, eps, ab, p, r):
    """Dynamic thresholding per batch row: s = max(r, quantile(|x̂_0|, p)), x̂_0 <- clamp(x̂_0, -s, s)·r/s;
    ε̂ recomputed for the whole row when s > r, else only where the clamp changed x̂_0."""
    r = r if r > 0 else 1.0
    sa, s1 = math.sqrt(ab), math.sqrt(1 - ab)
    B = x0.shape[0]
    x0, eps = x0.clone().reshape(B, -1), eps.clone().reshape(B, -1)
    xf = x.reshape(B, -1)
    for b in range(B):
        s = max(r, float(torch.quantile(x0[b].abs(), p)))
        if s <= r:
            c = x0[b].clamp(-r, r)
            changed = c != x0[b]
            x0[b] = c
            eps[b] = torch.where(changed, (xf[b] - sa * c) / s1, eps[b])
        else:
            x0[b] = x0[b].clamp(-s, s) * r / s
            eps[b] = (xf[b] - sa * x0[b]) / s1
    return x0.reshape(x.shape), eps.reshape(x.shape)


class SampleConfig:
    """One diffusion run: schedule, parameterisation, steps, sampler ("ddim"|"ddpm"), η, clipping."""

    def __init__(self, block, steps=None, sampler=None, eta=None, on_step=None, clip=None, threshold=0.0,
                 top_t=None):
        self.ab = alphas_cumprod(block)
        self.param = block["parameterization"]
        self.steps = int(steps or block["sampling_steps"])
        self.sampler = sampler or "ddim"
        self.eta = float(block.get("eta", 0.0) if eta is None else eta)
        self.clip = bool(block.get("clip_x0", False) if clip is None else clip)
        rng = block.get("clip_range", [-1.0, 1.0])
        self.lo, self.hi = float(rng[0]), float(rng[1])
        self.on_step = on_step
        self.threshold = float(threshold or 0.0)
        self.top_t = int(top_t or 0)

    def grid(self):
        """Respaced timesteps over [0, top_t] (top_t 0 or out of range: T-1)."""
        T = len(self.ab)
        top = self.top_t if 0 < self.top_t < T - 1 else T - 1
        return respace(top + 1, self.steps)


def sample(cfg, denoise, x_T, noise):
    """Reverse process from x_T (float64); denoise(x float32, t int) -> graph output. Returns x̂_0."""
    ab = cfg.ab
    ts = cfg.grid()
    x = x_T.double().clone()
    for k in range(len(ts) - 1, -1, -1):
        t = ts[k]
        out = denoise(x.float(), t)
        a = float(ab[t])
        dynamic = 0 < cfg.threshold < 1
        # dynamic thresholding divides x̂_0 by its own quantile, which cancels the 1/sqrt(ᾱ) gain
        x0, eps = _predict(cfg.param, x, out, a, cfg.clip and not dynamic, cfg.lo, cfg.hi, diagnose=not dynamic)
        if dynamic:
            x0, eps = _dynamic_threshold(x, x0, eps, a, cfg.threshold, max(abs(cfg.lo), abs(cfg.hi)))
        if cfg.on_step:
            cfg.on_step(len(ts) - k, len(ts))
        if k == 0:
            x = x0
            break
        ap = float(ab[ts[k - 1]])
        if cfg.sampler == "ddim":
            sigma = cfg.eta * math.sqrt((1 - ap) / (1 - a)) * math.sqrt(1 - a / ap)
            d = math.sqrt(max(1 - ap - sigma * sigma, 0.0))
            x = math.sqrt(ap) * x0 + d * eps
            if cfg.eta > 0:
                x = x + sigma * noise.normal(tuple(x.shape))
        elif cfg.sampler == "ddpm":
            beta = 1 - a / ap
            c0 = math.sqrt(ap) * beta / (1 - a)
            ct = math.sqrt(1 - beta) * (1 - ap) / (1 - a)
            sd = math.sqrt(beta * (1 - ap) / (1 - a))
            z = noise.normal(tuple(x.shape))
            x = c0 * x0 + ct * x + sd * z
        else:
            raise ValueError(f"sampler {cfg.sampler!r} is not supported")
    return x


def invert(cfg, denoise, image):
    """Deterministic DDIM inversion of a clean image over the same grid; returns x at t_{N-1}."""
    ab = cfg.ab
    ts = cfg.grid()
    x = image.double().clone()
    for k in range(len(ts) - 1):
        t = ts[k]
        out = denoise(x.float(), t)
        x0, eps = _predict(cfg.param, x, out, float(ab[t]), False, 0.0, 0.0, diagnose=False)
        an = float(ab[ts[k + 1]])
        x = math.sqrt(an) * x0 + math.sqrt(1 - an) * eps
        if cfg.on_step:
            cfg.on_step(k + 1, len(ts) - 1)
    return x


def guided(scale, doubled, cond):
    """Classifier-free guidance from one doubled batch [uncond; cond]: u + s(c - u)."""
    if scale == 1:
        return cond

    def den(x, t):
        out = doubled(torch.cat([x, x], 0), t)
        n = x.shape[0]
        u, c = out[:n].double(), out[n:].double()
        return (u + scale * (c - u)).float()
    return den


# ----------------------------------------------------------------------------- vectors


def slerp(a, b, theta):
    """Slerp on the angle of the normalised dot product (clamped), lerp when (anti)parallel.
    a, b: float32 [D]; computed in float64; returns float32."""
    a64, b64 = a.double(), b.double()
    na, nb = a64.norm(), b64.norm()
    if na == 0 or nb == 0:
        return ((1 - theta) * a64 + theta * b64).float()
    cos = float((a64 @ b64) / (na * nb))
    omega = math.acos(max(-1.0, min(1.0, cos)))
    so = math.sin(omega)
    if so < 1e-6:
        return ((1 - theta) * a64 + theta * b64).float()
    return ((math.sin((1 - theta) * omega) / so) * a64 + (math.sin(theta * omega) / so) * b64).float()


def text_diff_direction(zi, zt, zt0):
    """normalise(z_t - z_t0) rescaled to |z_i| (float32 in, float32 out)."""
    d = zt.double() - zt0.double()
    s = float(d.norm())
    if s == 0:
        raise ValueError("text diff: the two captions have the same embedding")
    return (d * (float(zi.double().norm()) / s)).float()


def resize_area(images, size):
    """Area resize (adaptive average pooling), as the Go runtime and docs/bundle.md."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    return F.adaptive_avg_pool2d(images, (size, size))


# ----------------------------------------------------------------------------- models


class Models:
    """The torch modules of a bundle plus its manifest (bundle.json as a dict) and tokenizer.

    modules: dict as models.build_models returns (clip, prior, ar_prior, decoder, upsamplers)."""

    def __init__(self, modules, manifest, tokenizer):
        self.m = modules
        self.manifest = manifest
        self.tok = tokenizer
        for v in modules.values():
            if v is not None:  # a bundle without a prior has none
                v.eval()

    @classmethod
    def from_bundle(cls, bundle_dir, modules):
        with open(os.path.join(bundle_dir, "bundle.json")) as f:
            manifest = json.load(f)
        t = manifest["tokenizer"]
        tok = bpe.Tokenizer.from_file(os.path.join(bundle_dir, t["merges"]), t["context_length"], t.get("num_merges"))
        return cls(modules, manifest, tok)

    @property
    def components(self):
        return self.manifest["components"]

    def clip_stats(self, key):
        return torch.tensor(self.manifest["clip"][key], dtype=torch.float32).double()


def tokenize(models, captions):
    return torch.tensor([models.tok.tokens(c) for c in captions], dtype=torch.int64)


@torch.no_grad()
def encode_text(models, captions=None, tokens=None):
    """-> dict(tokens [B, L] int64, embed [B, D], hidden [B, L, W]) (float32, raw z_t)."""
    if tokens is None:
        tokens = tokenize(models, captions)
    emb, hid = models.m["clip"].text(tokens)
    return {"tokens": tokens, "embed": emb.float(), "hidden": hid.float()}


def _rows(text, idx):
    idx = torch.as_tensor(idx, dtype=torch.int64)
    return {k: v[idx] for k, v in text.items()}


def _doubled(text):
    return {k: torch.cat([v, v], 0) for k, v in text.items()}


@torch.no_grad()
def encode_image(models, images):
    """images [B, C, H, W] float32 in the bundle's range -> raw z_i [B, D] float32."""
    images = resize_area(images.float(), models.manifest["image"]["clip_size"])
    return models.m["clip"].image(images).float()


@torch.no_grad()
def sample_prior(models, text, noise, steps=None, guidance_scale=None, candidates=None, sampler=None,
                 eta=None, on_step=None, clip=None):
    """Diffusion prior with CFG and N candidates per caption (caption-major), reranked by cosine
    similarity to z_t. -> dict(embeds [B, D], candidates [B·N, D], scores [B·N], chosen [B])."""
    comp = models.components["prior"]
    block = comp["diffusion"]
    n = candidates or comp.get("candidates") or 2
    B0 = text["tokens"].shape[0]
    cond = _rows(text, [i // n for i in range(B0 * n)])
    B = B0 * n
    D = models.manifest["clip"]["embed_dim"]
    prior = models.m["prior"]

    def cond_den(x, t):
        return prior(x, torch.full((B,), t, dtype=torch.int64), cond["embed"], cond["hidden"], cond["tokens"],
                     torch.zeros(B))
    dbl = _doubled(cond)
    drop2 = torch.cat([torch.ones(B), torch.zeros(B)])

    def doubled(x2, t):
        return prior(x2, torch.full((2 * B,), t, dtype=torch.int64), dbl["embed"], dbl["hidden"], dbl["tokens"], drop2)
    scale = float(guidance_scale or block.get("guidance_scale") or 1.0)
    den = guided(scale, doubled, cond_den)
    x_T = noise.normal((B, D))
    x = sample(SampleConfig(block, steps, sampler, eta, on_step, clip), den, x_T, noise)
    clamp = float(comp.get("clamp") or 0)
    if clamp > 0:
        x = x.clamp(-clamp, clamp)
    cands = (x * models.clip_stats("image_embed_std") + models.clip_stats("image_embed_mean")).float()
    scores = F.cosine_similarity(cands.double(), cond["embed"].double(), dim=-1)
    chosen, embeds = [], []
    for b in range(B0):
        s = scores[b * n:(b + 1) * n]
        j = int(torch.argmax(s))  # first maximum
        chosen.append(j)
        embeds.append(cands[b * n + j])
    return {"embeds": torch.stack(embeds), "candidates": cands, "scores": scores, "chosen": chosen}


def dot_token_probs(hist):
    hist = [float(h) for h in hist]
    total = sum(hist)
    median, cum = 0, 0.0
    for i, c in enumerate(hist):
        cum += c
        if cum >= total / 2:
            median = i
            break
    p = [0.0] * len(hist)
    for i in range(median, len(hist)):
        p[i] = hist[i] + 1
    z = sum(p)
    return [v / z for v in p]


def inverse_cdf(p, u):
    cum, last = 0.0, 0
    for i, v in enumerate(p):
        if v == 0:
            continue
        cum += v
        last = i
        if cum >= u:
            return i
    return last


def sample_categorical(logits, temperature, top_p, u):
    """softmax(logits/T) truncated to top-p (stable sort, ties by index), inverse CDF with u."""
    temperature = temperature if temperature and temperature > 0 else 1.0
    top_p = top_p if top_p and top_p > 0 else 1.0
    lg = [float(v) / temperature for v in logits.tolist()]
    mx = max(lg)
    p = [math.exp(v - mx) for v in lg]
    z = sum(p)
    p = [v / z for v in p]
    order = sorted(range(len(p)), key=lambda i: -p[i])  # stable: ties keep the lower index first
    keep, cum = len(order), 0.0
    for k, i in enumerate(order):
        cum += p[i]
        if cum >= top_p:
            keep = k + 1
            break
    kz = sum(p[i] for i in order[:keep])
    cum = 0.0
    for i in order[:keep]:
        cum += p[i] / kz
        if cum >= u:
            return i
    return order[keep - 1]


@torch.no_grad()
def sample_ar_prior(models, text, noise, temperature=1.0, top_p=1.0, guidance_scale=1.0, on_step=None):
    """AR prior: dot token from the upper half of the histogram, then K codes token by token.
    -> dict(embeds [B, D] float32, dot_tokens [B], codes [B, K])."""
    ar = models.components["ar_prior"]["ar"]
    B = text["tokens"].shape[0]
    K, V = int(ar["kept_dims"]), int(ar["levels"])
    scale = float(guidance_scale or 1.0)
    probs = dot_token_probs(ar["dot_histogram"])
    u = noise.uniform(B)
    dots = [inverse_cdf(probs, float(u[b])) for b in range(B)]
    seq = [[V + d] for d in dots]
    enc, drop = text, torch.zeros(B)
    if scale != 1:
        enc, drop = _doubled(text), torch.cat([torch.ones(B), torch.zeros(B)])
    rows = enc["tokens"].shape[0]
    codes = [[0] * K for _ in range(B)]
    for k in range(K):
        toks = torch.tensor([seq[r % B] for r in range(rows)], dtype=torch.int64)
        lg = models.m["ar_prior"](toks, enc["embed"], enc["hidden"], enc["tokens"], drop).float()
        u = noise.uniform(B)
        for b in range(B):
            logits = lg[b, k]
            if scale != 1:
                un, co = lg[b, k].double(), lg[B + b, k].double()
                logits = (un + scale * (co - un)).float()
            c = sample_categorical(logits, temperature, top_p, float(u[b]))
            codes[b][k] = c
            seq[b].append(c)
        if on_step:
            on_step(k + 1, K)
    mean = torch.tensor(ar["pca_mean"], dtype=torch.float32).double()
    comps = torch.tensor(ar["pca_components"], dtype=torch.float32).double()[:K]
    lo = torch.tensor(ar["coef_min"][:K], dtype=torch.float64)
    hi = torch.tensor(ar["coef_max"][:K], dtype=torch.float64)
    embeds = []
    for b in range(B):
        q = torch.tensor(codes[b], dtype=torch.float64)
        c = lo + (q + 0.5) / V * (hi - lo)
        embeds.append((mean + c @ comps).float())
    return {"embeds": torch.stack(embeds), "dot_tokens": dots, "codes": codes}


def _empty_text(models, B):
    t = encode_text(models, [""])
    return _rows(t, [0] * B), 1.0


def _decoder_denoiser(models, zi, text, drop_text, scale):
    """The decoder conditioned on zi [B, D] and text (B rows), guided as one doubled batch
    [uncond; cond] whose unconditional half drops image and text."""
    dec = models.m["decoder"]
    B = zi.shape[0]

    def ev(x, t, z, enc, di, dt):
        n = x.shape[0]
        return dec(x, torch.full((n,), t, dtype=torch.int64), z, enc["hidden"], enc["tokens"], di, dt)

    def cond_den(x, t):
        return ev(x, t, zi, text, torch.zeros(B), torch.full((B,), drop_text))
    z2, dbl = torch.cat([zi, zi], 0), _doubled(text)
    di2 = torch.cat([torch.ones(B), torch.zeros(B)])
    dt2 = torch.cat([torch.ones(B), torch.full((B,), drop_text)])

    def doubled(x2, t):
        return ev(x2, t, z2, dbl, di2, dt2)
    return guided(scale, doubled, cond_den)


def _decoder_text(models, text, B):
    if text is None:
        return _empty_text(models, B)
    if text["tokens"].shape[0] == 1 and B > 1:
        text = _rows(text, [0] * B)
    return text, 0.0


def _decoder_scale(models, guidance_scale):
    block = models.components["decoder"]["diffusion"]
    return float(guidance_scale or block.get("guidance_scale") or 1.0)


def inversion_top(ab):
    """Largest training index with ᾱ >= 1e-2: the top of the inversion grid (docs/bundle.md)."""
    return max(i for i in range(len(ab)) if float(ab[i]) >= INVERSION_MIN_ALPHA_BAR)


INVERSION_MIN_ALPHA_BAR = 1e-2


@torch.no_grad()
def decode(models, zi, text, noise, steps=None, guidance_scale=None, sampler=None, eta=None, x_T=None,
           on_step=None, clip=None, threshold=0.0, top_t=None):
    """Decoder with CFG as one doubled batch. zi [B, D] raw; text: encode_text dict with B rows (or 1,
    repeated), None = no caption (text dropped). -> images [B, C, S, S] float32."""
    im = models.manifest["image"]
    block = models.components["decoder"]["diffusion"]
    B = zi.shape[0]
    C, S = im["channels"], im["size"]
    text, drop_text = _decoder_text(models, text, B)
    den = _decoder_denoiser(models, zi.float(), text, drop_text, _decoder_scale(models, guidance_scale))
    if x_T is None:
        x_T = noise.normal((B, C, S, S))
    x = sample(SampleConfig(block, steps, sampler, eta, on_step, clip, threshold, top_t), den, x_T, noise)
    return x.float()


@torch.no_grad()
def invert_decoder(models, images, zi, text=None, steps=None, on_step=None, guidance_scale=None, top_t=None):
    """DDIM inversion of the decoder with the same guidance and grid as decode() with the same
    options, so that decoding with η = 0 reconstructs. -> x_T float64 at the top of the grid."""
    S = models.manifest["image"]["size"]
    images = resize_area(images.float(), S)
    B = images.shape[0]
    text, drop_text = _decoder_text(models, text, B)
    den = _decoder_denoiser(models, zi.float(), text, drop_text, _decoder_scale(models, guidance_scale))
    cfg = SampleConfig(models.components["decoder"]["diffusion"], steps, "ddim", 0.0, on_step, top_t=top_t)
    return invert(cfg, den, images.double())


@torch.no_grad()
def upsample(models, stage, low, noise, steps=None, sampler=None, eta=None, on_step=None, clip=None):
    """Upsampler stage k (no guidance). low [B, C, in, in] -> [B, C, out, out] float32."""
    comp = models.components["upsamplers"][stage]
    low = resize_area(low.float(), comp["in_size"])
    B, C = low.shape[0], low.shape[1]
    S = comp["out_size"]
    up = models.m["upsamplers"][stage]

    def den(x, t):
        return up(x, torch.full((B,), t, dtype=torch.int64), low)
    x_T = noise.normal((B, C, S, S))
    return sample(SampleConfig(comp["diffusion"], steps, sampler, eta, on_step, clip), den, x_T, noise).float()


def cascade(models, base, noise, stages=None, options=None):
    """Upsampler stages 0..stages-1 in turn (None: all). options: list of dicts of upsample kwargs."""
    n = len(models.components.get("upsamplers", []))
    stages = n if not stages or stages > n else stages
    img = base
    for k in range(stages):
        kw = (options[k] if options and k < len(options) else None) or {}
        img = upsample(models, k, img, noise, **kw)
    return img


@torch.no_grad()
def generate(models, captions, noise, prior="diffusion", prior_opts=None, decoder_opts=None,
             upsampler_opts=None, stages=None, upsample_images=True):
    """Text -> image: prior (or "ar"), decoder, upsamplers, drawing noise in that order.
    -> dict(text, embeds, base, images)."""
    text = encode_text(models, captions)
    if prior == "ar":
        p = sample_ar_prior(models, text, noise, **(prior_opts or {}))
    else:
        p = sample_prior(models, text, noise, **(prior_opts or {}))
    base = decode(models, p["embeds"], text, noise, **(decoder_opts or {}))
    images = cascade(models, base, noise, stages, upsampler_opts) if upsample_images else base
    return {"text": text, "embeds": p["embeds"], "prior": p, "base": base, "images": images}


@torch.no_grad()
def vary(models, image, n, noise, caption="", eta=0.8, steps=None, guidance_scale=None,
         upsampler_opts=None, stages=None, upsample_images=True, clip=None, top_t=None):
    """Variations of one image [1, C, H, W]: z_i, DDIM inversion to x_T, decode n times with DDIM η
    (inversion and decoding share guidance and grid; the grid's top is inversion_top).
    -> dict(embed, x_T, base, images)."""
    zi = encode_image(models, image)
    text = encode_text(models, [caption]) if caption else None
    top = top_t or inversion_top(alphas_cumprod(models.components["decoder"]["diffusion"]))
    x_T = invert_decoder(models, image, zi, text, steps, guidance_scale=guidance_scale, top_t=top)
    xs = x_T.repeat(n, 1, 1, 1)
    base = decode(models, zi.repeat(n, 1), text, noise, steps=steps, guidance_scale=guidance_scale,
                  sampler="ddim", eta=0.8 if eta is None else eta, x_T=xs, clip=clip, top_t=top)
    images = cascade(models, base, noise, stages, upsampler_opts) if upsample_images else base
    return {"embed": zi, "x_T": x_T, "base": base, "images": images}


def _slerp_sequence(models, za, zb, thetas, noise, decoder_opts, upsampler_opts, stages, upsample_images, x1=None):
    im = models.manifest["image"]
    zs = torch.stack([slerp(za, zb, float(th)) for th in thetas])
    if x1 is None:
        x1 = noise.normal((1, im["channels"], im["size"], im["size"]))
    xs = x1.repeat(len(thetas), 1, 1, 1)
    base = decode(models, zs, None, noise, x_T=xs, **(decoder_opts or {}))
    images = cascade(models, base, noise, stages, upsampler_opts) if upsample_images else base
    return {"thetas": list(thetas), "embeds": zs, "base": base, "images": images}


@torch.no_grad()
def interpolate(models, a, b, frames, noise, decoder_opts=None, upsampler_opts=None, stages=None,
                upsample_images=True):
    """Frames between images a and b ([1, C, H, W]): slerp(z_a, z_b, j/(F-1)), one shared x_T."""
    za, zb = encode_image(models, a)[0], encode_image(models, b)[0]
    thetas = [j / (frames - 1) for j in range(frames)]
    return _slerp_sequence(models, za, zb, thetas, noise, decoder_opts, upsampler_opts, stages, upsample_images)


@torch.no_grad()
def text_diff(models, image, caption, baseline, thetas, noise, decoder_opts=None, upsampler_opts=None,
              stages=None, upsample_images=True, invert_source=False):
    """Text diff: z_d = normalise(z_t - z_t0) at |z_i|, frames slerp(z_i, z_d, θ), one shared x_T
    (drawn, or with invert_source the DDIM inversion of the image, as in the paper's figures)."""
    zi = encode_image(models, image)[0]
    t = encode_text(models, [caption, baseline])
    zd = text_diff_direction(zi, t["embed"][0], t["embed"][1])
    x1 = None
    if invert_source:
        decoder_opts = dict(decoder_opts or {})
        decoder_opts.setdefault("top_t", inversion_top(alphas_cumprod(models.components["decoder"]["diffusion"])))
        x1 = invert_decoder(models, image, zi[None], None, decoder_opts.get("steps"),
                            guidance_scale=decoder_opts.get("guidance_scale"), top_t=decoder_opts["top_t"])
    return _slerp_sequence(models, zi, zd, thetas, noise, decoder_opts, upsampler_opts, stages, upsample_images, x1)
