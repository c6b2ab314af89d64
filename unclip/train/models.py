"""Model definitions of the unCLIP training kit.

Every module's ``forward`` takes exactly the inputs of its ONNX graph in docs/bundle.md, in the same
order, and returns its outputs (a tuple where the graph has several), so that ``export.py`` can
trace it as is and ``reference.py`` can sample with the very same modules.

The modules are small and scaled by plain dict configs (see ``default_configs``):

* ``ClipText`` / ``ClipImage``: the CLIP dual encoder (causal transformer text tower, small conv
  image tower); ``ClipModel`` holds both plus the learned temperature and the contrastive loss.
* ``DiffusionPrior``: decoder-only causal transformer over
  [text tokens, z_t, time embedding, noised z_i, query]; predicts x0; learned null conditioning.
* ``ARPrior``: causal transformer over [text tokens, z_t, dot token, codes].
* ``Decoder``: UNet on x_t; z_i projected to 4 context tokens and added to the time embedding;
  caption tokens as further context of cross-attention; drop flags for classifier-free guidance.
* ``Upsampler``: UNet on [x_t, upsample(low_res)] (the upsampling happens inside the graph).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

NEG = -1.0e4  # additive attention bias for masked keys (finite: no NaN in ONNX Runtime)


# ----------------------------------------------------------------------------- building blocks

def timestep_embedding(t, dim, max_period=10000.0):
    """Sinusoidal embedding of integer timesteps t [B] -> [B, dim]."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.to(torch.float32)[:, None] * freqs[None, :]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


class Attention(nn.Module):
    """Multi-head attention written with plain ops (exports cleanly to ONNX opset 17)."""

    def __init__(self, dim, heads, ctx_dim=None):
        super().__init__()
        assert dim % heads == 0
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(ctx_dim or dim, dim)
        self.v = nn.Linear(ctx_dim or dim, dim)
        self.o = nn.Linear(dim, dim)

    def forward(self, x, ctx=None, bias=None):
        ctx = x if ctx is None else ctx
        B, T, C = x.shape
        S = ctx.shape[1]
        h = self.heads
        q = self.q(x).reshape(B, T, h, C // h).transpose(1, 2)
        k = self.k(ctx).reshape(B, S, h, C // h).transpose(1, 2)
        v = self.v(ctx).reshape(B, S, h, C // h).transpose(1, 2)
        w = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(C // h))
        if bias is not None:
            w = w + bias
        w = torch.softmax(w, dim=-1)
        y = torch.matmul(w, v).transpose(1, 2).reshape(B, T, C)
        return self.o(y)


class Block(nn.Module):
    """Pre-LN transformer block."""

    def __init__(self, dim, heads, mlp=4):
        super().__init__()
        self.ln1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, dim * mlp), nn.GELU(), nn.Linear(dim * mlp, dim))

    def forward(self, x, bias):
        x = x + self.attn(self.ln1(x), bias=bias)
        return x + self.mlp(self.ln2(x))


class CausalTransformer(nn.Module):
    def __init__(self, width, layers, heads, max_len):
        super().__init__()
        self.pos = nn.Parameter(torch.randn(max_len, width) * 0.01)
        self.blocks = nn.ModuleList([Block(width, heads) for _ in range(layers)])
        self.ln = nn.LayerNorm(width)
        causal = torch.full((max_len, max_len), NEG).triu(1)
        self.register_buffer("causal", causal, persistent=False)

    def forward(self, x, key_valid=None):
        """x [B, T, W]; key_valid [B, T] float (1 valid, 0 masked) or None."""
        T = x.shape[1]
        x = x + self.pos[:T]
        bias = self.causal[:T, :T][None, None]
        if key_valid is not None:
            bias = bias + ((1.0 - key_valid) * NEG)[:, None, None, :]
        for b in self.blocks:
            x = b(x, bias)
        return self.ln(x)


def _flag(v):
    """A [B] drop flag as a [B, 1] float column."""
    return v.to(torch.float32).reshape(-1, 1)


# ----------------------------------------------------------------------------- CLIP

class ClipText(nn.Module):
    """tokens int64 [B, L] -> (text_embed [B, D], text_hidden [B, L, W])."""

    def __init__(self, vocab_size, context_length, width, layers, heads, embed_dim):
        super().__init__()
        self.tok = nn.Embedding(vocab_size, width)
        self.tr = CausalTransformer(width, layers, heads, context_length)
        self.proj = nn.Linear(width, embed_dim, bias=False)
        nn.init.normal_(self.tok.weight, std=0.02)

    def forward(self, tokens):
        x = self.tok(tokens)
        # causal attention: padding after the end token never reaches earlier positions
        h = self.tr(x)
        eot = tokens.argmax(dim=-1)
        pooled = h[torch.arange(h.shape[0]), eot]
        return self.proj(pooled), h


def _gn(c):
    g = 8 if c % 8 == 0 else (4 if c % 4 == 0 else 1)
    return nn.GroupNorm(g, c)


class ClipImage(nn.Module):
    """image [B, C, S, S] in [-1, 1] -> image_embed [B, D]. A small residual conv net."""

    def __init__(self, channels, width, depth, embed_dim):
        super().__init__()
        layers = [nn.Conv2d(channels, width, 3, padding=1)]
        c = width
        for i in range(depth):
            co = width * min(2 ** (i + 1), 8)
            layers += [_gn(c), nn.SiLU(), nn.Conv2d(c, co, 3, stride=2, padding=1),
                       _gn(co), nn.SiLU(), nn.Conv2d(co, co, 3, padding=1)]
            c = co
        self.net = nn.Sequential(*layers)
        self.norm = _gn(c)
        self.proj = nn.Linear(c, embed_dim)

    def forward(self, image):
        h = F.silu(self.norm(self.net(image)))
        return self.proj(h.mean(dim=(2, 3)))


class ClipModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.text = ClipText(cfg["vocab_size"], cfg["context_length"], cfg["text_width"],
                             cfg["text_layers"], cfg["text_heads"], cfg["embed_dim"])
        self.image = ClipImage(cfg["channels"], cfg["image_width"], cfg["image_depth"], cfg["embed_dim"])
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def loss(self, images, tokens):
        zi = F.normalize(self.image(images), dim=-1)
        zt = F.normalize(self.text(tokens)[0], dim=-1)
        logits = self.logit_scale.clamp(max=math.log(100.0)).exp() * zi @ zt.t()
        labels = torch.arange(len(images), device=images.device)
        return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels))


# ----------------------------------------------------------------------------- priors

class DiffusionPrior(nn.Module):
    """(x_t, t, text_embed, text_hidden, tokens, drop_text) -> out [B, D] (predicted x0).

    x_t and out live in the normalised embedding space; text_embed is raw (normalised inside by
    its L2 norm times sqrt(D)).
    """

    def __init__(self, embed_dim, text_hidden_dim, context_length, width, layers, heads):
        super().__init__()
        D, W = embed_dim, width
        self.D = D
        self.text_in = nn.Linear(text_hidden_dim, W)
        self.zt_in = nn.Linear(D, W)
        self.time = nn.Sequential(nn.Linear(W, W), nn.SiLU(), nn.Linear(W, W))
        self.x_in = nn.Linear(D, W)
        self.query = nn.Parameter(torch.randn(W) * 0.02)
        self.null_text = nn.Parameter(torch.randn(context_length, W) * 0.02)
        self.null_zt = nn.Parameter(torch.randn(W) * 0.02)
        self.tr = CausalTransformer(W, layers, heads, context_length + 4)
        self.out = nn.Linear(W, D)
        self.width = W

    def forward(self, x_t, t, text_embed, text_hidden, tokens, drop_text):
        B = x_t.shape[0]
        d = _flag(drop_text)
        txt = self.text_in(text_hidden)
        txt = txt * (1 - d)[:, :, None] + self.null_text[None] * d[:, :, None]
        zt = F.normalize(text_embed, dim=-1) * math.sqrt(self.D)
        zt = self.zt_in(zt) * (1 - d) + self.null_zt[None] * d
        temb = self.time(timestep_embedding(t, self.width))
        q = self.query[None].expand(B, -1)
        seq = torch.cat([txt, zt[:, None], temb[:, None], self.x_in(x_t)[:, None], q[:, None]], dim=1)
        valid = torch.maximum((tokens != 0).to(torch.float32), d)
        valid = torch.cat([valid, torch.ones(B, 4, dtype=torch.float32, device=x_t.device)], dim=1)
        h = self.tr(seq, valid)
        return self.out(h[:, -1])


class ARPrior(nn.Module):
    """(tokens, text_embed, text_hidden, tokens_text, drop_text) -> logits [B, T', levels]."""

    def __init__(self, embed_dim, text_hidden_dim, context_length, kept_dims, levels, dot_levels,
                 width, layers, heads):
        super().__init__()
        W = width
        self.D = embed_dim
        self.levels = levels
        self.text_in = nn.Linear(text_hidden_dim, W)
        self.zt_in = nn.Linear(embed_dim, W)
        self.tok = nn.Embedding(levels + dot_levels, W)
        self.null_text = nn.Parameter(torch.randn(context_length, W) * 0.02)
        self.null_zt = nn.Parameter(torch.randn(W) * 0.02)
        self.tr = CausalTransformer(W, layers, heads, context_length + 2 + kept_dims)
        self.out = nn.Linear(W, levels)
        nn.init.normal_(self.tok.weight, std=0.02)

    def forward(self, tokens, text_embed, text_hidden, tokens_text, drop_text):
        B, T = tokens.shape
        L = tokens_text.shape[1]
        d = _flag(drop_text)
        txt = self.text_in(text_hidden)
        txt = txt * (1 - d)[:, :, None] + self.null_text[None] * d[:, :, None]
        zt = F.normalize(text_embed, dim=-1) * math.sqrt(self.D)
        zt = self.zt_in(zt) * (1 - d) + self.null_zt[None] * d
        seq = torch.cat([txt, zt[:, None], self.tok(tokens)], dim=1)
        valid = torch.maximum((tokens_text != 0).to(torch.float32), d)
        valid = torch.cat([valid, torch.ones_like(tokens, dtype=torch.float32)[:, :1],
                           torch.ones_like(tokens, dtype=torch.float32)], dim=1)
        h = self.tr(seq, valid)
        return self.out(h[:, L + 1:])


# ----------------------------------------------------------------------------- UNets

class ResBlock(nn.Module):
    def __init__(self, ci, co, temb):
        super().__init__()
        self.n1 = _gn(ci)
        self.c1 = nn.Conv2d(ci, co, 3, padding=1)
        self.t = nn.Linear(temb, 2 * co)
        self.n2 = _gn(co)
        self.c2 = nn.Conv2d(co, co, 3, padding=1)
        self.skip = nn.Conv2d(ci, co, 1) if ci != co else nn.Identity()
        nn.init.zeros_(self.c2.weight)
        nn.init.zeros_(self.c2.bias)

    def forward(self, x, emb):
        h = self.c1(F.silu(self.n1(x)))
        s, b = self.t(F.silu(emb))[:, :, None, None].chunk(2, dim=1)
        h = self.n2(h) * (1 + s) + b
        h = self.c2(F.silu(h))
        return self.skip(x) + h


class AttnBlock(nn.Module):
    """Self-attention over pixels with the context tokens appended to the keys (as in GLIDE)."""

    def __init__(self, c, heads, ctx_dim):
        super().__init__()
        self.norm = _gn(c)
        self.heads = heads
        self.qkv = nn.Linear(c, 3 * c)
        self.ctx_kv = nn.Linear(ctx_dim, 2 * c) if ctx_dim else None
        self.o = nn.Linear(c, c)
        nn.init.zeros_(self.o.weight)
        nn.init.zeros_(self.o.bias)

    def forward(self, x, ctx=None, ctx_valid=None):
        B, C, H, Wd = x.shape
        h = self.heads
        t = self.norm(x).reshape(B, C, H * Wd).transpose(1, 2)
        q, k, v = self.qkv(t).chunk(3, dim=-1)
        bias = None
        if ctx is not None and self.ctx_kv is not None:
            ck, cv = self.ctx_kv(ctx).chunk(2, dim=-1)
            k = torch.cat([ck, k], dim=1)
            v = torch.cat([cv, v], dim=1)
            valid = torch.cat([ctx_valid, torch.ones_like(t[:, :, 0])], dim=1)
            bias = ((1.0 - valid) * NEG)[:, None, None, :]
        N, S = q.shape[1], k.shape[1]
        q = q.reshape(B, N, h, C // h).transpose(1, 2)
        k = k.reshape(B, S, h, C // h).transpose(1, 2)
        v = v.reshape(B, S, h, C // h).transpose(1, 2)
        w = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(C // h))
        if bias is not None:
            w = w + bias
        y = torch.matmul(torch.softmax(w, dim=-1), v).transpose(1, 2).reshape(B, N, C)
        return x + self.o(y).transpose(1, 2).reshape(B, C, H, Wd)


class UNet(nn.Module):
    """A small DDPM UNet; attention at the resolutions in ``attn_res`` (with optional context)."""

    def __init__(self, in_ch, out_ch, size, base, mults, num_res, attn_res, heads, ctx_dim=None):
        super().__init__()
        temb = base * 4
        self.base = base
        self.temb = nn.Sequential(nn.Linear(base, temb), nn.SiLU(), nn.Linear(temb, temb))
        self.inp = nn.Conv2d(in_ch, base, 3, padding=1)
        self.down = nn.ModuleList()
        chans = [base]
        c, res = base, size
        for i, m in enumerate(mults):
            for _ in range(num_res):
                blk = nn.ModuleList([ResBlock(c, base * m, temb)])
                c = base * m
                if res in attn_res:
                    blk.append(AttnBlock(c, heads, ctx_dim))
                self.down.append(blk)
                chans.append(c)
            if i < len(mults) - 1:
                self.down.append(nn.ModuleList([nn.Conv2d(c, c, 3, stride=2, padding=1)]))
                chans.append(c)
                res //= 2
        self.mid = nn.ModuleList([ResBlock(c, c, temb), AttnBlock(c, heads, ctx_dim), ResBlock(c, c, temb)]) \
            if res in attn_res else nn.ModuleList([ResBlock(c, c, temb), ResBlock(c, c, temb)])
        self.up = nn.ModuleList()
        for i, m in reversed(list(enumerate(mults))):
            for _ in range(num_res + 1):
                blk = nn.ModuleList([ResBlock(c + chans.pop(), base * m, temb)])
                c = base * m
                if res in attn_res:
                    blk.append(AttnBlock(c, heads, ctx_dim))
                self.up.append(blk)
            if i > 0:
                self.up.append(nn.ModuleList([nn.Upsample(scale_factor=2, mode="nearest"),
                                              nn.Conv2d(c, c, 3, padding=1)]))
                res *= 2
        self.out = nn.Sequential(_gn(c), nn.SiLU(), nn.Conv2d(c, out_ch, 3, padding=1))
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)

    def _run_block(self, blk, h, emb, ctx, ctx_valid):
        for m in blk:
            if isinstance(m, ResBlock):
                h = m(h, emb)
            elif isinstance(m, AttnBlock):
                h = m(h, ctx, ctx_valid)
            else:
                h = m(h)
        return h

    def run(self, x, t, extra_emb=None, ctx=None, ctx_valid=None):
        emb = self.temb(timestep_embedding(t, self.base))
        if extra_emb is not None:
            emb = emb + extra_emb
        h = self.inp(x)
        hs = [h]
        for blk in self.down:
            h = self._run_block(blk, h, emb, ctx, ctx_valid)
            hs.append(h)
        h = self._run_block(self.mid, h, emb, ctx, ctx_valid)
        for blk in self.up:
            if isinstance(blk[0], ResBlock):
                h = torch.cat([h, hs.pop()], dim=1)
            h = self._run_block(blk, h, emb, ctx, ctx_valid)
        return self.out(h)


class Decoder(nn.Module):
    """(x_t, t, image_embed, text_hidden, tokens, drop_image, drop_text) -> out (eps) [B, C, S, S]."""

    def __init__(self, channels, size, embed_dim, text_hidden_dim, context_length, base, mults,
                 num_res, attn_res, heads, ctx_dim, n_img_tokens=4):
        super().__init__()
        self.D = embed_dim
        self.n_img = n_img_tokens
        self.ctx_dim = ctx_dim
        self.unet = UNet(channels, channels, size, base, mults, num_res, attn_res, heads, ctx_dim)
        temb = base * 4
        self.img_tokens = nn.Linear(embed_dim, n_img_tokens * ctx_dim)
        self.img_emb = nn.Linear(embed_dim, temb)
        self.text_in = nn.Linear(text_hidden_dim, ctx_dim)
        self.null_text = nn.Parameter(torch.randn(context_length, ctx_dim) * 0.02)
        self.ctx_norm = nn.LayerNorm(ctx_dim)

    def forward(self, x_t, t, image_embed, text_hidden, tokens, drop_image, drop_text):
        B = x_t.shape[0]
        di, dt = _flag(drop_image), _flag(drop_text)
        z = F.normalize(image_embed, dim=-1) * math.sqrt(self.D) * (1 - di)
        zt = self.img_tokens(z).reshape(B, self.n_img, self.ctx_dim)
        txt = self.text_in(text_hidden)
        txt = txt * (1 - dt)[:, :, None] + self.null_text[None] * dt[:, :, None]
        ctx = self.ctx_norm(torch.cat([zt, txt], dim=1))
        tv = torch.maximum((tokens != 0).to(torch.float32), dt)
        valid = torch.cat([torch.ones(B, self.n_img, dtype=torch.float32, device=x_t.device), tv], dim=1)
        return self.unet.run(x_t, t, self.img_emb(z), ctx, valid)


class Upsampler(nn.Module):
    """(x_t, t, low_res) -> out (eps) [B, C, out, out]; low_res is upsampled (bilinear) in the graph."""

    def __init__(self, channels, in_size, out_size, base, mults, num_res):
        super().__init__()
        self.scale = out_size // in_size
        self.unet = UNet(2 * channels, channels, out_size, base, mults, num_res, (), 1, None)

    def forward(self, x_t, t, low_res):
        up = F.interpolate(low_res, scale_factor=float(self.scale), mode="bilinear", align_corners=False)
        return self.unet.run(torch.cat([x_t, up], dim=1), t)


# ----------------------------------------------------------------------------- configs

def default_configs(kind="cpu"):
    """Model configs of the recipes: "tiny" (random test bundle), "quick" (smoke test), "cpu"
    (the CPU-trained cxr-tiny bundle) and "gpu" (the same size, laid out for many GPU steps)."""
    if kind == "tiny":
        return dict(
            clip=dict(embed_dim=8, context_length=16, text_width=16, text_layers=1, text_heads=2,
                      image_width=8, image_depth=2, channels=1, clip_size=16),
            prior=dict(width=16, layers=1, heads=2),
            ar=dict(kept_dims=4, levels=1024, dot_levels=1024, width=16, layers=1, heads=2),
            decoder=dict(size=16, base=8, mults=(1, 1), num_res=1, attn_res=(8,), heads=2, ctx_dim=16),
            upsamplers=[dict(in_size=16, out_size=32, base=4, mults=(1, 2), num_res=1),
                        dict(in_size=32, out_size=64, base=4, mults=(1, 2), num_res=1)],
        )
    if kind == "quick":
        return dict(
            clip=dict(embed_dim=16, context_length=32, text_width=32, text_layers=1, text_heads=2,
                      image_width=8, image_depth=3, channels=1, clip_size=32),
            prior=dict(width=32, layers=1, heads=2),
            ar=dict(kept_dims=8, levels=1024, dot_levels=1024, width=32, layers=1, heads=2),
            decoder=dict(size=32, base=16, mults=(1, 2), num_res=1, attn_res=(16,), heads=2, ctx_dim=32),
            upsamplers=[dict(in_size=32, out_size=64, base=8, mults=(1, 2), num_res=1)],
        )
    if kind == "gpu":
        # the same ~7 M parameters (~28 MB of ONNX) as "cpu", moved to the decoder (base 48, attention
        # at 16 and 8 px) and the upsampler (base 24); a GPU buys many more steps, not a larger model
        return dict(
            clip=dict(embed_dim=64, context_length=64, text_width=64, text_layers=2, text_heads=4,
                      image_width=16, image_depth=4, channels=1, clip_size=64),
            prior=dict(width=128, layers=4, heads=4),
            ar=dict(kept_dims=32, levels=1024, dot_levels=1024, width=96, layers=3, heads=4),
            decoder=dict(size=64, base=48, mults=(1, 2, 2, 2), num_res=1, attn_res=(16, 8), heads=4, ctx_dim=64),
            upsamplers=[dict(in_size=64, out_size=256, base=24, mults=(1, 1, 2, 2), num_res=1)],
        )
    # cpu: the default cxr-tiny bundle
    return dict(
        clip=dict(embed_dim=64, context_length=64, text_width=64, text_layers=2, text_heads=4,
                  image_width=16, image_depth=4, channels=1, clip_size=64),
        prior=dict(width=128, layers=3, heads=4),
        ar=dict(kept_dims=32, levels=1024, dot_levels=1024, width=128, layers=3, heads=4),
        decoder=dict(size=64, base=32, mults=(1, 2, 2, 4), num_res=1, attn_res=(8,), heads=4, ctx_dim=64),
        upsamplers=[dict(in_size=64, out_size=256, base=16, mults=(1, 2, 2, 4), num_res=1)],
    )


def build_models(cfg, vocab_size):
    """All modules for a config dict (see default_configs) and a tokenizer vocabulary size."""
    c = cfg["clip"]
    clip_cfg = dict(c, vocab_size=vocab_size)
    clip = ClipModel(clip_cfg)
    D, L, W = c["embed_dim"], c["context_length"], c["text_width"]
    p = cfg["prior"]
    prior = DiffusionPrior(D, W, L, p["width"], p["layers"], p["heads"])
    a = cfg["ar"]
    ar = ARPrior(D, W, L, a["kept_dims"], a["levels"], a["dot_levels"], a["width"], a["layers"], a["heads"])
    d = cfg["decoder"]
    dec = Decoder(c["channels"], d["size"], D, W, L, d["base"], tuple(d["mults"]), d["num_res"],
                  tuple(d["attn_res"]), d["heads"], d["ctx_dim"])
    ups = nn.ModuleList([Upsampler(c["channels"], u["in_size"], u["out_size"], u["base"],
                                   tuple(u["mults"]), u["num_res"]) for u in cfg["upsamplers"]])
    return dict(clip=clip, prior=prior, ar_prior=ar, decoder=dec, upsamplers=ups)


def count_params(m):
    return sum(p.numel() for p in m.parameters())
