#!/usr/bin/env bash
# The demo of `make demo`: scan real chest X-ray studies, generate synthetic radiographs from
# their reports and from text with the embedded bundle, vary a real image, then check that
# every synthetic image carries its watermark and its synthetic tags.
set -euo pipefail
BIN=${BIN:-bin/augment}
OUT=${OUT:-demo-out}
DATA=${DATA:-../shared/data/cxr}
mkdir -p "$OUT"
# A demo key. Real deployments keep their key secret and out of the output folder.
[ -s "$OUT/wm.key" ] || head -c 32 /dev/urandom | base64 > "$OUT/wm.key"
KEY=(--key-file "$OUT/wm.key")

step() { printf '\n== %s\n' "$*"; }

if [ -d "$DATA/train" ] && [ -d "$DATA/val" ]; then
  step "scan $DATA/train"
  "$BIN" scan "$DATA/train" --out "$OUT/inventory.parquet"

  step "generate from 8 validation reports (view, sex, age, finding, notes)"
  "$BIN" generate "${KEY[@]}" --run-id demo-reports --out "$OUT/from-reports" \
    --from-reports "$DATA/val" --limit 8 --preview "$OUT/from-reports.png"

  src=$(find "$DATA/val" -name 'CR01.dcm' | sort | head -n 1)
  step "vary a real radiograph: $src"
  "$BIN" generate "${KEY[@]}" --run-id demo-vary --out "$OUT/variations" \
    --vary "$src" --count 4 --preview "$OUT/variations.png"
else
  echo "note: $DATA not found; the demo runs on text prompts and varies one of its own outputs"
fi

step "generate from text"
"$BIN" generate "${KEY[@]}" --run-id demo-text --out "$OUT/from-text" --count 4 --sex F --age 65 \
  --prompt "PA chest radiograph, female, 60-69 years, COVID-19. Bilateral ground glass opacities." \
  --preview "$OUT/from-text.png"
"$BIN" generate "${KEY[@]}" --run-id demo-text-2 --out "$OUT/from-text-2" --count 4 --sex M --age 75 \
  --prompt "lateral chest radiograph, male, 70-79 years, no finding." \
  --preview "$OUT/from-text-2.png"

if [ ! -d "$OUT/variations" ]; then
  first=$(find "$OUT/from-text/instances" -name '*.dcm' | sort | head -n 1)
  step "vary a synthetic radiograph: $first"
  "$BIN" generate "${KEY[@]}" --run-id demo-vary --out "$OUT/variations" \
    --vary "$first" --count 4 --preview "$OUT/variations.png"
fi

step "verify the watermark of every synthetic image (exit 1 would flag a mark without synthetic tags)"
"$BIN" watermark verify "${KEY[@]}" "$OUT"/*/instances/

step "the provenance of one image"
"$BIN" inspect "$(find "$OUT/from-text/instances" -name '*.dcm' | sort | head -n 1)"

printf '\nDone. Contact sheets: %s/*.png; manifests: %s/*/manifest.parquet\n' "$OUT" "$OUT"
