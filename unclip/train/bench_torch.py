"""Time the PyTorch (eager) reference on a bundle's weights (default: the tiny bundle), for the Go benchmarks.

Prints one JSON line: milliseconds per decoder step (one guided evaluation: a doubled batch of 2)
and per full sample (text -> prior -> decoder -> both upsamplers, one caption, the bundle's default
steps), the median of --iters runs after a warm-up. The Go benchmark BenchmarkVsTorch runs this
script in the same process tree with the same number of threads and prints the ratios.

    /usr/bin/python3 unclip/train/bench_torch.py --threads 1 --iters 20
"""
import argparse
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import torch  # noqa: E402

import export  # noqa: E402
import reference as R  # noqa: E402
import tiny  # noqa: E402


def timed(fn, iters):
    fn()  # warm-up
    out = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return statistics.median(out) * 1000


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", default=os.path.join(HERE, "..", "..", "testdata", "bundles", "tiny"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--iters", type=int, default=20)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    with open(os.path.join(args.bundle, "bundle.json")) as f:
        has_training = "training" in json.load(f)
    # the very weights of the bundle: rebuilt from its ONNX graphs, or the tiny seed-0 modules
    _, modules = export.load_torch(args.bundle) if has_training else tiny.build_tiny_models(seed=0)
    models = R.Models.from_bundle(args.bundle, modules)
    im = models.manifest["image"]
    C, S = im["channels"], im["size"]
    text = R.encode_text(models, ["pa chest radiograph, no finding"])
    dbl = {k: torch.cat([v, v], 0) for k, v in text.items()}
    x = torch.randn(2, C, S, S)
    zi = torch.randn(2, models.manifest["clip"]["embed_dim"])
    t = torch.full((2,), 500, dtype=torch.int64)
    drop = torch.tensor([1.0, 0.0])

    @torch.no_grad()
    def step():
        models.m["decoder"](x, t, zi, dbl["hidden"], dbl["tokens"], drop, torch.tensor([1.0, 0.0]))

    def sample():
        R.generate(models, ["pa chest radiograph, no finding"], R.TorchNoise(1))

    res = {"threads": args.threads, "decoder_step_ms": timed(step, args.iters * 5),
           "sample_ms": timed(sample, args.iters), "torch": torch.__version__}
    print(json.dumps(res))


if __name__ == "__main__":
    main()
