"""MODEL_CARD.md of a trained bundle, from its bundle.json and the results of eval.py."""
import json
import os


def _pct(v):
    return f"{100 * v:.1f} %"


def _f(v, d=3):
    return f"{v:.{d}f}"


def write(bdir, res):
    with open(os.path.join(bdir, "bundle.json")) as fh:
        man = json.load(fh)
    tr = man.get("training", {})
    cfg = tr.get("config", {})
    size = sum(os.path.getsize(os.path.join(bdir, f)) for f in os.listdir(bdir) if f.endswith(".onnx"))
    c, g, p, b, m = res["clip"], res["generation"], res["probes"], res["attribute_binding"], res["memorisation"]
    dtr, dva = res["data"]["train"], res["data"]["val"]
    params = tr.get("params", {})
    ups = man["components"].get("upsamplers", [])
    on_gpu = tr.get("device", "cpu").startswith("cuda")
    where = f"on one GPU ({tr.get('hardware')})" if on_gpu else "on CPU"
    L = []
    a = L.append
    a(f"# {man['name']}: unCLIP for chest radiographs\n")
    a(f"{man['description']}. A small unCLIP stack (CLIP dual encoder, diffusion prior, autoregressive prior, "
      f"{man['image']['size']}×{man['image']['size']} diffusion decoder"
      + (", " + ", ".join(f"×{u['out_size'] // u['in_size']} upsampler {u['in_size']}→{u['out_size']}" for u in ups) if ups else "")
      + f") trained from scratch {where} by the project's training kit (`unclip/train/`). It makes "
      "low-resolution synthetic chest radiographs for pipeline testing, augmentation experiments and audits of "
      "the tooling, not for diagnosis.\n")
    a("**Licence: non-commercial research use only** (CC BY-NC-SA 4.0, following the training data's metadata "
      "licence and the non-commercial/no-derivatives licences of some of its images).\n")
    a("## Data\n")
    a("Source: the public COVID-19 chest X-ray image collection (ieee8023 covid-chestxray-dataset, a fork at its "
      "state of 2020-06-27), frontal and lateral radiographs converted to DICOM (8-bit, longer side ≤ 256 px, "
      "baseline JPEG) with pseudonymous IDs, sex, age, view and the finding and clinical notes as a Basic Text SR "
      "per study. Patients never cross splits.\n")
    a("| split | images | patients | sex | views |")
    a("|---|---|---|---|---|")
    for name, d in (("train (training)", dtr), ("val (evaluation only)", dva)):
        a(f"| {name} | {d['images']} | {d['patients']} | "
          + ", ".join(f"{k} {v}" for k, v in sorted(d["sex"].items())) + " | "
          + ", ".join(f"{k} {v}" for k, v in sorted(d["view"].items())) + " |")
    a("")
    a("Findings (train): " + ", ".join(f"{k} {v}" for k, v in dtr["finding"].items()) + ". Image licences (train): "
      + ", ".join(f"{k} {v}" for k, v in dtr["license"].items()) + ". No ethnicity is recorded (the source has none).\n")
    a("Captions are built from each study: view, sex, age band, finding and the radiology sentences of the "
      "clinical notes, e.g. *\"PA chest radiograph, female, 50-59 years, COVID-19. diffuse infiltrates in the "
      "bilateral lower lungs\"*. Preprocessing is the bundle's `image` block (window to [0, 1], pad to a square, "
      "area resize, [-1, 1]). Augmentation: small rotations (±4°), scalings (±4 %), shifts (±3 %) and intensity "
      "jitter; no horizontal flips.\n")
    a("## Architecture and sizes\n")
    cl = cfg.get("clip", {})
    a("| component | what | parameters |")
    a("|---|---|---|")
    a(f"| CLIP text | causal transformer, width {cl.get('text_width')}, {cl.get('text_layers')} layers, context "
      f"{cl.get('context_length')}, BPE with {man['tokenizer']['num_merges']} merges learned from the captions | "
      f"{params.get('clip', 0) / 1e6:.2f} M (both towers) |")
    a(f"| CLIP image | residual conv net on {cl.get('clip_size')} px, embedding D = {cl.get('embed_dim')} | |")
    a(f"| diffusion prior | causal transformer over [text tokens, z_t, time, noised z_i, query], x0 prediction, "
      f"width {cfg.get('prior', {}).get('width')}, {cfg.get('prior', {}).get('layers')} layers, text dropped 10 % | "
      f"{params.get('prior', 0) / 1e6:.2f} M |")
    ar = man["components"].get("ar_prior", {}).get("ar", {})
    a(f"| AR prior | PCA of z_i to {ar.get('kept_dims')} dims ({_pct(ar.get('explained_variance', 0))} of the "
      f"variance), {ar.get('levels')} levels, dot-product token; causal transformer | {params.get('ar_prior', 0) / 1e6:.2f} M |")
    dc = cfg.get("decoder", {})
    a(f"| decoder | UNet {dc.get('size')} px, base {dc.get('base')} channels × {tuple(dc.get('mults', []))}, attention "
      f"at {tuple(dc.get('attn_res', []))} px with context = 4 z_i tokens + caption tokens, z_i added to the time "
      f"embedding; z_i dropped 10 %, caption 50 %; ε prediction | {params.get('decoder', 0) / 1e6:.2f} M |")
    for u, uc in zip(ups, cfg.get("upsamplers", [])):
        a(f"| upsampler {u['in_size']}→{u['out_size']} | UNet, base {uc['base']}, no attention, no caption; trained on "
          f"random {u['out_size'] // 4} px crops with Gaussian-blurred (k=3, σ=0.6) conditioning | "
          f"{params.get('upsamplers', 0) / 1e6:.2f} M |")
    a("")
    a(f"ONNX graphs: {size / 1e6:.1f} MB. All diffusion models use the cosine schedule with T = 1000. Sampling "
      "defaults are in bundle.json (prior: "
      f"{man['components']['prior']['diffusion']['sampling_steps']} steps, guidance "
      f"{man['components']['prior']['diffusion']['guidance_scale']}, 2 candidates reranked by z_i·z_t; decoder: "
      f"{man['components']['decoder']['diffusion']['sampling_steps']} DDIM steps with η = "
      f"{man['components']['decoder']['diffusion'].get('eta', 0.0)}, guidance "
      f"{man['components']['decoder']['diffusion']['guidance_scale']}"
      + "".join(f"; upsampler: {u['diffusion']['sampling_steps']} DDIM steps with η = {u['diffusion'].get('eta', 0.0)}"
                for u in ups) + ").\n")
    a("## Training\n")
    if tr.get("export_command"):
        a(f"Command: `{tr.get('command', 'make models')}` (recipe `{tr.get('recipe')}`, seed {tr.get('seed')}), run "
          f"by `unclip/train/gpu_run.sh` on {tr.get('hardware')} from the prepared data cache; the ONNX graphs were "
          f"exported from its EMA weights with Debian's PyTorch 1.13 by `{tr['export_command']}`. Stage time in "
          f"total: {tr.get('train_seconds', 0) / 60:.1f} min" + (" (bf16 autocast, TF32)" if on_gpu else "") + ".\n")
    else:
        a(f"Command: `{tr.get('command', 'make models')}` (recipe `{tr.get('recipe')}`, seed {tr.get('seed')}). "
          f"Hardware: {tr.get('hardware')}, {tr.get('threads')} PyTorch thread(s). Stage time in total: "
          f"{tr.get('train_seconds', 0) / 60:.0f} min.\n")
    secs, fl = tr.get("stage_seconds", {}), tr.get("final_loss", {})
    a("| stage | steps | batch | learning rate |" + (" time |" if secs else "") + (" last loss |" if fl else ""))
    a("|---|---|---|---|" + ("---|" if secs else "") + ("---|" if fl else ""))
    for st in ("clip", "prior", "ar_prior", "decoder", "upsampler"):
        if st in tr.get("steps", {}):
            a(f"| {st} | {tr.get('exported_steps', tr['steps']).get(st, tr['steps'][st])} | {tr['batch'][st]} | "
              f"{tr['lr'][st]} |" + (f" {secs.get(st, 0):.0f} s |" if secs else "")
              + (f" {fl[st]:.4f} |" if st in fl else (" |" if fl else "")))
    a("")
    if tr.get("budget_s"):
        a("Each stage had a wall-clock budget (`--minutes`, split by the recipe's shares); its learning rate followed "
          "the larger of its step and time fractions, so every stage finished its cosine decay when its time was "
          "up. Last loss: the mean over the stage's last 10 steps (not comparable between recipes with other batch "
          "sizes or models).\n")
    a("AdamW (weight decay 0.01), warm-up then cosine decay, gradient clipping 1.0, exported weights are the EMA "
      "of the training weights. Losses: `unclip/train/runs/<name>/losses.jsonl`.\n")
    a("## Evaluation\n")
    a(f"Command: `{res['command']}` on the {res['n_val']} held-out val images ({res['seconds'] / 60:.0f} min, "
      f"{res['threads']} thread(s), {'the training kit' + chr(39) + 's CPU machine' if on_gpu else 'same machine'}). Embedding-space metrics use the bundle's own CLIP image "
      "embeddings (L2-normalised); generated samples are the decoder's "
      f"{man['image']['size']} px outputs from {g['samples']} val captions (each val caption used in turn), "
      f"diffusion prior {g['prior_steps']} DDIM steps (η = {g.get('prior_eta', 0.0)}, guidance {g['prior_guidance']}), "
      f"decoder {g['decoder_steps']} DDIM steps (η = {g.get('decoder_eta', 0.0)}, guidance {g['decoder_guidance']}). All of it runs the reference samplers (`unclip/train/reference.py`), "
      "the same algorithms as the Go runtime.\n")
    a("| metric | value | reference |")
    a("|---|---|---|")
    a(f"| CLIP text→image recall@1 (val) | {_pct(c['recall@1'])} | chance {_pct(c['chance@1'])} |")
    a(f"| CLIP text→image recall@5 (val) | {_pct(c['recall@5'])} | chance {_pct(c['chance@5'])} |")
    for k in ("sex", "view"):
        a(f"| linear probe of {k} from z_i (val accuracy) | {_pct(p[k]['val_accuracy'])} | majority class "
          f"{_pct(p[k]['majority_baseline'])} (n = {p[k]['n_val']}) |")
    a(f"| Fréchet distance, generated vs val (CLIP space) | {_f(g['fd_generated_vs_val'])} | train vs val (floor) "
      f"{_f(g['fd_train_vs_val_floor'])} |")
    pr, pf = g["prdc_generated_vs_val"], g["prdc_train_vs_val"]
    for k in ("precision", "recall", "density", "coverage"):
        a(f"| {k} (k = 5), generated vs val | {_f(pr[k])} | train vs val {_f(pf[k])} |")
    a(f"| CLIP score (cosine of sample and its caption) | {_f(g['clip_score_generated'])} | real val pairs "
      f"{_f(g['clip_score_real_val_pairs'])} |")
    for k in ("sex", "view"):
        a(f"| attribute binding: requested {k} recovered by the probe | {_pct(b[k]['generated_recovered'])} "
          f"(n = {b[k]['n']}) | probe on real val {_pct(b[k]['probe_accuracy_real_val'])} |")
    for sp in ("pixels", "clip"):
        mm = m[sp]
        a(f"| memorisation ({sp}): samples closer to a training image than the 1st percentile of val-to-train "
          f"distances | {mm['generated_below_p01']} of {g['samples']} | threshold {_f(mm['val_to_train_p01'])}; "
          f"closest sample {_f(mm['generated_to_train_min'])}, median {_f(mm['generated_to_train_median'])} "
          f"(val median {_f(mm['val_to_train_median'])}) |")
    a("")
    a("Reading the numbers: with 83 val images in a 64-dimensional space the covariance estimates are "
      "rank-deficient, so the Fréchet distances are biased upwards; compare them only with the floor measured the "
      "same way. The CLIP score of samples can exceed that of real pairs because the prior is trained to produce "
      "embeddings that match their caption and its candidates are reranked by z_i·z_t; it measures agreement in "
      "this small CLIP space, not clinical correctness. Binding rates above the probes' accuracy on real images "
      "mean the samples are more prototypical than real images, not that the attributes are right more often "
      "than a probe can tell. Memorisation counts use the 1st percentile of only 83 val-to-train distances. Full "
      "results: `eval.json`.\n")
    a("## Samples\n")
    a("Generated from val captions (full cascade, left) and the real val images with the same captions (right):\n")
    a("| generated | real |")
    a("|---|---|")
    a("| ![generated](samples/generated.png) | ![real](samples/real_val.png) |")
    a("")
    a("Captions, in grid order: " + " / ".join(f"*{t}*" for t in res["grids"]["captions"]) + "\n")
    a(f"Decoder outputs ({man['image']['size']} px) beside real val images: `samples/generated_base.png`, "
      "`samples/real_val_base.png`. Variations of a real val image (first tile; DDIM inversion then η = 0.8): "
      "`samples/variations.png`.\n")
    a("## Limitations\n")
    a(f"- Resolution: the decoder works at {man['image']['size']} px"
      + (f" and the upsampler adds texture up to {ups[-1]['out_size']} px" if ups else "")
      + f"; fine findings (small nodules, lines, tubes) are not reproduced. Trained for "
      f"{tr.get('train_seconds', 0) / 60:.0f} min on {tr.get('hardware')}: images show at most the gist of a chest "
      "radiograph, not diagnostic detail.")
    a("- Attribute binding: sex, view and findings requested in the caption are only partly followed (see the "
      "binding rows above); findings in particular are not verified by any probe.")
    a("- Data biases: 418 training images, mostly COVID-19 (other pneumonias, 'No Finding' rare), mostly adults, "
      "more men than women, sex unknown for about 11 %; images were taken from publications (figures, resized, "
      "JPEG), not from scanners. No ethnicity is recorded, so no subgroup by ethnicity can be audited.")
    a("- Small model and small data: CLIP retrieval and the probes are weak; the priors learn from the embeddings of "
      "418 training images (and their augmented copies) only. Memorisation was checked only against the training "
      "images at the decoder size.")
    a("- Every synthetic image must keep the provenance watermark and DICOM marks that `augment` adds; never use "
      "the outputs as real patient data.")
    text = "\n".join(L) + "\n"
    p_ = os.path.join(bdir, "MODEL_CARD.md")
    with open(p_ + ".tmp", "w") as fh:
        fh.write(text)
    os.replace(p_ + ".tmp", p_)
