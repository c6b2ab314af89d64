"""The tiny random-weight bundle for the Go runtime's unit and parity tests.

``build_tiny_models(seed)`` builds every component at a tiny size (D=8, L=16, decoder 16 px,
upsamplers 16→32 and 32→64) with deterministic random weights; ``main`` exports them with a tiny
learned BPE vocabulary and random AR tables to ``testdata/bundles/tiny/``.

    /usr/bin/python3 unclip/train/tiny.py [--out testdata/bundles/tiny]
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bpe  # noqa: E402
import export  # noqa: E402
import models  # noqa: E402

# Synthetic captions (not patient data) from which the tiny BPE vocabulary is learned.
CAPTIONS = [
    "PA chest radiograph, male, 60-69 years, COVID-19. Bilateral ground glass opacities.",
    "AP chest radiograph, female, 40-49 years, pneumonia. Consolidation in the right lower lobe.",
    "Lateral chest radiograph, male, 70-79 years, no finding. Clear lungs.",
    "AP supine chest radiograph, female, 50-59 years, COVID-19. Diffuse bilateral infiltrates.",
    "PA chest radiograph, unknown sex, SARS. Patchy airspace disease in both lungs.",
    "chest x-ray with a small left pleural effusion and cardiomegaly",
    "no acute cardiopulmonary abnormality; the lungs are clear",
]
NUM_MERGES = 120
LEVELS = 128  # tiny: fewer quantisation levels keep the AR graph small


def tiny_config():
    cfg = models.default_configs("tiny")
    cfg["ar"]["levels"] = LEVELS
    cfg["ar"]["dot_levels"] = LEVELS
    return cfg


def build_tiny_models(seed=0, vocab_size=None):
    """Deterministic random-weight tiny models (dict as models.build_models returns)."""
    cfg = tiny_config()
    if vocab_size is None:
        vocab_size = 512 + len(bpe.learn(CAPTIONS, NUM_MERGES)) + 2
    torch.manual_seed(seed)
    ms = models.build_models(cfg, vocab_size)
    # the UNets' output layers start at zero for training; give them random weights so that the
    # tiny graphs produce non-trivial outputs for parity tests
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for m in [ms["decoder"].unet, *[u.unet for u in ms["upsamplers"]]]:
            for mod in m.modules():
                if isinstance(mod, torch.nn.Conv2d) and float(mod.weight.abs().sum()) == 0.0:
                    mod.weight.copy_(torch.randn(mod.weight.shape, generator=g) * 0.05)
                    if mod.bias is not None:
                        mod.bias.copy_(torch.randn(mod.bias.shape, generator=g) * 0.01)
                if isinstance(mod, torch.nn.Linear) and float(mod.weight.abs().sum()) == 0.0:
                    mod.weight.copy_(torch.randn(mod.weight.shape, generator=g) * 0.05)
    for m in ms.values():
        m.eval()
    return cfg, ms


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "..", "testdata", "bundles", "tiny"))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    merges = bpe.learn(CAPTIONS, NUM_MERGES)
    merges_path = os.path.join(out, "bpe_merges.txt.gz")
    bpe.write_merges(merges_path, merges)
    cfg, ms = build_tiny_models(args.seed, 512 + len(merges) + 2)
    tok = bpe.Tokenizer(merges, cfg["clip"]["context_length"])
    c = cfg["clip"]
    g = torch.Generator().manual_seed(args.seed + 2)
    with torch.no_grad():
        tokens = torch.tensor([tok.tokens(t) for t in CAPTIONS * 4])
        te, _ = ms["clip"].text(tokens)
        imgs = torch.rand(len(tokens), c["channels"], c["clip_size"], c["clip_size"], generator=g) * 2 - 1
        ie = ms["clip"].image(imgs)
    stats = {"image_embed_mean": ie.mean(0).tolist(), "image_embed_std": ie.std(0).clamp_min(1e-3).tolist(),
             "text_embed_mean": te.mean(0).tolist(), "text_embed_std": te.std(0).clamp_min(1e-3).tolist()}
    a = cfg["ar"]
    tables = export.make_ar_tables(ie, te, a["kept_dims"], a["levels"], a["dot_levels"])
    # a plausible dot histogram: a bump around cosine 0.3 (random weights give arbitrary values)
    centres = (torch.arange(a["dot_levels"]) + 0.5) / a["dot_levels"] * 2 - 1
    tables["dot_histogram"] = (1000 * torch.exp(-0.5 * ((centres - 0.3) / 0.1) ** 2)).round().long().tolist()
    diff = {"prior": export.diffusion_block("x0", 4, 2.0, clip_x0=False),
            "decoder": export.diffusion_block("eps", 4, 3.0),
            # different parameterisations and schedules so that the runtime's every path is exercised
            "upsamplers": [export.diffusion_block("v", 3, 1.0, schedule="linear"),
                           export.diffusion_block("eps", 3, 1.0)]}
    card = os.path.join(out, "MODEL_CARD.md")
    with open(card, "w") as fh:
        fh.write("# tiny (random weights)\n\nA tiny unCLIP bundle with deterministic random weights, written by "
                 "`unclip/train/tiny.py` for the Go runtime's unit and parity tests. It generates noise, "
                 "not images: never use it for anything else.\n")
    export.export_bundle(out, name="tiny", description="random-weight unCLIP bundle for tests",
                         models=ms, cfg=cfg, merges_path=merges_path, num_merges=len(merges), stats=stats,
                         ar_tables=tables, diffusion=diff, model_card=card,
                         license_text="Apache-2.0 (random weights, no training data)")
    total = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
    print(f"tiny bundle at {out}: {total/1024:.0f} kB")


if __name__ == "__main__":
    main()
