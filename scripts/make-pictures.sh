#!/usr/bin/env bash
# make-pictures.sh -- the README's pictures, drawn from real runs (`make docs`):
# learning curves, a confusion matrix and where cnn-bn looks (Grad-CAM,
# integrated gradients), and where the hybrid model looks (attention).
# Fixed seeds and 2 threads, so a rerun on any machine draws the same
# pictures (results are bit-identical for a seed and thread count); each
# command is printed, and the README names it beside its picture.
set -euo pipefail
bin=${HLR_BIN:-bin}
data=${HLR_DATA_DIR:-data/mnist}
out=${HLR_PICTURES:-docs/pictures}
work=${HLR_PICTURES_WORK:-build/pictures}
mkdir -p "$out" "$work"
run() { echo "+ $*"; "$@"; }
start=$SECONDS
run "$bin/hlr-mnist" train --model cnn-bn --epochs 5 --val-split 0.1 --seed 0 --threads 2 --data "$data" \
    --plot "$out/learning-curve.svg" --save "$work/cnn-bn.hlr"
run "$bin/hlr-mnist" eval "$work/cnn-bn.hlr" --data "$data" --confusion "$out/confusion.svg"
run "$bin/hlr-predict" --explain gradcam --out "$out/gradcam.png" --index 0 "$work/cnn-bn.hlr" \
    "$data/t10k-images-idx3-ubyte.gz"
run "$bin/hlr-predict" --explain ig --out "$out/integrated-gradients.png" --index 0 "$work/cnn-bn.hlr" \
    "$data/t10k-images-idx3-ubyte.gz"
run "$bin/hlr-mnist" train --model hybrid --seed 0 --threads 2 --data "$data" --save "$work/hybrid.hlr"
run "$bin/hlr-mnist" attention "$work/hybrid.hlr" --index 0 --data "$data" --out "$out/attention.png"
echo "pictures: $out/learning-curve.svg $out/confusion.svg $out/gradcam.png $out/integrated-gradients.png" \
    "$out/attention.png ($((SECONDS - start)) s)"
