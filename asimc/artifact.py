"""The compiled artifact: one ``.asimc`` file, a zip with ``program.json`` (graph, chip, layers,
report) and ``tensors.npz`` (constants, quantised weights, tensor attributes), versioned and
sealed with a SHA-256 content hash that is checked on load. Loading never unpickles.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .chip.serialize import chip_from_dict, chip_to_dict
from .errors import ArtifactError
from .jsonout import dumps
from .ir import Graph, Node, TensorInfo
from .program import Accumulate, ArrayTile, LayerCost, MatrixLayer, Program, QdqLayer, QdqOperand

FORMAT = "asimc-program"
FORMAT_VERSION = 1
MEMBERS = ("program.json", "tensors.npz", "sha256")


def _info(t: TensorInfo) -> dict[str, Any]:
    return {"name": t.name, "dtype": t.dtype,
            "shape": None if t.shape is None else list(t.shape)}


def _info_back(d: dict[str, Any]) -> TensorInfo:
    return TensorInfo(d["name"], d["dtype"], None if d["shape"] is None else tuple(d["shape"]))


def _attr(value: Any, tensors: dict[str, np.ndarray]) -> Any:
    if isinstance(value, np.ndarray):
        key = f"attr{len(tensors)}"
        tensors[key] = value
        return {"tensor": key}
    if isinstance(value, bytes):
        return {"bytes": value.hex()}
    if isinstance(value, (list, tuple)):
        return {"list": [_attr(v, tensors) for v in value]}
    if isinstance(value, np.generic):
        return value.item()
    return value


def _attr_back(value: Any, tensors) -> Any:
    if isinstance(value, dict):
        if "tensor" in value:
            return tensors[value["tensor"]]
        if "bytes" in value:
            return bytes.fromhex(value["bytes"])
        if "list" in value:
            return [_attr_back(v, tensors) for v in value["list"]]
    return value


def _layer(layer: MatrixLayer) -> dict[str, Any]:
    d = {f.name: getattr(layer, f.name) for f in dataclasses.fields(layer)}
    d["chip"] = chip_to_dict(layer.chip)
    d["tiles"] = [list(t) for t in layer.tiles]
    d["weight_scale"] = list(layer.weight_scale)
    d["cost"] = None if layer.cost is None else dataclasses.asdict(layer.cost)
    d["schedule"] = [dataclasses.astuple(t) for t in layer.schedule]
    d["accumulate"] = None if layer.accumulate is None else dataclasses.asdict(layer.accumulate)
    d["qdq"] = None if layer.qdq is None else dataclasses.asdict(layer.qdq)
    return d


def _layer_back(d: dict[str, Any]) -> MatrixLayer:
    d = dict(d)
    d["chip"] = chip_from_dict(d["chip"])
    d["tiles"] = tuple(tuple(t) for t in d["tiles"])
    d["weight_scale"] = tuple(d["weight_scale"])
    d["cost"] = None if d["cost"] is None else LayerCost(**d["cost"])
    d["schedule"] = tuple(ArrayTile(g, t, tuple(rows), tuple(channels), macro, wave)
                          for g, t, rows, channels, macro, wave in d["schedule"])
    d["accumulate"] = None if d["accumulate"] is None else Accumulate(**d["accumulate"])
    qdq = d.get("qdq")
    if qdq is not None:
        operands = {key: None if qdq.get(key) is None else QdqOperand(**qdq[key])
                    for key in ("input", "operand")}
        d["qdq"] = QdqLayer(**{**qdq, **operands})
    return MatrixLayer(**d)


def _encode(program: Program) -> tuple[bytes, bytes]:
    tensors: dict[str, np.ndarray] = {}
    g = program.graph
    constant_keys = {}
    for i, (name, value) in enumerate(g.constants.items()):
        constant_keys[name] = f"const{i}"
        tensors[f"const{i}"] = np.asarray(value)
    weight_keys = {}
    for i, (name, value) in enumerate(program.quantized_weights.items()):
        weight_keys[name] = f"weight{i}"
        tensors[f"weight{i}"] = value
    nodes = [{"name": n.name, "op_type": n.op_type, "inputs": list(n.inputs),
              "outputs": list(n.outputs),
              "attrs": {k: _attr(v, tensors) for k, v in n.attrs.items()}} for n in g.nodes]
    doc = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "asimc_version": __version__,
        "source": program.source,
        "chip": chip_to_dict(program.chip),
        "graph": {"name": g.name, "opset": g.opset,
                  "inputs": [_info(t) for t in g.inputs],
                  "outputs": [_info(t) for t in g.outputs],
                  "value_info": [_info(t) for t in g.value_info.values()],
                  "nodes": nodes, "constants": constant_keys},
        "layers": [_layer(l) for l in program.layers.values()],
        "quantized_weights": weight_keys,
        "report": program.report,
    }
    buffer = io.BytesIO()
    np.savez(buffer, **tensors)
    return dumps(doc, indent=1, sort_keys=True).encode(), buffer.getvalue()


def _digest(program_json: bytes, tensors: bytes) -> str:
    h = hashlib.sha256()
    h.update(len(program_json).to_bytes(8, "little"))
    h.update(program_json)
    h.update(tensors)
    return h.hexdigest()


def save_program(program: Program, path) -> str:
    """Write ``program`` to ``path``; returns the content hash."""
    program_json, tensors = _encode(program)
    digest = _digest(program_json, tensors)
    path = Path(path)
    try:
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("program.json", program_json)
            z.writestr("tensors.npz", tensors)
            z.writestr("sha256", digest)
    except OSError as error:
        raise ArtifactError(f"{path}: cannot write the artifact ({error.strerror})") from None
    return digest


def load_program(path) -> Program:
    """Read and verify an artifact written by ``save_program``."""
    path = Path(path)
    if not path.exists():
        raise ArtifactError(f"{path}: no such file")
    if path.is_dir():
        raise ArtifactError(f"{path}: is a directory, not an .asimc artifact")
    try:
        with zipfile.ZipFile(path) as z:
            members = sorted(z.namelist())
            if members != sorted(MEMBERS):
                extra = sorted(set(members) - set(MEMBERS))
                missing = sorted(set(MEMBERS) - set(members))
                what = "; ".join(filter(None, [
                    extra and f"unexpected member(s) {', '.join(map(repr, extra))}",
                    missing and f"missing member(s) {', '.join(map(repr, missing))}"]))
                raise ArtifactError(f"{path}: not an artifact asimc wrote "
                                    f"({what or 'duplicate members'}); compile the model again")
            program_json, tensors, digest = (z.read(m) for m in MEMBERS)
    except ArtifactError:
        raise
    except (zipfile.BadZipFile, KeyError, OSError, EOFError, ValueError, RuntimeError) as error:
        raise ArtifactError(f"{path}: not an asimc artifact or truncated ({error})") from None
    if _digest(program_json, tensors) != digest.decode(errors="replace"):
        raise ArtifactError(f"{path}: content hash mismatch: the artifact was modified or is "
                            "corrupted; compile it again")
    try:
        doc = json.loads(program_json)
    except ValueError as error:
        raise ArtifactError(f"{path}: unreadable program.json ({error})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ArtifactError(f"{path}: not an asimc program artifact")
    version = doc.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ArtifactError(f"{path}: malformed artifact: format_version is {version!r}, not a "
                            "format number; compile the model again")
    if version > FORMAT_VERSION:
        raise ArtifactError(
            f"{path}: written by asimc {doc.get('asimc_version')} in artifact format "
            f"{version}; this asimc ({__version__}) reads format "
            f"{FORMAT_VERSION} and older. Upgrade asimc or compile the model again.")
    try:
        with np.load(io.BytesIO(tensors), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        program = _decode(doc, arrays)
    except ArtifactError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, OSError,
            EOFError, zipfile.BadZipFile) as error:
        raise ArtifactError(f"{path}: malformed artifact ({_what(error)}); compile the model "
                            "again") from None
    _check_chips(program, path)
    return program


def _what(error: Exception) -> str:
    if isinstance(error, KeyError):
        return f"missing field {error}"
    return f"{type(error).__name__}: {error}"


def _check_chips(program: Program, path) -> None:
    """The chips inside an artifact are checked again: an edited artifact (hash recomputed)
    must not run a chip that `asimc chip check` would refuse."""
    from .chip.check import validate
    chips = {"the chip": program.chip}
    chips.update({f"layer {name}'s chip": l.chip for name, l in program.layers.items()})
    for where, chip in chips.items():
        try:
            problems = validate(chip)
        except (TypeError, ValueError, AttributeError, KeyError) as error:
            problems = [f"unreadable ({type(error).__name__}: {error})"]
        if problems:
            raise ArtifactError(f"{path}: {where} in the artifact does not check: "
                                f"{'; '.join(problems[:3])}; compile the model again")


def _decode(doc: dict[str, Any], arrays: dict[str, np.ndarray]) -> Program:
    g = doc["graph"]
    graph = Graph(
        name=g["name"], opset=g["opset"],
        inputs=tuple(_info_back(t) for t in g["inputs"]),
        outputs=tuple(_info_back(t) for t in g["outputs"]),
        value_info={t["name"]: _info_back(t) for t in g["value_info"]},
        nodes=tuple(Node(n["name"], n["op_type"], tuple(n["inputs"]), tuple(n["outputs"]),
                         {k: _attr_back(v, arrays) for k, v in n["attrs"].items()})
                    for n in g["nodes"]),
        constants={name: arrays[key] for name, key in g["constants"].items()})
    layers = {d["node"]: _layer_back(d) for d in doc["layers"]}
    report = doc["report"]
    if not (isinstance(report, dict) and isinstance(report.get("layers"), list)
            and isinstance(report.get("total"), dict)):
        raise TypeError("the report is not a mapping report")
    return Program(graph=graph, chip=chip_from_dict(doc["chip"]), layers=layers,
                   quantized_weights={n: arrays[k] for n, k in doc["quantized_weights"].items()},
                   report=doc["report"], source=doc["source"])
