"""QDQ models (onnxruntime quantize_static, per tensor and per channel) through the public
interface: asimc takes the model's integers and scales, the golden ladder holds against
onnxruntime running the QDQ model, zero points are exact, and bits the chip lacks are refused."""
import json

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

import asimc
from asimc.cli import main
from asimc.errors import ModelError
from asimc.golden import golden_ladder

from .quantised import BASE_CHIP, chip_file, onnxruntime_run

LADDER_MODELS = ["digits_mlp_per_tensor", "digits_mlp_per_channel", "digits_cnn_per_tensor",
                 "digits_cnn_per_channel", "digits_cnn_int8_activations", "signed_middle"]


def cli(capsys, *args):
    """The command through ``asimc.cli.main`` (in process: no second torch import)."""
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def model_input(name, x):
    return x.reshape(len(x), -1) if name.startswith("digits_mlp") else x


RUNGS = ["onnxruntime qdq (as written) vs float", "onnxruntime qdq (as written) vs int",
         "onnxruntime int8 kernels vs int", "int vs ideal acim", "ideal vs noisy acim"]


def check_ladder(result, example_model: bool):
    assert result["quantised_model"] is True and result["passed"]
    rungs = {r["name"]: r for r in result["rungs"]}
    assert list(rungs) == RUNGS
    for rung in RUNGS[:2]:
        assert rungs[rung]["must_hold"] and rungs[rung]["agreement"] >= 0.99, rungs[rung]
    # The reference chip's conversions are lossless: the ideal array equals int bit for bit,
    # zero-point correction included.
    assert rungs["int vs ideal acim"]["bit_identical"]
    if example_model:
        # onnxruntime's fused int8 kernels round differently (a measured rung, not a claim).
        assert rungs["onnxruntime int8 kernels vs int"]["agreement"] >= 0.97
    assert all(layer["clipped_inputs"] == 0 for layer in result["layers"])


@pytest.mark.parametrize("name", LADDER_MODELS)
def test_golden_ladder_holds_against_onnxruntime_running_the_qdq_model(name, qdq_models):
    program = asimc.compile(qdq_models[name], BASE_CHIP)
    result = golden_ladder(qdq_models[name], program, "digits", limit=120)
    assert [r.kind.value for r in result.rungs] == ["qdq float", "qdq int", "int8 kernels",
                                                    "adc", "noise"]
    check_ladder(result.as_dict(), example_model=name.startswith("digits"))


def test_golden_command_on_a_qdq_model(qdq_models, capsys):
    code, out, err = cli(capsys, "golden", qdq_models["signed_middle"], "--chip", BASE_CHIP,
                         "--data", "digits", "--limit", "60", "--json")
    assert code == 0, out + err
    check_ladder(json.loads(out), example_model=False)


@pytest.mark.parametrize("name", ["digits_mlp_per_tensor", "digits_cnn_per_channel"])
def test_the_model_integers_and_scales_are_stored(name, qdq_models):
    program = asimc.compile(qdq_models[name], BASE_CHIP)
    model = onnx.load(qdq_models[name])
    tensors = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    dequantizers = {n.output[0]: n for n in model.graph.node if n.op_type == "DequantizeLinear"}
    nodes = {n.name: n for n in model.graph.node}
    checked = 0
    for layer in program.layers.values():
        node = nodes[layer.node]
        dq = dequantizers[node.input[1]]
        q = tensors[dq.input[0]].astype(np.int64)
        scale = tensors[dq.input[1]].reshape(-1)
        stored = program.quantized_weights[layer.node]
        if layer.op_type == "Conv":
            expected = q.reshape(q.shape[0], -1).T[None]
        else:                                   # Gemm with transB=1
            expected = q.T[None]
        assert np.array_equal(stored, expected)
        assert np.allclose(layer.weight_scale, scale, rtol=0, atol=0)
        assert layer.qdq.weight_per_channel == (scale.size > 1)
        assert layer.qdq.input is not None and layer.qdq.input.dtype == "uint8"
        checked += 1
    assert checked == len(program.layers) and checked > 0


def test_asymmetric_inputs_are_exact_on_an_unsigned_chip(qdq_models, digits_test):
    """signed_middle's second conv and head see signed values (uint8 zero points near 128):
    the unsigned rows take u, the periphery subtracts z * column sums, a Conv pads with z."""
    path = qdq_models["signed_middle"]
    program = asimc.compile(path, BASE_CHIP)
    zeros = {name: layer.qdq.input.zero_point for name, layer in program.layers.items()}
    assert sum(1 for z in zeros.values() if z not in (0,)) >= 2, zeros
    x = digits_test.x[:200]
    reference = onnxruntime_run(path, x, optimize=False)
    ints = program.run(x, mode="int").output
    ideal = program.run(x, mode="acim").output
    assert np.array_equal(ints, ideal)
    # The same integers as onnxruntime's graph: equal but for float rounding of the final
    # DequantizeLinear product and rare half-step flips; measured in output steps.
    output_scale = float(numpy_helper.to_array(next(
        t for t in onnx.load(path).graph.initializer if t.name.startswith("logits")
        and t.name.endswith("_scale"))))
    steps = np.abs(ints - reference) / output_scale
    assert np.mean(steps < 0.5) >= 0.99 and steps.max() <= 3
    assert (ints.argmax(1) == reference.argmax(1)).mean() >= 0.99


def test_asimc_own_quantiser_would_clip_what_the_model_keeps(qdq_models, digits_test):
    """The contrast: the same float model on the same unsigned chip without its Q/DQ nodes
    clips the negative halves, so the exactness above is the zero-point mapping's doing."""
    path = qdq_models["signed_middle"]
    float_model = path.parent / "signed_middle_float.onnx"
    x = digits_test.x[:100]
    result = asimc.compile(float_model, BASE_CHIP).run(x, mode="int")
    assert result.warnings and "clipped" in result.warnings[0]
    qdq_result = asimc.compile(path, BASE_CHIP).run(x, mode="int")
    assert qdq_result.warnings == []


def test_uint8_inputs_on_a_signed_chip_move_by_128(qdq_models, digits_test, tmp_path):
    path = qdq_models["digits_cnn_per_tensor"]
    chip = chip_file(tmp_path, "input { bits 8 signed serial }")
    program = asimc.compile(path, chip)
    assert {l.qdq.input.shift for l in program.layers.values()} == {128}
    x = digits_test.x[:100]
    unsigned = asimc.compile(path, BASE_CHIP).run(x, mode="int").output
    assert np.array_equal(program.run(x, mode="int").output, unsigned)


def test_noisy_runs_are_reproducible_and_artifacts_keep_the_scales(qdq_models, digits_test,
                                                                   tmp_path):
    chip = chip_file(tmp_path, "noise { random 1 lsb }")
    program = asimc.compile(qdq_models["digits_cnn_per_channel"], chip)
    x = digits_test.x[:24]
    first = program.run(x, mode="acim", seed=3).output
    program.save(tmp_path / "cnn.asimc")
    loaded = asimc.load_program(tmp_path / "cnn.asimc")
    assert {k: l.qdq for k, l in loaded.layers.items()} == \
        {k: l.qdq for k, l in program.layers.items()}
    assert np.array_equal(loaded.run(x, mode="acim", seed=3).output, first)
    # Per-sample noise keys survive the Q/DQ nodes: another batch cut gives the same numbers.
    halves = np.concatenate([program.run(x[:10], mode="acim", seed=3).output,
                             program.run(x[10:], mode="acim", seed=3).output])
    assert np.array_equal(halves, first)
    assert not np.array_equal(program.run(x, mode="int").output, first)


@pytest.mark.parametrize("body, words", [
    ("input { bits 4 unsigned serial }", ["uint8", "4-bit unsigned inputs", "input { bits 8 }"]),
    ("weight { bits 4 }", ["int8", "4-bit two's complement", "weight { bits 8 }"]),
])
def test_a_chip_with_fewer_bits_than_the_model_is_refused(body, words, qdq_models, tmp_path):
    chip = chip_file(tmp_path, body)
    with pytest.raises(ModelError) as refused:
        asimc.compile(qdq_models["digits_mlp_per_tensor"], chip)
    message = str(refused.value)
    assert "node '/fc1/Gemm' (Gemm)" in message
    for word in words:
        assert word in message


def test_the_refusal_is_a_located_error_with_exit_code_2(qdq_models, tmp_path, capsys):
    chip = chip_file(tmp_path, "input { bits 4 unsigned serial }")
    code, out, err = cli(capsys, "compile", qdq_models["digits_cnn_per_tensor"], "--chip", chip,
                         "-o", tmp_path / "out.asimc")
    assert code == 2
    assert "Traceback" not in err and "internal error" not in err
    assert "node '/stem/conv/Conv' (Conv)" in err and "does not requantise" in err
    assert not (tmp_path / "out.asimc").exists()


def test_a_layer_override_with_the_model_bits_fits(qdq_models, tmp_path):
    chip = chip_file(tmp_path, 'input { bits 4 unsigned serial } '
                               'layer "Gemm" { input { bits 8 } }')
    program = asimc.compile(qdq_models["digits_mlp_per_tensor"], chip)
    assert all(l.qdq.input is not None for l in program.layers.values())


def test_a_batchnorm_folded_into_qdq_weights_falls_back_to_asimc_weights(qdq_models, tmp_path,
                                                                         digits_test):
    """A QAT-style graph where BatchNormalization follows the Conv directly (no Q/DQ between):
    the import folds it into the weights, so the model's integers no longer describe them."""
    model = onnx.load(qdq_models["digits_cnn_int8_activations"])
    nodes = list(model.graph.node)
    producer = {o: n for n in nodes for o in n.output}
    bn = next(n for n in nodes if n.op_type == "BatchNormalization")
    dq = producer[bn.input[0]]
    q = producer[dq.input[0]]
    conv = producer[q.input[0]]
    assert (dq.op_type, q.op_type, conv.op_type) == ("DequantizeLinear", "QuantizeLinear", "Conv")
    bn.input[0] = conv.output[0]
    model.graph.ClearField("node")
    model.graph.node.extend(n for n in nodes if n is not q and n is not dq)
    path = tmp_path / "conv_bn.onnx"
    onnx.save(model, path)

    program = asimc.compile(path, BASE_CHIP)
    folded = program.layers[conv.name]
    assert folded.qdq.weight_dtype is None and folded.qdq.input is not None
    note = next(l["note"] for l in program.report["layers"] if l["node"] == conv.name)
    assert "folded BatchNormalization" in note
    others = [l for name, l in program.layers.items() if name != conv.name]
    assert all(l.qdq.weight_dtype == "int8" for l in others)
    x = digits_test.x[:100]
    reference = onnxruntime_run(path, x, optimize=False)
    ints = program.run(x, mode="int").output
    assert (ints.argmax(1) == reference.argmax(1)).mean() >= 0.97


@pytest.mark.slow
def test_qdq_attention_takes_the_model_integers_and_matches_onnxruntime(tmp_path, digits_test):
    """A quantize_static ViT: both operands of attention's products come from
    DequantizeLinear (uint8, zero points near 128); the int mode takes their integers and
    scales, written into the array as two's complement weights (u - 128) with the zero points
    corrected digitally, and so computes what onnxruntime computes running the QDQ graph."""
    from .quantised import MODELS, quantise
    path = quantise(MODELS / "digits_vit.onnx", tmp_path, "digits_vit_qdq", per_channel=False,
                    flatten=False)
    program = asimc.compile(path, BASE_CHIP)
    attention = [l for l in program.layers.values() if l.kind == "dynamic"]
    assert len(attention) == 4
    for layer in attention:
        assert layer.qdq.input is not None and layer.qdq.operand is not None
        assert layer.qdq.operand.dtype == "uint8" and layer.qdq.operand.shift == 128
    x = digits_test.x[:150]
    reference = onnxruntime_run(path, x, optimize=False)
    ints = program.run(x, mode="int").output
    # float32 rounding can tip a value next to a half step across a QuantizeLinear (see
    # asimc.golden.QDQ_MIN_AGREEMENT): a few elements move by an output step, no more
    relative = np.abs(ints - reference).max() / np.abs(reference).max()
    assert relative < 0.03, relative             # asimc's own attention quantisers: 9.8 %
    assert (ints.argmax(1) == reference.argmax(1)).mean() >= 0.99
    # the reference chip is lossless: the array equals the int mode, zero points included
    assert np.array_equal(program.run(x, mode="acim").output, ints)
