"""ONNX export and bundle writer shared by the tiny test bundle and the trained bundles.

``export_bundle`` writes every component as an ONNX graph (opset 17, dynamic batch axis, input and
output names exactly as docs/bundle.md documents them), checks each with ``onnx.checker``, and writes
``bundle.json`` with the SHA-256 of every file it names.
"""
import datetime
import hashlib
import json
import os
import shutil

import onnx
import torch

OPSET = 17
FORMAT_VERSION = 1


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _desc(name, dtype, shape):
    return {"name": name, "dtype": dtype, "shape": list(shape)}


def diffusion_block(parameterization, sampling_steps, guidance_scale, eta=0.0, clip_x0=True,
                    schedule="cosine", timesteps=1000, clip_range=(-1.0, 1.0)):
    d = {"schedule": schedule, "timesteps": timesteps, "parameterization": parameterization,
         "sampling_steps": sampling_steps, "guidance_scale": guidance_scale, "eta": eta,
         "clip_x0": clip_x0, "clip_range": list(clip_range)}
    if schedule == "linear":
        d.update(beta_start=0.0001, beta_end=0.02)
    return d


def _export(module, args, path, input_names, output_names, dynamic_axes):
    # The modules have no dropout or batch norm, so training mode computes exactly what eval mode
    # does; exporting in training mode (without constant folding) keeps one named initialiser per
    # parameter (no merging of equal-valued ones), which lets load_torch rebuild the modules.
    was = module.training
    module.train()
    tmp = path + ".tmp"
    try:
        with torch.no_grad():
            torch.onnx.export(module, args, tmp, opset_version=OPSET, input_names=input_names,
                              output_names=output_names, dynamic_axes=dynamic_axes,
                              training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)
    finally:
        module.train(was)
    model = onnx.load(tmp)
    onnx.checker.check_model(model)
    got_in = [i.name for i in model.graph.input]
    got_out = [o.name for o in model.graph.output]
    if got_in != list(input_names) or got_out != list(output_names):
        raise RuntimeError(f"{path}: graph names {got_in} -> {got_out}, want {input_names} -> {output_names}")
    os.replace(tmp, path)


def export_bundle(out_dir, *, name, description, models, cfg, merges_path, num_merges, stats,
                  ar_tables=None, diffusion=None, model_card=None, license_text=None, extra_files=(),
                  training=None):
    """Export models (dict from models.build_models) to a bundle folder.

    stats: dict with image_embed_mean/std and text_embed_mean/std (lists of D floats).
    ar_tables: the ``ar`` block (pca_mean, pca_components, ..., dot_histogram) or None to omit ar_prior.
    diffusion: dict component -> diffusion_block(...) overrides ("prior", "decoder", "upsampler" for
    every upsampler, or "upsamplers": a list with one block per upsampler).
    model_card: path of a MODEL_CARD.md to copy in (or None).
    """
    os.makedirs(out_dir, exist_ok=True)
    c = cfg["clip"]
    D, L, W, C = c["embed_dim"], c["context_length"], c["text_width"], c["channels"]
    S = cfg["decoder"]["size"]
    cs = c["clip_size"]
    diffusion = diffusion or {}
    B = 2
    tokens = torch.zeros(B, L, dtype=torch.int64)
    tokens[:, :4] = torch.tensor([models["clip"].text.tok.num_embeddings - 2, 300, 301,
                                  models["clip"].text.tok.num_embeddings - 1])
    t = torch.tensor([10, 500], dtype=torch.int64)
    flags = torch.tensor([0.0, 1.0])
    text_embed = torch.randn(B, D)
    text_hidden = torch.randn(B, L, W)
    comps = {}
    dyn = lambda *names: {n: {0: "B"} for n in names}

    def entry(fname, ins, outs, **kw):
        e = {"file": fname, "sha256": sha256(os.path.join(out_dir, fname)), "inputs": ins, "outputs": outs}
        e.update(kw)
        return e

    # clip_text
    f = "clip_text.onnx"
    _export(models["clip"].text, (tokens,), os.path.join(out_dir, f), ["tokens"], ["text_embed", "text_hidden"],
            dyn("tokens", "text_embed", "text_hidden"))
    comps["clip_text"] = entry(f, [_desc("tokens", "int64", ["B", L])],
                               [_desc("text_embed", "float32", ["B", D]), _desc("text_hidden", "float32", ["B", L, W])])
    # clip_image
    f = "clip_image.onnx"
    _export(models["clip"].image, (torch.randn(B, C, cs, cs),), os.path.join(out_dir, f), ["image"], ["image_embed"],
            dyn("image", "image_embed"))
    comps["clip_image"] = entry(f, [_desc("image", "float32", ["B", C, cs, cs])],
                                [_desc("image_embed", "float32", ["B", D])])
    # prior
    if models.get("prior") is not None:
        f = "prior.onnx"
        names = ["x_t", "t", "text_embed", "text_hidden", "tokens", "drop_text"]
        _export(models["prior"], (torch.randn(B, D), t, text_embed, text_hidden, tokens, flags),
                os.path.join(out_dir, f), names, ["out"], dyn(*names, "out"))
        comps["prior"] = entry(f, [_desc("x_t", "float32", ["B", D]), _desc("t", "int64", ["B"]),
                                   _desc("text_embed", "float32", ["B", D]),
                                   _desc("text_hidden", "float32", ["B", L, W]),
                                   _desc("tokens", "int64", ["B", L]), _desc("drop_text", "float32", ["B"])],
                               [_desc("out", "float32", ["B", D])],
                               diffusion=diffusion.get("prior") or diffusion_block("x0", 25, 1.0, clip_x0=False),
                               candidates=2, clamp=10.0)
    # ar prior
    if models.get("ar_prior") is not None and ar_tables is not None:
        f = "ar_prior.onnx"
        K, lev = ar_tables["kept_dims"], ar_tables["levels"]
        names = ["tokens", "text_embed", "text_hidden", "tokens_text", "drop_text"]
        ar_tok = torch.randint(0, lev, (B, 1 + K))
        ar_tok[:, 0] = lev + 3
        axes = dyn(*names, "logits")
        axes["tokens"] = {0: "B", 1: "T"}
        axes["logits"] = {0: "B", 1: "T"}
        _export(models["ar_prior"], (ar_tok, text_embed, text_hidden, tokens, flags), os.path.join(out_dir, f),
                names, ["logits"], axes)
        comps["ar_prior"] = entry(f, [_desc("tokens", "int64", ["B", "T"]), _desc("text_embed", "float32", ["B", D]),
                                      _desc("text_hidden", "float32", ["B", L, W]),
                                      _desc("tokens_text", "int64", ["B", L]), _desc("drop_text", "float32", ["B"])],
                                  [_desc("logits", "float32", ["B", "T", lev])], ar=ar_tables)
    # decoder
    f = "decoder.onnx"
    names = ["x_t", "t", "image_embed", "text_hidden", "tokens", "drop_image", "drop_text"]
    _export(models["decoder"], (torch.randn(B, C, S, S), t, text_embed, text_hidden, tokens, flags, flags),
            os.path.join(out_dir, f), names, ["out"], dyn(*names, "out"))
    comps["decoder"] = entry(f, [_desc("x_t", "float32", ["B", C, S, S]), _desc("t", "int64", ["B"]),
                                 _desc("image_embed", "float32", ["B", D]),
                                 _desc("text_hidden", "float32", ["B", L, W]), _desc("tokens", "int64", ["B", L]),
                                 _desc("drop_image", "float32", ["B"]), _desc("drop_text", "float32", ["B"])],
                             [_desc("out", "float32", ["B", C, S, S])],
                             diffusion=diffusion.get("decoder") or diffusion_block("eps", 50, 3.0))
    # upsamplers
    ups = []
    up_blocks = diffusion.get("upsamplers") or []
    for k, (u, uc) in enumerate(zip(models.get("upsamplers") or [], cfg["upsamplers"])):
        i, o = uc["in_size"], uc["out_size"]
        f = f"upsampler_{o}.onnx"
        names = ["x_t", "t", "low_res"]
        _export(u, (torch.randn(B, C, o, o), t, torch.randn(B, C, i, i)), os.path.join(out_dir, f), names, ["out"],
                dyn(*names, "out"))
        ups.append(entry(f, [_desc("x_t", "float32", ["B", C, o, o]), _desc("t", "int64", ["B"]),
                             _desc("low_res", "float32", ["B", C, i, i])],
                         [_desc("out", "float32", ["B", C, o, o])],
                         diffusion=(up_blocks[k] if k < len(up_blocks) else None) or diffusion.get("upsampler")
                         or diffusion_block("eps", 10, 1.0),
                         in_size=i, out_size=o, augment={"blur_sigma": 0.6, "blur_kernel": 3}))
    if ups:
        comps["upsamplers"] = ups

    # tokenizer, model card, other files
    files = {}
    merges_name = "bpe_merges.txt.gz"
    if os.path.abspath(merges_path) != os.path.abspath(os.path.join(out_dir, merges_name)):
        shutil.copyfile(merges_path, os.path.join(out_dir, merges_name))
    files[merges_name] = sha256(os.path.join(out_dir, merges_name))
    card_name = None
    if model_card:
        card_name = "MODEL_CARD.md"
        if os.path.abspath(model_card) != os.path.abspath(os.path.join(out_dir, card_name)):
            shutil.copyfile(model_card, os.path.join(out_dir, card_name))
        files[card_name] = sha256(os.path.join(out_dir, card_name))
    for x in extra_files:
        files[os.path.basename(x)] = sha256(os.path.join(out_dir, os.path.basename(x)))

    manifest = {
        "format_version": FORMAT_VERSION,
        "name": name,
        "description": description,
        "license": license_text or "CC BY-NC-SA 4.0 (non-commercial research use)",
        "created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "clip": {"embed_dim": D, "image_embed_mean": stats["image_embed_mean"],
                 "image_embed_std": stats["image_embed_std"], "text_embed_mean": stats["text_embed_mean"],
                 "text_embed_std": stats["text_embed_std"], "text_hidden_dim": W},
        "image": {"size": S, "clip_size": cs, "channels": C, "window": "file-or-percentile",
                  "percentiles": [0.5, 99.5], "pad": "square-min", "resize": "area", "range": [-1.0, 1.0]},
        "tokenizer": {"kind": "clip-bpe", "merges": merges_name, "num_merges": num_merges,
                      "context_length": L, "lowercase": True},
        "components": comps,
        "files": files,
        # not read by the Go runtime: what rebuilds the torch modules from this bundle (load_torch)
        "training": dict(training or {}, config=cfg,
                         vocab_size=models["clip"].text.tok.num_embeddings),
    }
    if card_name:
        manifest["model_card"] = card_name
    tmp = os.path.join(out_dir, "bundle.json.tmp")
    with open(tmp, "w") as fh:
        json.dump(manifest, fh, indent=1)
        fh.write("\n")
    os.replace(tmp, os.path.join(out_dir, "bundle.json"))
    return manifest


def refresh_hashes(out_dir, add=()):
    """Recompute the SHA-256 of every file bundle.json names (after editing MODEL_CARD.md), adding
    the files in add (paths relative to out_dir) to the top-level "files" map."""
    p = os.path.join(out_dir, "bundle.json")
    with open(p) as fh:
        m = json.load(fh)
    for f in add:
        m.setdefault("files", {})[f] = ""
    for k, e in m["components"].items():
        for x in (e if isinstance(e, list) else [e]):
            x["sha256"] = sha256(os.path.join(out_dir, x["file"]))
    for f in m.get("files", {}):
        m["files"][f] = sha256(os.path.join(out_dir, f))
    with open(p + ".tmp", "w") as fh:
        json.dump(m, fh, indent=1)
        fh.write("\n")
    os.replace(p + ".tmp", p)
    return m


def make_ar_tables(image_embeds, text_embeds, kept_dims, levels=1024, dot_levels=1024):
    """The ``ar`` block: PCA of raw z_i, per-coefficient quantisation ranges and the histogram of
    the quantised cosine similarity z_i·z_t (both L2-normalised) over the training pairs."""
    zi = image_embeds.double()
    mean = zi.mean(0)
    _, s, vh = torch.linalg.svd(zi - mean, full_matrices=False)
    comps = vh[:kept_dims]
    coef = (zi - mean) @ comps.t()
    lo, hi = coef.min(0).values, coef.max(0).values
    pad = 0.05 * (hi - lo) + 1e-6
    lo, hi = lo - pad, hi + pad
    var = s ** 2
    explained = float(var[:kept_dims].sum() / var.sum())
    dot = (torch.nn.functional.normalize(zi, dim=-1) *
           torch.nn.functional.normalize(text_embeds.double(), dim=-1)).sum(-1)
    q = ((dot + 1.0) / 2.0 * dot_levels).floor().clamp(0, dot_levels - 1).long()
    hist = torch.bincount(q, minlength=dot_levels)
    return {
        "pca_mean": mean.float().tolist(),
        "pca_components": comps.float().tolist(),
        "kept_dims": kept_dims,
        "explained_variance": explained,
        "levels": levels,
        "coef_min": lo.float().tolist(),
        "coef_max": hi.float().tolist(),
        "dot_levels": dot_levels,
        "dot_min": -1.0,
        "dot_max": 1.0,
        "dot": "cosine of the L2-normalised z_i and z_t",
        "dot_histogram": hist.tolist(),
    }


def quantise(v, lo, hi, levels):
    """q(v) = clamp(floor((v - min)/(max - min)·levels), 0, levels-1), elementwise (docs/bundle.md)."""
    return ((v - lo) / (hi - lo) * levels).floor().clamp(0, levels - 1).long()


def ar_sequence(image_embeds, text_embeds, tables):
    """Training token sequences [N, 1 + K]: the dot token (levels + q(dot)) then the codes."""
    t = tables
    mean = torch.tensor(t["pca_mean"], dtype=torch.float64)
    comps = torch.tensor(t["pca_components"], dtype=torch.float64)
    coef = (image_embeds.double() - mean) @ comps.t()
    codes = quantise(coef, torch.tensor(t["coef_min"], dtype=torch.float64),
                     torch.tensor(t["coef_max"], dtype=torch.float64), t["levels"])
    dot = (torch.nn.functional.normalize(image_embeds.double(), dim=-1) *
           torch.nn.functional.normalize(text_embeds.double(), dim=-1)).sum(-1)
    dq = quantise(dot, torch.tensor(t["dot_min"]), torch.tensor(t["dot_max"]), t["dot_levels"])
    return torch.cat([(t["levels"] + dq)[:, None], codes], dim=1)


def _load_from_onnx(module, path):
    """Copy the weights of an exported graph back into module. The graphs are exported without
    constant folding, so every initialiser keeps its parameter's name."""
    from onnx import numpy_helper
    inits = {i.name: numpy_helper.to_array(i) for i in onnx.load(path).graph.initializer}
    state = module.state_dict()
    for k, v in state.items():
        if k not in inits or tuple(inits[k].shape) != tuple(v.shape):
            raise RuntimeError(f"{path}: no initialiser {k} {tuple(v.shape)}")
        state[k] = torch.from_numpy(inits[k].copy()).to(v.dtype)
    module.load_state_dict(state)


def load_torch(bundle_dir):
    """Rebuild the torch modules of a bundle written by export_bundle from its ONNX graphs.
    -> (cfg, modules) as models.build_models returns them."""
    import models as M
    with open(os.path.join(bundle_dir, "bundle.json")) as fh:
        m = json.load(fh)
    tr = m["training"]
    cfg = tr["config"]
    ms = M.build_models(cfg, tr["vocab_size"])
    c = m["components"]
    _load_from_onnx(ms["clip"].text, os.path.join(bundle_dir, c["clip_text"]["file"]))
    _load_from_onnx(ms["clip"].image, os.path.join(bundle_dir, c["clip_image"]["file"]))
    for k in ("prior", "ar_prior"):
        if k in c:
            _load_from_onnx(ms[k], os.path.join(bundle_dir, c[k]["file"]))
        else:
            ms[k] = None
    _load_from_onnx(ms["decoder"], os.path.join(bundle_dir, c["decoder"]["file"]))
    for u, e in zip(ms["upsamplers"], c.get("upsamplers", [])):
        _load_from_onnx(u, os.path.join(bundle_dir, e["file"]))
    for v in ms.values():
        if v is not None:
            v.eval()
    return cfg, ms
