#!/usr/bin/env bash
# Train the whole art family on a GPU: the clean base, then one fine-tune per noise level from
# its best checkpoint, then export all four into the package. Rerunning continues where it
# stopped (every stage resumes from its latest checkpoint). Usage, from the repository root:
#   bash configs/art/art_x2_gpu.sh [STEPS_PER_NOISE_LEVEL]
set -euo pipefail
PY=${PY:-.venv/bin/python}
NOISE_STEPS=${1:-20000}
declare -A QUALITY=([1]=80 [2]=55 [3]=35)   # held-out JPEG quality per level (as in the CPU configs)

"$PY" -m swinir.train --config configs/art/art_x2_gpu.toml --resume
for n in 1 2 3; do
  "$PY" -m swinir.train --config configs/art/art_x2_gpu.toml --resume \
    --set training.init_from=runs/art_x2_gpu/best.pt --set "data.noise_level=$n" \
    --set "validation.jpeg_quality=${QUALITY[$n]}" --set "schedule.total_steps=$NOISE_STEPS" \
    --set schedule.warmup_steps=200 --set "logging.out_dir=runs/art_x2_gpu_noise$n"
done
"$PY" -m swinir.cli export-weights runs/art_x2_gpu/best.pt src/swinir/weights/swinir_art_x2.safetensors
for n in 1 2 3; do
  "$PY" -m swinir.cli export-weights "runs/art_x2_gpu_noise$n/best.pt" "src/swinir/weights/swinir_art_x2_noise$n.safetensors"
done
