"""Unit tests of the training kit (run by `go test ./unclip/train/` through /usr/bin/python3):

    cd unclip/train && /usr/bin/python3 -m unittest test_kit -v
"""
import json
import math
import os
import tempfile
import unittest

import torch

import bpe
import data
import eval as ev
import export
import reference as R
import tiny
import train

SHARED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "data")


class TokenizerTest(unittest.TestCase):
    def test_openai_reference(self):
        d = os.path.join(SHARED, "clip-bpe")
        if not os.path.isdir(d):
            self.skipTest("../shared/data/clip-bpe is missing")
        tok = bpe.Tokenizer.from_file(os.path.join(d, "bpe_simple_vocab_16e6.txt.gz"), 77, 49152 - 256 - 2)
        n = ok = 0
        with open(os.path.join(d, "reference.jsonl")) as fh:
            for line in fh:
                r = json.loads(line)
                if not r["text"].isascii():  # Python's re has no \p{N}: ASCII text only (the captions are)
                    continue
                n += 1
                ok += tok.tokens(r["text"]) == r["context77"]
        self.assertGreater(n, 100)
        self.assertEqual(ok, n)

    def test_learn_round_trip(self):
        caps = ["PA chest radiograph, male, 60-69 years, COVID-19."] * 3 + ["AP chest radiograph, female."] * 2
        merges = bpe.learn(caps, 50)
        self.assertTrue(0 < len(merges) <= 50)
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "m.txt.gz")
            bpe.write_merges(p, merges)
            self.assertEqual(bpe.read_merges(p), merges)
            tok = bpe.Tokenizer.from_file(p, 16)
        self.assertEqual(tok.vocab_size, 512 + len(merges) + 2)
        ids = tok.tokens(caps[0])
        self.assertEqual(ids[0], 512 + len(merges))
        self.assertEqual(len(ids), 16)
        self.assertIn(512 + len(merges) + 1, ids)  # end token kept when truncated
        self.assertLess(len(tok.encode(caps[0])), len(caps[0].encode()))


class MetricsTest(unittest.TestCase):
    def test_frechet(self):
        g = torch.Generator().manual_seed(0)
        x = torch.randn(20000, 4, generator=g, dtype=torch.float64)
        y = torch.randn(20000, 4, generator=g, dtype=torch.float64) + torch.tensor([1.0, 0, 0, 0], dtype=torch.float64)
        self.assertAlmostEqual(ev.frechet(x, x), 0.0, places=6)
        self.assertAlmostEqual(ev.frechet(x, y), 1.0, delta=0.05)
        z = torch.randn(20000, 4, generator=g, dtype=torch.float64) * 2  # FD of N(0,I) and N(0,4I) = 4·(1+4-2·2)
        self.assertAlmostEqual(ev.frechet(x, z), 4.0, delta=0.15)

    def test_prdc(self):
        g = torch.Generator().manual_seed(0)
        real = torch.randn(500, 8, generator=g)
        same = ev.prdc(real, real.clone())
        for k in ("precision", "recall", "coverage"):
            self.assertEqual(same[k], 1.0, k)
        far = ev.prdc(real, real + 100)
        for k in ("precision", "recall", "density", "coverage"):
            self.assertEqual(far[k], 0.0, k)
        iid = ev.prdc(real, torch.randn(500, 8, generator=g))
        self.assertGreater(iid["precision"], 0.5)
        self.assertAlmostEqual(iid["density"], 1.0, delta=0.3)

    def test_chance(self):
        self.assertAlmostEqual(1 - ev._none_in_top(1, 10, 1), 0.1)
        self.assertAlmostEqual(1 - ev._none_in_top(1, 10, 5), 0.5)

    def test_png(self):
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "g.png")
            ev.write_png(p, ev.grid(torch.zeros(3, 1, 8, 8), 2))
            with open(p, "rb") as fh:
                b = fh.read()
        self.assertEqual(b[:8], b"\x89PNG\r\n\x1a\n")
        self.assertEqual(int.from_bytes(b[16:20], "big"), 2 * 10 + 2)  # width: 2 tiles of 8 + 3 borders


class DataTest(unittest.TestCase):
    def test_caption(self):
        c = data.caption("AP Supine", "F", "57", "COVID-19",
                         "Patient admitted with fever. Chest radiograph shows bilateral opacities. Discharged.")
        self.assertEqual(c, "AP supine chest radiograph, female, 50-59 years, COVID-19. "
                            "Chest radiograph shows bilateral opacities.")
        self.assertEqual(data.caption("L", "", "", "No Finding", ""), "lateral chest radiograph, no finding.")

    def test_augment_identity_without_jitter_and_no_flip(self):
        g = torch.Generator().manual_seed(0)
        x = torch.linspace(-1, 1, 32).repeat(2, 1, 32, 1)  # left dark, right bright
        y = data.augment(x, g, rot_deg=0, scale=0, shift=0, contrast=0, bright=0, gamma=0)
        self.assertLess(float((y - x).abs().max()), 1e-5)
        z = data.augment(x, g)
        self.assertTrue(bool((z[..., :8].mean() < z[..., -8:].mean())))  # never mirrored

    def test_blur_keeps_constant(self):
        x = torch.full((1, 1, 8, 8), 0.3)
        self.assertLess(float((data.gaussian_blur(x) - x).abs().max()), 1e-6)

    def test_pad_square(self):
        import numpy as np
        p = data.pad_square(np.ones((2, 4)))
        self.assertEqual(p.shape, (4, 4))
        self.assertEqual(p[0].sum(), 0)
        self.assertEqual(p[1].sum(), 4)


class ScheduleAndARTest(unittest.TestCase):
    def test_schedule_matches_reference(self):
        ab = train.cosine_alphas_bar().double()
        ref = R.alphas_cumprod({"schedule": "cosine", "timesteps": 1000})
        self.assertLess(float((ab - ref).abs().max()), 1e-6)

    def test_ar_tables(self):
        g = torch.Generator().manual_seed(0)
        zi = torch.randn(300, 8, generator=g) @ torch.randn(8, 8, generator=g)
        zt = zi + 0.5 * torch.randn(300, 8, generator=g)
        t = export.make_ar_tables(zi, zt, 8, 1024, 1024)
        seq = export.ar_sequence(zi, zt, t)
        self.assertEqual(tuple(seq.shape), (300, 9))
        self.assertTrue(bool((seq[:, 0] >= 1024).all() and (seq[:, 1:] < 1024).all()))
        self.assertEqual(sum(t["dot_histogram"]), 300)
        # de-quantised bin centres reconstruct z_i closely with all dims kept
        lo, hi = torch.tensor(t["coef_min"]).double(), torch.tensor(t["coef_max"]).double()
        coef = lo + (seq[:, 1:].double() + 0.5) / 1024 * (hi - lo)
        rec = torch.tensor(t["pca_mean"]).double() + coef @ torch.tensor(t["pca_components"]).double()
        self.assertLess(float((rec - zi.double()).abs().max()), 0.05 * float(zi.abs().max()))


class ExportTest(unittest.TestCase):
    def test_load_torch_round_trip(self):
        cfg, ms = tiny.build_tiny_models(0)
        with tempfile.TemporaryDirectory() as d:
            tiny.main(["--out", d])
            cfg2, ms2 = export.load_torch(d)
            with open(os.path.join(d, "bundle.json")) as fh:
                man = json.load(fh)
            for name, e in man["components"].items():
                for x in (e if isinstance(e, list) else [e]):
                    self.assertEqual(export.sha256(os.path.join(d, x["file"])), x["sha256"])
        self.assertEqual(cfg2["decoder"]["size"], 16)
        for k in ms:
            a, b = ms[k].state_dict(), ms2[k].state_dict()
            for n in a:
                self.assertTrue(torch.equal(a[n], b[n]), f"{k}.{n}")
        names = [i["name"] for i in man["components"]["decoder"]["inputs"]]
        self.assertEqual(names, ["x_t", "t", "image_embed", "text_hidden", "tokens", "drop_image", "drop_text"])


class GPUPathTest(unittest.TestCase):
    """The pieces of the GPU workflow, run on the CPU: compact cache, time budgets, mirror files."""

    def test_compact_cache_round_trip(self):
        g = torch.Generator().manual_seed(0)
        split = {"images": {8: torch.rand(3, 1, 8, 8, generator=g) * 2 - 1,
                            16: torch.rand(3, 1, 16, 16, generator=g) * 2 - 1},
                 "meta": [{"file": f"f{i}"} for i in range(3)], "captions": ["a", "b", "c"]}
        with tempfile.TemporaryDirectory() as d:
            for name in ("c.pt", "c.pt.gz"):
                p = os.path.join(d, name)
                data.write_compact(split, p, exact=(8,), coded=(16,), extra={"bpe_merges": [("a", "b")]})
                back = data.read_compact(p)
                self.assertTrue(torch.equal(back["images"][8], split["images"][8]))
                self.assertLessEqual(float((back["images"][16] - split["images"][16]).abs().max()), 1 / 255 + 1e-6)
                self.assertEqual(back["captions"], split["captions"])
                self.assertEqual(back["bpe_merges"], [("a", "b")])
                self.assertNotIn("coded", back)

    def test_time_budget_ends_stage_with_decayed_lr(self):
        with tempfile.TemporaryDirectory() as d:
            old = data.RUNS
            data.RUNS = d
            try:
                run = train.Run("budget", dict(ema=0.9, ckpt_secs=1e9), 0, torch.device("cpu"), log=lambda m: None,
                                budget={"clip": 0.5})
                m = torch.nn.Linear(4, 1)
                ck = run.train("clip", m, lambda g, B: (m(torch.randn(B, 4, generator=g)) ** 2).mean(),
                               10 ** 7, 1e-3, 8)
                run.loss_log.close()
            finally:
                data.RUNS = old
            self.assertTrue(ck["done"])
            self.assertLess(ck["step"], 10 ** 7)
            self.assertGreater(ck["step"], 0)
            self.assertGreaterEqual(ck["elapsed"], 0.5)
            # the schedule reached its floor (0.1 of the base rate) when the time was up
            self.assertAlmostEqual(ck["opt"]["param_groups"][0]["lr"], 1e-4, delta=2e-5)

    def test_mirror_parts_round_trip(self):
        cfg, ms = tiny.build_tiny_models(0)
        with tempfile.TemporaryDirectory() as d:
            mdir = os.path.join(d, "mirror")
            old = train.MIRROR_MAX
            train.MIRROR_MAX = 20_000  # force several parts per group
            try:
                mir = train.Mirror(mdir, os.path.join(d, "losses.jsonl"))
                stages = {"clip": ms["clip"], "prior": ms["prior"], "ar_prior": ms["ar_prior"],
                          "decoder": ms["decoder"], "upsampler": ms["upsamplers"][0]}
                for st, m in stages.items():
                    mir.stage(st, m.state_dict(), 7, True)
            finally:
                train.MIRROR_MAX = old
            self.assertGreater(len([f for f in os.listdir(mdir) if f.startswith("decoder.pt.part")]), 1)
            got = train.read_mirror(mdir)
            for st, m in stages.items():
                self.assertEqual(got[st]["step"], 7)
                for k, v in m.state_dict().items():
                    self.assertTrue(torch.equal(got[st]["ema"][k], v), f"{st}.{k}")


if __name__ == "__main__":
    torch.set_num_threads(1)
    unittest.main()
