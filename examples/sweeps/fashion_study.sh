#!/bin/sh
# The ASiM paper's study (Zhang et al., TVLSI 2025) on Fashion-MNIST, for the row-filling ResNet
# (models/fashion_resnet.onnx) and the ViT (models/fashion_vit.onnx), as `asimc sweep` commands:
#   1. accuracy against ADC bits (7-10) x input encoding (1, 2, 4 bits per cycle), no noise;
#   2. against random noise (0.25-1.5 LSB) x hybrid digital MSB levels (0-3);
#   3. against random noise x majority-voting levels (0-3, 5 votes);
# (the chip library ranked on this benchmark is `make demo-fashion`). Each sweep is durable:
# interrupt it and run this script again to resume where it stopped. The tables and figures land
# in examples/sweeps/fashion/; examples/FINDINGS.md says what they show and how long they took.
#
# LIMIT (default 100) test images per point and SEEDS (default 2) noise seeds per noisy point: a
# bit-level evaluation costs about 30 ms of CPU per image for either model on one core, and the
# study is 76 points x seeds per model, so all 10,000 images would take hours even on an idle
# 2-core machine; raise LIMIT on a larger one (examples/FINDINGS.md gives the measured times).
set -e
cd "$(dirname "$0")/../.."
ASIMC=${ASIMC:-.venv/bin/asimc}
OUT=examples/sweeps/fashion
LIMIT=${LIMIT:-100}
SEEDS=${SEEDS:-2}
MODELS=${MODELS:-"resnet vit"}
mkdir -p $OUT

for model in $MODELS; do
    onnx=examples/models/fashion_$model.onnx
    base=chips/asim-bitserial-255.acim
    voting=chips/asim-voting.acim
    if [ "$model" = vit ]; then
        # The ViT's LayerNorm outputs are signed: its chips take signed inputs.
        base=examples/chips/asim-signed-255.acim
        voting=examples/chips/asim-signed-voting.acim
    fi
    common="--data fashion-mnist --limit $LIMIT"

    # The noiseless reference (8-bit ADC, bit-serial) is a point of this first sweep.
    $ASIMC sweep $onnx --chip $base $common --seeds 1 --db $OUT/$model-adc-encoding.db \
        --best "accuracy >= fp32 - 1" --vary adc.bits=7:10:1 \
        --vary "input.encoding=serial,parallel 2,parallel 4" \
        --plot $OUT/$model-adc-encoding.png > $OUT/$model-adc-encoding.txt

    $ASIMC sweep $onnx --chip $base $common --seeds "$SEEDS" --db $OUT/$model-noise-hybrid.db \
        --best "accuracy >= fp32 - 1" --vary "noise.random=0.25,0.5,1,1.5 lsb" \
        --vary hybrid.digital_levels=0:3:1 \
        --plot $OUT/$model-noise-hybrid.png > $OUT/$model-noise-hybrid.txt

    $ASIMC sweep $onnx --chip $voting $common --seeds "$SEEDS" --db $OUT/$model-noise-voting.db \
        --best "accuracy >= fp32 - 1" --vary "noise.random=0.25,0.5,1,1.5 lsb" \
        --vary voting.levels=0:3:1 \
        --plot $OUT/$model-noise-voting.png > $OUT/$model-noise-voting.txt
done
