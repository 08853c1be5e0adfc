#!/bin/sh
# The ASiM paper's design-space study (Zhang et al., TVLSI 2025) as `asimc sweep` commands:
#   1. accuracy against ADC bits x input encoding (the CNN, no noise),
#   2. against random noise (LSB) x hybrid digital MSB levels (the MLP),
#   3. against random noise (LSB) x majority-voting levels (the MLP, 5 votes).
# Each sweep is durable: interrupt it and run this script again to resume. The figures land
# next to this script; examples/FINDINGS.md says what they show. About 3 minutes on 2 cores.
set -e
cd "$(dirname "$0")/../.."
ASIMC=${ASIMC:-.venv/bin/asimc}
OUT=examples/sweeps
LIMIT=${LIMIT:-450}

$ASIMC sweep examples/models/digits_cnn.onnx --chip chips/asim-bitserial-255.acim \
    --data digits --limit "$LIMIT" --seeds 1 --db $OUT/adc-encoding.db \
    --vary adc.bits=4:10:1 --vary "input.encoding=serial,parallel 2,parallel 4" \
    --plot $OUT/adc-encoding.png --best "accuracy >= fp32 - 1" > $OUT/adc-encoding.txt

$ASIMC sweep examples/models/digits_mlp.onnx --chip chips/asim-bitserial-255.acim \
    --data digits --limit "$LIMIT" --seeds 3 --db $OUT/noise-hybrid.db \
    --vary "noise.random=0:1:0.25 lsb" --vary hybrid.digital_levels=0:3:1 \
    --plot $OUT/noise-hybrid.png --best "accuracy >= fp32 - 1" > $OUT/noise-hybrid.txt

$ASIMC sweep examples/models/digits_mlp.onnx --chip chips/asim-voting.acim \
    --data digits --limit "$LIMIT" --seeds 3 --db $OUT/noise-voting.db \
    --vary "noise.random=0:1:0.25 lsb" --vary voting.levels=0:3:1 \
    --plot $OUT/noise-voting.png --best "accuracy >= fp32 - 1" > $OUT/noise-voting.txt
