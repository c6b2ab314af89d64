"""Chest X-ray data for the training kit: DICOM pixels, captions and augmentation.

Pixels go through the preprocessing that bundle.json's ``image`` block documents (docs/bundle.md):
window (the file's first VOI window, else the 0.5/99.5 percentiles) to [0, 1], MONOCHROME1 inverted,
padded to a square with 0, area-resized (adaptive average pooling), mapped to [-1, 1]. Captions come
from labels.csv (view, sex, age band, finding) and reports.jsonl (the radiology sentences of the
clinical notes); the same texts are in each study's Basic Text SR. Preprocessed tensors are cached
under ``unclip/train/runs/`` (git-ignored); ``write_compact`` / ``read_compact`` store them in a
small file for training on a machine without pydicom (train.py ``--prepare-cache`` / ``--cache``).

Augmentation is mild on purpose: small rotations, scalings and shifts and intensity jitter, and no
horizontal flips (they would move the heart to the right).
"""
import csv
import gzip
import io
import json
import math
import os
import re

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
RUNS = os.path.join(HERE, "runs")
DEFAULT_ROOT = os.path.join(HERE, "..", "..", "..", "shared", "data", "cxr")

VIEWS = {"PA": "PA", "AP": "AP", "AP Supine": "AP supine", "L": "lateral", "LL": "lateral"}
SEXES = {"M": "male", "F": "female"}
RADIOLOGY = re.compile(
    r"radiograph|x-ray|xray|\bcxr\b|chest film|opacit|consolidat|infiltrat|ground.glass|effusion|"
    r"lung|lobe|pleura|cardiomegal|heart|mediastin|hil(um|ar)|airspace|interstitial|atelecta|"
    r"pneumothorax|nodul|reticul|bilateral|diaphragm|costophrenic|tube|catheter|shadow|haz",
    re.IGNORECASE)


def age_band(age):
    try:
        a = int(float(age))
    except (TypeError, ValueError):
        return ""
    lo = (a // 10) * 10
    return f"{lo}-{lo + 9} years"


def radiology_sentences(notes):
    if not notes:
        return ""
    sents = re.split(r"(?<=[.!?])\s+", notes.strip())
    keep = [s.strip() for s in sents if RADIOLOGY.search(s)]
    return " ".join(keep)


def caption(view, sex, age, finding, notes):
    """'PA chest radiograph, male, 70-79 years, COVID-19. <radiology sentences>'"""
    parts = [f"{VIEWS.get(view, view)} chest radiograph".strip()]
    if SEXES.get(sex):
        parts.append(SEXES[sex])
    if age_band(age):
        parts.append(age_band(age))
    if finding:
        parts.append("no finding" if finding.lower() == "no finding" else finding)
    text = ", ".join(parts) + "."
    r = radiology_sentences(notes)
    return text + (" " + r if r else "")


def window01(ds):
    """Modality values of a DICOM image to [0, 1] per the bundle's ``image`` block."""
    import pydicom  # imported here: training from a prepared cache (train.py --cache) needs no pydicom
    px = ds.pixel_array.astype(np.float64)
    if px.ndim == 3:  # colour or multi-frame: first frame / luminance
        px = px[..., 0] if px.shape[-1] in (3, 4) else px[0]
    slope = float(ds.get("RescaleSlope", 1) or 1)
    inter = float(ds.get("RescaleIntercept", 0) or 0)
    px = px * slope + inter
    wc, ww = ds.get("WindowCenter"), ds.get("WindowWidth")
    if wc is not None and ww is not None:
        wc = float(wc[0] if isinstance(wc, pydicom.multival.MultiValue) else wc)
        ww = float(ww[0] if isinstance(ww, pydicom.multival.MultiValue) else ww)
        lo, hi = wc - ww / 2.0, wc + ww / 2.0
    else:
        lo, hi = np.percentile(px, [0.5, 99.5])
    if hi <= lo:
        hi = lo + 1.0
    x = np.clip((px - lo) / (hi - lo), 0.0, 1.0)
    if str(ds.get("PhotometricInterpretation", "")).upper() == "MONOCHROME1":
        x = 1.0 - x
    return x


def pad_square(x):
    h, w = x.shape
    n = max(h, w)
    out = np.zeros((n, n), dtype=np.float64)
    t, l = (n - h) // 2, (n - w) // 2
    out[t:t + h, l:l + w] = x
    return out


def preprocess(path, sizes):
    """A DICOM file -> {size: tensor [1, size, size] in [-1, 1]} (docs/bundle.md ``image``)."""
    import pydicom
    ds = pydicom.dcmread(path)
    sq = torch.from_numpy(pad_square(window01(ds)))[None, None]
    return {s: (F.adaptive_avg_pool2d(sq, s)[0].float() * 2 - 1) for s in sizes}


def load_split(root=DEFAULT_ROOT, split="train", sizes=(64, 256), cache=True):
    """Images, captions and attributes of one split; cached in runs/cache_<split>_<sizes>.pt."""
    root = os.path.abspath(root)
    key = "_".join(str(s) for s in sorted(set(sizes)))
    cpath = os.path.join(RUNS, f"cache_{split}_{key}.pt")
    if cache and os.path.exists(cpath):
        return torch.load(cpath)
    d = os.path.join(root, split)
    with open(os.path.join(d, "labels.csv"), newline="") as fh:
        rows = list(csv.DictReader(fh))
    notes = {}
    with open(os.path.join(d, "reports.jsonl")) as fh:
        for line in fh:
            if line.strip():
                r = json.loads(line)
                notes[r["study_instance_uid"]] = r.get("clinical_notes") or ""
    imgs = {s: [] for s in sizes}
    meta = []
    for r in rows:
        path = os.path.join(d, r["file"])
        try:
            pre = preprocess(path, sizes)
        except Exception as e:  # one bad file never stops the run
            print(f"skip {path}: {e}")
            continue
        for s in sizes:
            imgs[s].append(pre[s])
        meta.append({"file": r["file"], "patient_id": r["patient_id"], "sex": r["sex"], "age": r["age"],
                     "view": r["view"], "finding": r["finding"], "license": r["license"],
                     "caption": caption(r["view"], r["sex"], r["age"], r["finding"],
                                        notes.get(r["study_instance_uid"], ""))})
    out = {"images": {s: torch.stack(v) for s, v in imgs.items()}, "meta": meta,
           "captions": [m["caption"] for m in meta]}
    if cache:
        os.makedirs(RUNS, exist_ok=True)
        torch.save(out, cpath + ".tmp")
        os.replace(cpath + ".tmp", cpath)
    return out


def augment(x, gen, rot_deg=4.0, scale=0.04, shift=0.03, contrast=0.1, bright=0.05, gamma=0.1):
    """Mild affine + intensity jitter of images in [-1, 1]; no flips. gen: torch.Generator on
    x's device (the draws and the resampling run where the images are)."""
    B = x.shape[0]
    u = lambda: torch.rand(B, generator=gen, device=x.device) * 2 - 1
    a = u() * math.radians(rot_deg)
    s = 1 + u() * scale
    tx, ty = u() * shift * 2, u() * shift * 2
    theta = torch.zeros(B, 2, 3, device=x.device)
    theta[:, 0, 0] = torch.cos(a) / s
    theta[:, 0, 1] = -torch.sin(a) / s
    theta[:, 1, 0] = torch.sin(a) / s
    theta[:, 1, 1] = torch.cos(a) / s
    theta[:, 0, 2] = tx
    theta[:, 1, 2] = ty
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    y = F.grid_sample((x + 1) / 2, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    g = (1 + u() * gamma)[:, None, None, None]
    c = (1 + u() * contrast)[:, None, None, None]
    b = (u() * bright)[:, None, None, None]
    y = (y.clamp(0, 1) ** g) * c + b
    return y.clamp(0, 1) * 2 - 1


def gaussian_blur(x, sigma=0.6, k=3):
    """The upsampler's conditioning corruption: Gaussian blur (kernel k, sigma), reflect padding."""
    r = torch.arange(k, dtype=torch.float32, device=x.device) - (k - 1) / 2
    w = torch.exp(-0.5 * (r / sigma) ** 2)
    w = w / w.sum()
    w2 = (w[:, None] * w[None, :])[None, None].repeat(x.shape[1], 1, 1, 1)
    return F.conv2d(F.pad(x, [(k - 1) // 2] * 4, mode="reflect"), w2, groups=x.shape[1])


def write_compact(split, path, exact=(64,), coded=(256,), extra=None):
    """A split from load_split as a small file: the sizes in exact as float32, those in coded as
    uint8 (round((x + 1) / 2 · 255); the source pixels are 8-bit, so this loses at most half a grey
    level), plus meta, captions and extra; gzip-compressed when path ends in .gz. Written to a temp
    name, then renamed."""
    out = {"images": {s: split["images"][s].float() for s in exact},
           "coded": {s: ((split["images"][s] + 1) / 2 * 255).round().clamp(0, 255).to(torch.uint8) for s in coded},
           "meta": split["meta"], "captions": split["captions"]}
    out.update(extra or {})
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if path.endswith(".gz"):  # the padding and the 8-bit codes compress by about a third
        buf = io.BytesIO()
        torch.save(out, buf)
        with gzip.open(path + ".tmp", "wb", compresslevel=1) as fh:
            fh.write(buf.getvalue())
    else:
        torch.save(out, path + ".tmp")
    os.replace(path + ".tmp", path)


def read_compact(path):
    """The inverse of write_compact: {"images": {size: float [-1, 1]}, "meta", "captions"}."""
    if path.endswith(".gz"):
        with gzip.open(path, "rb") as fh:
            d = torch.load(io.BytesIO(fh.read()), map_location="cpu")
    else:
        d = torch.load(path, map_location="cpu")
    imgs = dict(d["images"])
    for s, v in d.pop("coded", {}).items():
        imgs[s] = v.float() / 255 * 2 - 1
    return dict(d, images=imgs)
