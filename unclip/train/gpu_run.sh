#!/usr/bin/env bash
# One training run of the gpu recipe on a machine with one CUDA GPU, its own python3 with PyTorch,
# and neither pydicom nor the data: it trains from the cache that
#   /usr/bin/python3 unclip/train/train.py --gpu --prepare-cache .devdata/cxr_train.pt.gz
# wrote, with a wall-clock budget of MINUTES for all stages, and writes every stage's EMA weights,
# the run's metadata, the losses and the log into $OUT (files of at most 16 MB). Back on the
# training kit's machine the bundle is exported with Debian's PyTorch:
#   /usr/bin/python3 unclip/train/train.py --gpu --import OUTDIR --out unclip/train/runs/gpu/cxr-base
# Environment: OUT (required), PY (python3), CACHE (.devdata/cxr_train.pt.gz), MINUTES (6.3),
# LIMIT_S (hard stop in seconds, 500). Extra arguments go to train.py.
set -uo pipefail
: "${OUT:?set OUT to the folder that receives the weights}"
PY=${PY:-python3}
CACHE=${CACHE:-.devdata/cxr_train.pt.gz}
MINUTES=${MINUTES:-6.3}
LIMIT_S=${LIMIT_S:-500}
export PYTHONUNBUFFERED=1
mkdir -p "$OUT"
cd "$(dirname "$0")/../.."
{
	date -u
	nvidia-smi -L 2>&1 || echo "no nvidia-smi"
	"$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())'
} 2>&1 | tee "$OUT/run.log"
# SIGTERM first: train.py then checkpoints and mirrors the stage it is in
timeout -k 20 "$LIMIT_S" "$PY" unclip/train/train.py --gpu --name gpu --fresh --cache "$CACHE" \
	--minutes "$MINUTES" --mirror "$OUT" --no-export "$@" 2>&1 | tee -a "$OUT/run.log"
rc=${PIPESTATUS[0]}
{
	echo "train.py exit status $rc"
	date -u
	ls -l "$OUT"
} 2>&1 | tee -a "$OUT/run.log"
exit "$rc"
