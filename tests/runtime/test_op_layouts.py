"""Every registered op declares its batch-layout rule, and a sample's noise does not depend on
its batch through the ops that used to have no rule (Shrink, Swish, RMSNormalization); where an
op really mixes the samples, the run says that per-sample reproducibility is lost and why."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import asimc
from asimc import ops
from asimc.chip.spec import ChipSpec, InputSpec, NoiseSpec, QuantSpec, Quantity
from asimc.ops import registry
from asimc.ops.layout import LayoutRule

NOISY_STATIC = replace(ChipSpec("noisy"), noise=NoiseSpec(Quantity(1, "lsb"), Quantity(0.5, "%")),
                       quant=QuantSpec(input="static"), input=InputSpec(8, signed=True))
K, N = 16, 8


def test_every_registered_op_has_a_layout_rule():
    for op_type in ops.supported_ops():
        assert isinstance(registry.layout_rule(op_type), LayoutRule), op_type


def test_an_op_cannot_be_registered_without_a_layout_rule():
    with pytest.raises(TypeError):
        registry.op("NotAnOp")(lambda node, x: x)
    with pytest.raises(TypeError):
        registry.op("NotAnOp", layout=None)(lambda node, x: x)
    assert not registry.is_supported("NotAnOp")


def _model(op_type: str, attrs: dict, opset: int, extra_inputs=()) -> bytes:
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.normal(size=(K, N)).astype(np.float32), "w")
    inits = [w] + [numpy_helper.from_array(v, name) for name, v in extra_inputs]
    nodes = [helper.make_node(op_type, ["x", *[n for n, _ in extra_inputs]], ["h"],
                              name="first", **attrs),
             helper.make_node("MatMul", ["h", "w"], ["y"], name="matmul")]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", K])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", N])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.checker.check_model(model)
    return model.SerializeToString()


CASES = {
    "Shrink": ("Shrink", {"bias": 0.1, "lambd": 0.2}, 13, ()),
    "Swish": ("Swish", {}, 24, ()),
    "RMSNormalization": ("RMSNormalization", {"axis": -1}, 23,
                         (("scale", np.linspace(0.5, 1.5, K).astype(np.float32)),)),
    "Relu": ("Relu", {}, 13, ()),
}


@pytest.mark.parametrize("case", list(CASES))
def test_static_scales_give_a_sample_the_same_noise_alone_and_in_a_batch(case):
    op_type, attrs, opset, extra = CASES[case]
    rng = np.random.default_rng(1)
    program = asimc.compile(_model(op_type, attrs, opset, extra), NOISY_STATIC,
                            input_scales=rng.normal(size=(32, K)).astype(np.float32))
    assert program.layers["matmul"].on_chip and program.layers["matmul"].input_scale is not None
    x = rng.normal(size=(6, K)).astype(np.float32)
    batch = program.run(x, seed=3)
    assert not [w for w in batch.warnings if "reproducibility" in w]
    alone = program.run(x[4:5], seed=3).output
    assert np.array_equal(alone[0], batch.output[4])
    assert not np.array_equal(batch.output, program.run(x, mode="int").output)   # noisy


def test_an_op_that_mixes_the_samples_warns_that_reproducibility_is_lost():
    axes = numpy_helper.from_array(np.array([0], np.int64), "axes")
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.normal(size=(K, N)).astype(np.float32), "w")
    nodes = [helper.make_node("ReduceMean", ["x", "axes"], ["m"], name="batch_mean"),
             helper.make_node("Sub", ["x", "m"], ["h"], name="centre"),
             helper.make_node("MatMul", ["h", "w"], ["y"], name="matmul")]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", K])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", N])], [w, axes])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    program = asimc.compile(model.SerializeToString(), NOISY_STATIC,
                            input_scales=rng.normal(size=(32, K)).astype(np.float32))
    result = program.run(rng.normal(size=(4, K)).astype(np.float32), seed=0)
    lost = [w for w in result.warnings if "per-sample reproducibility is lost" in w]
    assert len(lost) == 1
    assert lost[0].startswith("matmul:")
    assert "batch_mean" in lost[0] and "reduces over the batch axis" in lost[0]
