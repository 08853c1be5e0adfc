"""Read an ONNX model from a path, bytes or a ModelProto, with precise errors.

Distinguishes: a path that does not exist / is a directory / is not a file, a file that is not
ONNX at all, a truncated or corrupted ONNX file, external data that is missing or too short
(naming the file it wanted), a model without a graph or with an empty graph.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Union

import onnx
from google.protobuf.message import DecodeError
from onnx.external_data_helper import ExternalDataInfo, _get_all_tensors, uses_external_data

from ..errors import ModelError

ModelSource = Union[str, "os.PathLike[str]", bytes, onnx.ModelProto]


def load_model(source: ModelSource) -> onnx.ModelProto:
    """The model with its external data loaded and every node named (see ``name_nodes``)."""
    if isinstance(source, onnx.ModelProto):
        model = onnx.ModelProto()
        model.CopyFrom(source)
        label, base_dir = "the model", None
    elif isinstance(source, (bytes, bytearray, memoryview)):
        label, base_dir = "the model bytes", None
        model = _parse(bytes(source), label)
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        label, base_dir = f"'{path}'", path.parent
        model = _parse(_read_file(path), label)
    else:
        raise ModelError(f"cannot load a model from a {type(source).__name__}; give a path, "
                         "bytes or an onnx.ModelProto")
    _check_structure(model, label)
    _load_external_data(model, base_dir, label)
    name_nodes(model.graph)
    return model


def _read_file(path: Path) -> bytes:
    if not path.exists():
        hint = ""
        if path.suffix != ".onnx" and path.with_suffix(".onnx").exists():
            hint = f" (did you mean '{path.with_suffix('.onnx')}'?)"
        raise ModelError(f"model file '{path}' does not exist{hint}")
    if path.is_dir():
        raise ModelError(f"'{path}' is a directory, not an ONNX model file")
    if not path.is_file():
        raise ModelError(f"'{path}' is not a regular file")
    try:
        return path.read_bytes()
    except OSError as error:
        raise ModelError(f"cannot read model file '{path}': {error.strerror or error}") from None


def _parse(data: bytes, label: str) -> onnx.ModelProto:
    if not data:
        raise ModelError(f"{label} is empty (0 bytes), not an ONNX model")
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as error:
        # A serialized ModelProto starts with field 1 (ir_version, a varint): byte 0x08.
        if data[:1] == b"\x08":
            raise ModelError(f"{label} is a truncated or corrupted ONNX file "
                             f"({len(data)} bytes; the protobuf decoder says: {error})") from None
        raise ModelError(f"{label} is not an ONNX model (it does not parse as an ONNX "
                         f"protobuf; {_sniff(data)})") from None
    if model.ir_version <= 0 or not model.HasField("graph"):
        if data[:1] == b"\x08" and model.ir_version > 0:
            raise ModelError(f"{label} is a truncated ONNX file: it has no graph")
        raise ModelError(f"{label} is not an ONNX model ({_sniff(data)})")
    return model


def _sniff(data: bytes) -> str:
    """A hint at what the bytes might be instead."""
    head = data[:16]
    if head.startswith(b"PK"):
        return "it looks like a zip archive (a PyTorch checkpoint?)"
    if head.startswith(b"\x80"):
        return "it looks like a Python pickle (a PyTorch checkpoint?)"
    if head.startswith(b"\x89HDF"):
        return "it looks like an HDF5 file (a Keras model?)"
    if head.lstrip().startswith((b"{", b"[")):
        return "it looks like JSON"
    if all(32 <= b < 127 or b in (9, 10, 13) for b in data[:256]):
        return "it looks like a text file"
    return "its first bytes are " + data[:8].hex(" ")


def _check_structure(model: onnx.ModelProto, label: str) -> None:
    graph = model.graph
    if not graph.node:
        raise ModelError(f"{label} has an empty graph (no nodes)")
    if not graph.output:
        raise ModelError(f"{label}: the graph declares no outputs")


def _load_external_data(model: onnx.ModelProto, base_dir: Path | None, label: str) -> None:
    for tensor in _get_all_tensors(model):
        if not uses_external_data(tensor):
            continue
        info = ExternalDataInfo(tensor)
        where = f"tensor '{tensor.name}' stores its data in external file '{info.location}'"
        if base_dir is None:
            raise ModelError(f"{label}: {where}; load the model from its path so that the "
                             "file can be found next to it")
        location = Path(info.location)
        if location.is_absolute() or ".." in location.parts:
            raise ModelError(f"{label}: {where}, which lies outside the model's directory")
        path = base_dir / location
        if not path.is_file():
            raise ModelError(f"{label}: {where}, but '{path}' does not exist")
        size = path.stat().st_size
        offset = int(info.offset or 0)
        length = int(info.length) if info.length else size - offset
        if offset + length > size:
            raise ModelError(f"{label}: {where} at bytes {offset}..{offset + length}, but "
                             f"'{path}' has only {size} bytes (truncated?)")
        with open(path, "rb") as handle:
            handle.seek(offset)
            tensor.raw_data = handle.read(length)
        tensor.data_location = onnx.TensorProto.DEFAULT
        del tensor.external_data[:]


def name_nodes(graph: onnx.GraphProto) -> None:
    """Give every node a unique name (``<OpType>_<index>`` for unnamed ones), so that every
    message can name the node it is about."""
    seen: set[str] = set()
    for index, node in enumerate(graph.node):
        name = node.name or f"{node.op_type}_{index}"
        base, k = name, 1
        while name in seen:
            name, k = f"{base}_{k}", k + 1
        seen.add(name)
        node.name = name
