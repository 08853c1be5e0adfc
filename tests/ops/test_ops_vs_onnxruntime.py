"""Every supported op and its attribute variants, as one-node models, run by asimc (import +
float interpreter) and by onnxruntime; the outputs must agree."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

from asimc.frontend import import_model
from asimc.runtime.interpreter import run_graph

from .onnx_builders import one_node_model

rng = np.random.default_rng(0)


def f32(*shape, low=-2.0, high=2.0):
    return rng.uniform(low, high, shape).astype(np.float32)


def i64(*shape, low=-5, high=5):
    return rng.integers(low, high, shape).astype(np.int64)


def i32(*shape, low=-5, high=5):
    return rng.integers(low, high, shape).astype(np.int32)


def boolean(*shape):
    return rng.random(shape) > 0.5


X4 = f32(2, 3, 7, 6)
ints = lambda *v: np.array(v, dtype=np.int64)  # noqa: E731

# (id, op, inputs, consts, attrs, outputs, opset)
CASES = []


def case(id_, op, inputs, consts=None, outputs=1, opset=21, **attrs):
    CASES.append(pytest.param(op, inputs, consts or {}, attrs, outputs, opset, id=id_))


# --- convolution -----------------------------------------------------------------------------
W = f32(4, 3, 3, 3)
case("conv_pad1", "Conv", [X4, W, f32(4)], pads=[1, 1, 1, 1])
case("conv_stride2_nobias", "Conv", [X4, W], strides=[2, 2])
case("conv_dilated", "Conv", [X4, W], dilations=[2, 2], pads=[2, 1, 2, 1])
case("conv_grouped", "Conv", [f32(2, 4, 6, 6), f32(6, 2, 3, 3), f32(6)], group=2)
case("conv_depthwise", "Conv", [f32(1, 4, 6, 6), f32(4, 1, 3, 3)], group=4, pads=[1, 1, 1, 1])
case("conv_asym_pads", "Conv", [X4, W], pads=[0, 1, 2, 0])
case("conv_same_upper", "Conv", [X4, W], auto_pad="SAME_UPPER", strides=[2, 2])
case("conv_same_lower", "Conv", [X4, f32(4, 3, 2, 2)], auto_pad="SAME_LOWER")
case("conv_valid", "Conv", [X4, W], auto_pad="VALID")
case("conv_1d", "Conv", [f32(2, 3, 9), f32(5, 3, 3), f32(5)], pads=[1, 1], strides=[2])
case("conv_3d", "Conv", [f32(1, 2, 4, 5, 5), f32(3, 2, 2, 3, 3)], pads=[0, 1, 1, 1, 0, 1])
case("convT_stride2", "ConvTranspose", [f32(1, 3, 4, 4), f32(3, 2, 3, 3), f32(2)],
     strides=[2, 2], output_padding=[1, 1], pads=[1, 1, 1, 1])
case("convT_group", "ConvTranspose", [f32(1, 4, 3, 3), f32(4, 1, 2, 2)], group=2,
     strides=[2, 2])
case("convT_output_shape", "ConvTranspose", [f32(1, 2, 3, 3), f32(2, 2, 3, 3)],
     strides=[2, 2], output_shape=[6, 6])
case("convT_dilated_1d", "ConvTranspose", [f32(1, 2, 5), f32(2, 3, 3)], dilations=[2])

# --- matrix products -------------------------------------------------------------------------
case("gemm", "Gemm", [f32(3, 4), f32(4, 5), f32(5)])
case("gemm_transA_transB", "Gemm", [f32(4, 3), f32(5, 4), f32(1, 5)], transA=1, transB=1)
case("gemm_alpha_beta", "Gemm", [f32(3, 4), f32(4, 5), f32(3, 5)], alpha=0.5, beta=2.0)
case("gemm_scalar_c", "Gemm", [f32(3, 4), f32(4, 5), f32(1)], beta=-1.0)
case("gemm_no_c", "Gemm", [f32(3, 4), f32(5, 4)], transB=1)
case("matmul_2d", "MatMul", [f32(3, 4), f32(4, 5)])
case("matmul_batched", "MatMul", [f32(2, 3, 4), f32(4, 5)])
case("matmul_broadcast", "MatMul", [f32(2, 1, 3, 4), f32(3, 4, 2)])
case("matmul_1d_left", "MatMul", [f32(4), f32(2, 4, 3)])
case("matmul_1d_right", "MatMul", [f32(2, 3, 4), f32(4)])
case("matmul_1d_both", "MatMul", [f32(4), f32(4)])
case("matmul_int64", "MatMul", [i64(3, 4), i64(4, 2)])
case("einsum_batched", "Einsum", [f32(2, 3, 4), f32(2, 4, 5)], equation="bij,bjk->bik")
case("einsum_transpose_sum", "Einsum", [f32(3, 4)], equation="ij->j")

# --- activations and unary math ----------------------------------------------------------------
for op_, x, kw in [
    ("Relu", f32(3, 4), {}), ("Relu", i32(5), {}), ("Sigmoid", f32(3, 4), {}),
    ("Tanh", f32(3, 4), {}), ("LeakyRelu", f32(3, 4), {"alpha": 0.2}),
    ("HardSigmoid", f32(3, 4, low=-4, high=4), {"alpha": 0.3, "beta": 0.4}),
    ("HardSwish", f32(3, 4, low=-4, high=4), {}), ("Gelu", f32(3, 4), {}),
    ("Gelu", f32(3, 4), {"approximate": "tanh"}), ("Softplus", f32(3, 4, low=-30, high=30), {}),
    ("Elu", f32(3, 4), {"alpha": 0.7}), ("Selu", f32(3, 4), {}), ("Celu", f32(3, 4), {}),
    ("Softsign", f32(6), {}), ("ThresholdedRelu", f32(6), {"alpha": 0.5}),
    ("Exp", f32(3, 4), {}), ("Log", f32(3, 4, low=0.1, high=4), {}), ("Abs", f32(5), {}),
    ("Abs", i64(5), {}), ("Neg", i32(5), {}), ("Reciprocal", f32(4, low=0.5, high=2), {}),
    ("Floor", f32(6), {}), ("Ceil", f32(6), {}),
    ("Round", np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 1.4], np.float32), {}),
    ("Sqrt", f32(5, low=0, high=9), {}), ("Erf", f32(5), {}), ("Sign", f32(5), {}),
    ("Sin", f32(5), {}), ("Cos", f32(5), {}), ("Softmax", f32(2, 3, 4), {"axis": 1}),
    ("Softmax", f32(2, 3, 4), {}), ("LogSoftmax", f32(2, 3, 4), {"axis": 0}),
    ("Hardmax", f32(3, 4), {}),
]:
    case(f"{op_.lower()}_{x.dtype}_{'_'.join(map(str, kw.values())) or 'default'}", op_, [x],
         **kw)
case("prelu_per_channel", "PRelu", [f32(2, 3, 4, 4), f32(3, 1, 1)])
case("clip_min_max", "Clip", [f32(3, 4)], consts={1: np.float32(-0.5), 2: np.float32(0.7)})
case("clip_max_only", "Clip", [f32(3, 4), None], consts={2: np.float32(0.1)})
case("clip_int", "Clip", [i32(8)], consts={1: np.int32(-2), 2: np.int32(3)})
case("clip_none", "Clip", [f32(3)])

# --- binary and variadic arithmetic --------------------------------------------------------------
for op_ in ("Add", "Sub", "Mul", "Div"):
    case(f"{op_.lower()}_broadcast", op_, [f32(2, 3, 4), f32(4, low=0.5, high=2)])
    case(f"{op_.lower()}_int64", op_, [i64(2, 3), np.array([3, -2, 4], np.int64)])
case("div_int32_trunc", "Div", [np.array([7, -7, 7, -7], np.int32),
                                np.array([2, 2, -2, -2], np.int32)])
case("pow_float", "Pow", [f32(3, 4, low=0.1, high=3), f32(3, 4)])
case("pow_int_exponent", "Pow", [f32(5), np.array([2, 3, 0, 1, 2], np.int64)])
case("pow_int_base", "Pow", [i64(5, low=1, high=5), np.array([2, 3, 0, 1, 2], np.int64)])
case("mod_int", "Mod", [np.array([5, -5, 7, -7], np.int64), np.array([3, 3, -4, -4], np.int64)])
case("mod_fmod_float", "Mod", [f32(6), f32(6, low=0.5, high=2)], fmod=1)
case("mod_fmod_int", "Mod", [np.array([5, -5, 7, -7], np.int32),
                             np.array([3, 3, -4, -4], np.int32)], fmod=1)
case("max_variadic", "Max", [f32(2, 3), f32(3), f32(1, 3)])
case("min_variadic", "Min", [f32(2, 3), f32(3), f32(2, 1)])
case("min_int", "Min", [i32(4), i32(4)])
case("sum_variadic", "Sum", [f32(2, 3), f32(3), f32(2, 1)])
case("mean_variadic", "Mean", [f32(2, 3), f32(3)])

# --- comparisons and logic --------------------------------------------------------------------
for op_ in ("Equal", "Greater", "GreaterOrEqual", "Less", "LessOrEqual"):
    case(f"{op_.lower()}_int", op_, [i64(3, 4, low=0, high=3), i64(4, low=0, high=3)])
    case(f"{op_.lower()}_float", op_, [f32(3, 4), f32(3, 1)])
for op_ in ("And", "Or", "Xor"):
    case(op_.lower(), op_, [boolean(3, 4), boolean(4)])
case("not", "Not", [boolean(3, 4)])
case("where_broadcast", "Where", [boolean(3, 1), f32(3, 4), f32(4)])
case("where_int", "Where", [boolean(5), i64(5), i64(1)])

# --- pooling ----------------------------------------------------------------------------------
case("maxpool_2x2", "MaxPool", [X4], kernel_shape=[2, 2], strides=[2, 2])
case("maxpool_pad", "MaxPool", [X4], kernel_shape=[3, 3], pads=[1, 1, 1, 1])
case("maxpool_ceil", "MaxPool", [X4], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)
case("maxpool_dilated", "MaxPool", [X4], kernel_shape=[2, 2], dilations=[2, 2])
case("maxpool_same_upper", "MaxPool", [X4], kernel_shape=[3, 3], strides=[2, 2],
     auto_pad="SAME_UPPER")
case("maxpool_indices", "MaxPool", [X4], outputs=2, kernel_shape=[2, 2], strides=[2, 2],
     pads=[1, 0, 0, 1])
case("maxpool_1d", "MaxPool", [f32(2, 3, 9)], kernel_shape=[3], strides=[2])
case("maxpool_int8", "MaxPool", [rng.integers(-100, 100, (1, 2, 4, 4)).astype(np.int8)],
     kernel_shape=[2, 2])
case("avgpool_exclude_pad", "AveragePool", [X4], kernel_shape=[3, 3], pads=[1, 1, 1, 1])
case("avgpool_include_pad", "AveragePool", [X4], kernel_shape=[3, 3], pads=[1, 1, 1, 1],
     count_include_pad=1)
case("avgpool_ceil", "AveragePool", [X4], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1)
case("avgpool_ceil_include_pad", "AveragePool", [f32(1, 2, 5, 5)], kernel_shape=[3, 3],
     strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1, count_include_pad=1)
case("avgpool_same_lower", "AveragePool", [X4], kernel_shape=[2, 2], auto_pad="SAME_LOWER")
case("global_avgpool", "GlobalAveragePool", [X4])
case("global_maxpool", "GlobalMaxPool", [X4])

# --- shapes -----------------------------------------------------------------------------------
case("flatten_axis0", "Flatten", [X4], axis=0)
case("flatten_axis2", "Flatten", [X4], axis=2)
case("flatten_negative", "Flatten", [X4], axis=-1)
case("reshape_zero_minus1", "Reshape", [X4], consts={1: ints(0, -1, 6)})
case("reshape_allowzero", "Reshape", [np.zeros((0, 3), np.float32)], consts={1: ints(3, 0)},
     allowzero=1)
case("transpose_default", "Transpose", [X4])
case("transpose_perm", "Transpose", [X4], perm=[0, 2, 3, 1])
case("concat_negative_axis", "Concat", [f32(2, 3), f32(2, 1), f32(2, 2)], axis=-1)
case("concat_int", "Concat", [i64(2), i64(3)], axis=0)
case("split_sizes", "Split", [f32(2, 7)], consts={1: ints(3, 4)}, outputs=2, axis=1)
case("split_num_outputs_uneven", "Split", [f32(7, 2)], outputs=3, num_outputs=3)
case("split_equal", "Split", [f32(6, 2)], outputs=2, opset=13)
case("slice_basic", "Slice", [X4], consts={1: ints(0, 1), 2: ints(2, 5), 3: ints(1, 3)})
case("slice_negative_steps", "Slice", [X4],
     consts={1: ints(-1, 5), 2: ints(-100, 0), 3: ints(2, -1), 4: ints(-2, -1)})
case("slice_clamped_ends", "Slice", [f32(5, 5)], consts={1: ints(2), 2: ints(1000)})
case("squeeze_axes", "Squeeze", [f32(1, 3, 1, 2)], consts={1: ints(-2)})
case("squeeze_all", "Squeeze", [f32(1, 3, 1, 2)])
case("unsqueeze", "Unsqueeze", [f32(3, 2)], consts={1: ints(0, -1)})
case("unsqueeze_scalar", "Unsqueeze", [np.array(3.0, np.float32)], consts={1: ints(0)})
case("pad_constant", "Pad", [f32(2, 3)], consts={1: ints(1, 0, 2, 1), 2: np.float32(1.5)})
case("pad_reflect", "Pad", [f32(1, 2, 4, 4)], consts={1: ints(0, 0, 2, 1, 0, 0, 1, 3)},
     mode="reflect")
case("pad_edge", "Pad", [f32(2, 3)], consts={1: ints(2, 2, 1, 3)}, mode="edge")
case("pad_wrap", "Pad", [f32(3, 4)], consts={1: ints(1, 2, 2, 1)}, mode="wrap")
case("pad_negative", "Pad", [f32(4, 5)], consts={1: ints(-1, 2, 0, -2)})
case("pad_axes", "Pad", [f32(2, 3, 4)], consts={1: ints(1, 2), 3: ints(-1)})
case("pad_int", "Pad", [i64(2, 2)], consts={1: ints(1, 1, 1, 1), 2: np.int64(7)})
case("expand", "Expand", [f32(3, 1)], consts={1: ints(2, 1, 4)})
case("tile", "Tile", [f32(2, 3)], consts={1: ints(2, 3)})
case("shape_start_end", "Shape", [X4], start=1, end=-1)
case("size", "Size", [X4])
case("constant_of_shape", "ConstantOfShape", [], consts={0: ints(2, 3)},
     value=np.array([7], dtype=np.int64))
case("range_float", "Range", [], consts={0: np.float32(1), 1: np.float32(5), 2: np.float32(.5)})
case("range_int_negative", "Range", [], consts={0: np.int64(10), 1: np.int64(1),
                                                2: np.int64(-3)})
case("cumsum", "CumSum", [f32(3, 4)], consts={1: np.int64(1)})
case("cumsum_exclusive_reverse", "CumSum", [i64(5)], consts={1: np.int32(0)}, exclusive=1,
     reverse=1)
case("trilu_upper_k", "Trilu", [f32(2, 4, 5)], consts={1: np.int64(1)})
case("trilu_lower", "Trilu", [f32(4, 4)], upper=0)
case("identity", "Identity", [f32(3)])
case("dropout_inference", "Dropout", [f32(3, 4)], consts={1: np.float32(0.3)})
case("depth_to_space", "DepthToSpace", [f32(1, 8, 2, 3)], blocksize=2)
case("space_to_depth", "SpaceToDepth", [f32(1, 2, 4, 6)], blocksize=2)

# --- resize -----------------------------------------------------------------------------------
IMG = f32(1, 2, 4, 5)
NO_ROI = np.zeros(0, np.float32)
case("resize_nearest_scales", "Resize", [IMG], consts={1: NO_ROI,
     2: np.array([1, 1, 2, 1.5], np.float32)}, mode="nearest")
case("resize_nearest_asym_floor", "Resize", [IMG], consts={1: NO_ROI,
     2: np.array([1, 1, 2, 2], np.float32)}, mode="nearest",
     coordinate_transformation_mode="asymmetric", nearest_mode="floor")
case("resize_nearest_sizes_ceil", "Resize", [IMG, None, None],
     consts={3: ints(1, 2, 7, 3)}, mode="nearest", nearest_mode="ceil")
case("resize_linear_half_pixel", "Resize", [IMG], consts={1: NO_ROI,
     2: np.array([1, 1, 2, 2], np.float32)}, mode="linear")
case("resize_linear_align_corners", "Resize", [IMG, None, None], consts={3: ints(1, 2, 7, 9)},
     mode="linear", coordinate_transformation_mode="align_corners")
case("resize_linear_pytorch_down", "Resize", [IMG], consts={1: NO_ROI,
     2: np.array([1, 1, 0.5, 0.6], np.float32)}, mode="linear",
     coordinate_transformation_mode="pytorch_half_pixel")
case("resize_cubic", "Resize", [IMG], consts={1: NO_ROI,
     2: np.array([1, 1, 1.5, 2], np.float32)}, mode="cubic")
case("resize_cubic_exclude", "Resize", [IMG], consts={1: NO_ROI,
     2: np.array([1, 1, 2, 2], np.float32)}, mode="cubic", exclude_outside=1,
     cubic_coeff_a=-0.5)
case("resize_axes", "Resize", [IMG], consts={1: NO_ROI, 2: np.array([3, 2], np.float32)},
     mode="nearest", axes=[2, 3])
# onnxruntime 1.32 maps tf_crop_and_resize coordinates differently from the ONNX spec; this one
# is checked against onnx's reference evaluator (which follows the spec formula)
case("resize_tf_crop[reference]", "Resize", [IMG], consts={1: np.array([0, 0, 0.2, 0.1, 1, 1, 0.9, 1.2],
     np.float32), 2: np.array([1, 1, 1.5, 1.5], np.float32)}, mode="linear",
     coordinate_transformation_mode="tf_crop_and_resize", extrapolation_value=3.0)
case("upsample_nearest_opset9", "Upsample", [IMG], consts={1: np.array([1, 1, 2, 3],
     np.float32)}, opset=9, mode="nearest")
case("resize_opset10_nearest", "Resize", [IMG], consts={1: np.array([1, 1, 2, 2], np.float32)},
     opset=10, mode="nearest")
case("resize_opset11_linear", "Resize", [IMG], consts={1: NO_ROI,
     2: np.array([1, 1, 2, 2], np.float32)}, opset=11, mode="linear")

# --- normalisation ----------------------------------------------------------------------------
case("layernorm_last", "LayerNormalization", [f32(2, 3, 8), f32(8), f32(8)])
case("layernorm_axis1_nobias", "LayerNormalization", [f32(2, 3, 4), f32(3, 4)], axis=1,
     epsilon=1e-3)
case("layernorm_stats", "LayerNormalization", [f32(2, 5), f32(5), f32(5)], outputs=3)
case("batchnorm", "BatchNormalization", [X4, f32(3), f32(3), f32(3), f32(3, low=0.5, high=2)])
case("batchnorm_2d", "BatchNormalization", [f32(4, 3), f32(3), f32(3), f32(3),
                                            f32(3, low=0.5, high=2)], epsilon=1e-3)
case("instancenorm", "InstanceNormalization", [X4, f32(3), f32(3)])
case("lpnorm", "LpNormalization", [f32(3, 4)], axis=0)

# --- reductions -------------------------------------------------------------------------------
case("reducemean_keepdims0", "ReduceMean", [X4], consts={1: ints(1, -1)}, keepdims=0)
case("reducesum_axes", "ReduceSum", [X4], consts={1: ints(0, 2)})
case("reducesum_noop", "ReduceSum", [X4], noop_with_empty_axes=1)
case("reducesum_all", "ReduceSum", [X4], keepdims=0)
case("reducesum_int", "ReduceSum", [i64(3, 4)], consts={1: ints(1)})
case("reducemax", "ReduceMax", [X4], consts={1: ints(3)})
case("reducemin", "ReduceMin", [X4], consts={1: ints(1)}, keepdims=0)
case("reducel2", "ReduceL2", [X4], consts={1: ints(2, 3)})
case("reduceprod", "ReduceProd", [f32(3, 4, low=0.5, high=1.5)], consts={1: ints(1)})
case("reducemean_opset13_attr", "ReduceMean", [X4], opset=13, axes=[1], keepdims=0)
case("reducesum_opset11_attr", "ReduceSum", [X4], opset=11, axes=[2, 3])
case("argmax_keepdims0", "ArgMax", [X4], axis=2, keepdims=0)
case("argmax_last_index", "ArgMax", [np.array([[1, 3, 3], [2, 2, 0]], np.float32)], axis=1,
     select_last_index=1)
case("argmin", "ArgMin", [i64(3, 5)], axis=-1)
case("topk_largest", "TopK", [f32(3, 6)], consts={1: ints(3)}, outputs=2)
case("topk_smallest_axis0", "TopK", [f32(5, 3)], consts={1: ints(2)}, outputs=2, axis=0,
     largest=0)

# --- indexing -----------------------------------------------------------------------------------
EMBED = f32(10, 4)
case("gather_embedding", "Gather", [None, np.array([[1, 2, 9], [0, -1, 3]], np.int64)],
     consts={0: EMBED})
case("gather_axis1_scalar", "Gather", [X4], consts={1: np.int64(-2)}, axis=1)
case("gather_int32_indices", "Gather", [f32(4, 5), np.array([3, 0], np.int32)], axis=1)
case("gather_elements", "GatherElements", [f32(3, 4), np.array([[0, 3], [1, -1], [2, 2]],
                                                                np.int64)], axis=1)
case("gather_nd", "GatherND", [f32(2, 3, 4), np.array([[0, 1], [1, 2]], np.int64)])

# --- types ------------------------------------------------------------------------------------
case("cast_float_to_int32", "Cast", [np.array([-2.7, -0.5, 0.5, 2.7], np.float32)], to=6)
case("cast_int_to_float", "Cast", [i64(5)], to=1)
case("cast_float_to_bool", "Cast", [np.array([0, 0.5, -1], np.float32)], to=9)
case("cast_bool_to_float", "Cast", [boolean(5)], to=1)
case("cast_to_float16", "Cast", [f32(5)], to=10)
case("castlike", "CastLike", [i32(5), np.zeros(1, np.float64)])


def _expected(model, feeds, use_reference: bool):
    if use_reference:
        from onnx.reference import ReferenceEvaluator
        return ReferenceEvaluator(model).run(None, feeds)
    return _ort(model, feeds)


def _ort(model, feeds):
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


@pytest.mark.parametrize("op, inputs, consts, attrs, outputs, opset", CASES)
def test_one_node_model_matches_onnxruntime(op, inputs, consts, attrs, outputs, opset, request):
    model, feeds = one_node_model(op, inputs, consts=consts, attrs=attrs, outputs=outputs,
                                  opset=opset)
    expected = _expected(model, feeds, "[reference]" in request.node.callspec.id)
    graph = import_model(model)
    run = run_graph(graph, {k: torch.from_numpy(np.array(v))
                            for k, v in feeds.items()})
    got = [t.numpy() for t in run.outputs.values()]
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert g.shape == e.shape
        assert g.dtype == e.dtype
        if e.dtype.kind in "biu":
            np.testing.assert_array_equal(g, e)
        else:
            np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-5)
