#!/usr/bin/env bash
# The GPU checks and benchmarks of issue 17 in one run (at most 8 minutes), one summary at the end.
#
#     bash benchmarks/gpu.sh            # from the repository root, on a machine with a CUDA GPU
#
# 1. Installs what is missing from carried wheels (./wheels/*.whl, no network: triton and the
#    base dependencies) and asimc itself (editable, no dependencies).
# 2. CUDA tests: the Triton kernel and the torch path on the GPU, bit for bit against the
#    reference kernel on CPU, on every chip of tests/kernels/test_triton_kernel.py.
# 3. benchmarks/bench_kernels.py --device cuda --five-layers (issue 8's layers, 0.4 % + 0.4 %).
# 4. benchmarks/bench_model.py --device cuda: CIFAR ResNet-18 at batch 256 with 0.4 % + 0.4 %
#    noise (goal >= 2,000 images/s) and the ViT-B/32 shape at 224 px (goal >= 200 images/s).
# Every step has its own time limit; a step that fails or runs out is reported as such and the
# others still run. JSON results go to $OUT (default: a new temporary folder).
set -uo pipefail
export PY=${PYTHON:-python}
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
export ASIMC_CACHE_DIR=${ASIMC_CACHE_DIR:-$OUT/cache}
declare -A STATUS

step() {    # step NAME SECONDS COMMAND...: run with a time limit, log to $OUT/NAME.log
    local name=$1 limit=$2
    shift 2
    echo "== $name (at most ${limit} s)"
    if declare -F "$1" >/dev/null; then     # a function of this script: timeout needs a program
        timeout "$limit" bash -c "$(declare -f "$1"); $1" >"$OUT/$name.log" 2>&1
    else
        timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
    fi
    local rc=$?
    case $rc in
        0) STATUS[$name]=ok ;;
        124) STATUS[$name]="timed out after ${limit} s" ;;
        *) STATUS[$name]="failed (exit $rc)" ;;
    esac
    tail -n 25 "$OUT/$name.log"
}

install() {
    if [ -d wheels ]; then
        for module in triton onnx onnxruntime lark; do
            "$PY" -c "import $module" 2>/dev/null \
                || "$PY" -m pip install --quiet --no-index --find-links wheels "$module"
        done
    fi
    "$PY" -m pip install --quiet --no-deps --no-build-isolation -e . \
        && "$PY" -c "import torch, triton; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.__version__, triton.__version__, torch.cuda.get_device_name(0))"
}

cuda_tests() {
    TRITON_INTERPRET=0 "$PY" - <<'PYTHON'
"""The GPU paths against the reference kernel (CPU), bit for bit."""
import sys
from dataclasses import replace

import torch

sys.path.insert(0, ".")
from asimc.chip.conversions import ConversionPlan
from asimc.kernels import reference, torch_path, triton_kernel
from tests.kernels.test_triton_kernel import TRITON_CHIPS
from tests.kernels.test_kernels import random_problem

cuda = torch.device("cuda")
failures = 0
for name, spec in TRITON_CHIPS.items():
    plan = ConversionPlan(spec)
    problem = random_problem(spec, groups=2, weight_groups=2, rows_out=37, k=60, n=45,
                             noise=plan.has_noise, seed=3)
    want = reference.run(problem)
    noise = problem.noise
    on_gpu = replace(problem, x=problem.x.to(cuda), w=problem.w.to(cuda),
                     noise=noise and replace(noise, stream=noise.stream.to(cuda),
                                             offset=noise.offset.to(cuda)))
    for path, run in (("triton", triton_kernel.run), ("torch", lambda p: torch_path.run(p, 1 << 30))):
        got = run(on_gpu).cpu()
        same = torch.equal(got, want)
        failures += not same
        print(f"{name:34s} {path:6s} {'bit-identical' if same else f'{(got != want).sum().item()} outputs differ'}")
print(f"CUDA-TESTS {'passed' if failures == 0 else f'{failures} FAILED'}")
sys.exit(1 if failures else 0)
PYTHON
}

start=$(date +%s)
step install 60 install
step cuda_tests 90 cuda_tests
step kernels 120 "$PY" benchmarks/bench_kernels.py --device cuda --five-layers --repeats 3 \
    --json "$OUT/kernels.json"
step resnet18 80 "$PY" benchmarks/bench_model.py --device cuda --batch 256 --noise asim \
    --repeats 3 --acim-repeats 3 --json "$OUT/resnet18.json"
step vit_b32 100 "$PY" benchmarks/bench_model.py --device cuda --model vit_b32 --batch 64 \
    --noise asim --repeats 3 --acim-repeats 2 --json "$OUT/vit_b32.json"

echo
echo "== summary ($(( $(date +%s) - start )) s; logs and JSON in $OUT)"
for name in install cuda_tests kernels resnet18 vit_b32; do
    printf '%-12s %s\n' "$name" "${STATUS[$name]:-not run}"
done
"$PY" - "$OUT" <<'PYTHON'
import json, sys
from pathlib import Path

out = Path(sys.argv[1])
for name, goal in (("resnet18", 2000), ("vit_b32", 200)):
    path = out / f"{name}.json"
    if not path.exists():
        print(f"{name:12s} no result")
        continue
    r = json.loads(path.read_text())
    m = r["modes"]
    acim = m["acim"]["images_per_s"]
    print(f"{name:12s} {r['machine'].get('device_name', '?')}, batch {r['batch']}, {r['chip']}: "
          f"acim {acim:,.0f} images/s (goal >= {goal:,}: {'met' if acim >= goal else 'MISSED'}), "
          f"int {m['int']['images_per_s']:,.0f}, float {m['float']['images_per_s']:,.0f}")
path = out / "kernels.json"
if path.exists():
    for s in json.loads(path.read_text()).get("shapes", []):
        print(f"kernel {s['shape']:8s} {s.get('fast_ns_per_conversion', float('nan')):.3f} ns/conversion, "
              f"identical to the reference: {s.get('identical', 'not run')}")
PYTHON
