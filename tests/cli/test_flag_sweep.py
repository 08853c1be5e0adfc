"""Wrong values for every flag and wrong files for every file argument of every sub-command
give a clear error, never an internal error (issue 9, done-when).

The cases are generated from the argparse parser itself (``asimc.cli.build_parser``), so a new
flag or sub-command is swept as soon as it exists. A new *required* argument needs a valid value
in VALID (the test says so), and a new file argument an entry in FILE_KINDS.
"""
from __future__ import annotations

import argparse
import re

import numpy as np
import pytest

from asimc.cli import build_parser

from .conftest import cli_streams, no_internal_error

# The one error form: located in a chip file, or by the program (argparse's is `asimc CMD:`).
ERROR_FORM = re.compile(r"^(\S+:\d+:\d+|asimc(?: [\w-]+)*): error: ")


def _leaves(parser, prefix=()):
    """(sub-command words, parser) for every runnable sub-command."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                if any(isinstance(a, argparse._SubParsersAction) for a in sub._actions):
                    yield from _leaves(sub, prefix + (name,))
                else:
                    yield prefix + (name,), sub


def _arguments(parser):
    return [a for a in parser._actions
            if not isinstance(a, (argparse._HelpAction, argparse._VersionAction))]


# What each file argument holds, by its dest; the sweep feeds every other kind of file to it.
FILE_KINDS = {"model": "model", "chip": "chip", "chips": "chip", "files": "chip",
              "file": "chip", "artifact": "artifact", "input": "input", "data": "data",
              "input_scales": "data", "smooth": "data", "val": "data", "output": "output",
              "report": "output", "db": "output", "table": "table", "plot": "output"}
# The file each command writes, by command (or by dest for --report and --db).
OUTPUT_SUFFIX = {"run": ".npy", "finetune": ".onnx", "calibrate": ".acim", "report": ".html",
                 "db": ".db", "fit": ".acim", "measure": ".csv", "plot": ".png"}


@pytest.fixture(scope="module")
def paths(files, tmp_path_factory):
    folder = tmp_path_factory.mktemp("sweep")
    (folder / "empty").write_bytes(b"")
    (folder / "garbage").write_bytes(bytes(range(256)) * 4)
    (folder / "text.txt").write_text("just some words\n" * 10)
    (folder / "a-folder").mkdir()
    data = np.load(files / "data.npz")
    np.savez(folder / "d4.npz", x=data["x"][:4], y=data["y"][:4])
    from asimc.chip import load_chip
    from asimc.silicon import measure_chip
    table = measure_chip(load_chip(files / "chip.acim"), repeats=20, every=8).text
    (folder / "table.csv").write_text(table)
    valid = {"model": files / "mlp.onnx", "chip": files / "chip.acim",
             "table": folder / "table.csv",
             "artifact": files / "mlp.asimc", "input": files / "x.npy",
             "data": folder / "d4.npz"}
    wrong = {"missing": folder / "no-such-file", "folder": folder / "a-folder",
             "empty": folder / "empty", "garbage": folder / "garbage",
             "text": folder / "text.txt"}
    return folder, valid, wrong


def _valid(action, paths, command):
    folder, valid, _ = paths
    kind = FILE_KINDS.get(action.dest)
    if kind == "output":
        suffix = OUTPUT_SUFFIX.get(action.dest) or OUTPUT_SUFFIX.get(command[-1], ".asimc")
        return [str(folder / f"out{suffix}")]
    if kind is not None:
        return [str(valid[kind])]
    raise AssertionError(f"`asimc {' '.join(command)}`: add a valid value for the required "
                         f"argument {action.dest!r} to the sweep (tests/cli/test_flag_sweep.py)")


def _base(command, parser, paths):
    """A valid command line: required arguments, a fast data size, and a -o into tmp."""
    argv = list(command)
    for action in _arguments(parser):
        if not action.option_strings:
            argv += _valid(action, paths, command)
        elif action.required or action.dest in ("output",):
            argv += [action.option_strings[0], *_valid(action, paths, command)]
    names = {o for a in _arguments(parser) for o in a.option_strings}
    if "--limit" in names:
        argv += ["--limit", "4"]
    if "--seeds" in names:
        argv += ["--seeds", "1"]
    if "--epochs" in names:
        argv += ["--epochs", "1"]
    return argv


def _replace(argv, action, values):
    """argv with the argument of ``action`` set to ``values`` (added when absent)."""
    if not action.option_strings:
        return None
    out, skip = [], 0
    for i, word in enumerate(argv):
        if skip:
            skip -= 1
            continue
        if word in action.option_strings:
            n = 1 if action.nargs in (None, "?") else 0
            if action.nargs == "+":
                n = 1
            skip = n
            continue
        out.append(word)
    return out + [action.option_strings[0], *values]


NUMBERS = ["0", "-1", "abc", "1e309", "99999999999999999999"]
STRINGS = ["", "abc[", "-1", "x" * 300]


def _wrong_values(action):
    if action.nargs == 0:                       # store_true, --no-...: valid on their own
        return [[]]
    if action.choices:
        return [["bogus"], [""]]
    if FILE_KINDS.get(action.dest) == "output":
        return [["{missing}/out.x"], ["{folder}"], ["{empty}/inside"]]
    if action.dest in FILE_KINDS:
        return [[f"{{{name}}}"] for name in ("missing", "folder", "empty", "garbage",
                                             "wrong_kind")]
    if action.type in (int, float) or getattr(action.type, "__name__", "") in (
            "positive_int", "fraction"):
        return [[v] for v in NUMBERS]
    return [[v] for v in STRINGS + ["0x0", "nan,1,2,3,4,5"]]


WRONG_KIND = {"model": "chip", "chip": "model", "artifact": "model", "input": "chip",
              "data": "model", "table": "chip"}


def _cases():
    parser = build_parser()
    for command, sub in _leaves(parser):
        for action in _arguments(sub):
            for values in _wrong_values(action):
                yield pytest.param(command, action.dest, values,
                                   id=f"{' '.join(command)}:{action.dest}={'|'.join(values)}"[:90])


CASES = list(_cases())


def test_every_subcommand_and_flag_is_swept():
    swept = {(c.values[0], c.values[1]) for c in CASES}
    for command, sub in _leaves(build_parser()):
        for action in _arguments(sub):
            assert (command, action.dest) in swept
    assert len({c.values[0] for c in CASES}) >= 9      # compile, inspect, run, golden, ...


@pytest.mark.parametrize("command, dest, values", CASES)
def test_wrong_value_is_no_internal_error(paths, monkeypatch, command, dest, values):
    folder, valid, wrong = paths
    monkeypatch.chdir(folder)              # anything written by default lands in tmp
    parser = dict(_leaves(build_parser()))[command]
    action = next(a for a in _arguments(parser) if a.dest == dest)
    kind = FILE_KINDS.get(dest)
    names = {k: str(v) for k, v in wrong.items()}
    if kind in WRONG_KIND:
        names["wrong_kind"] = str(valid[WRONG_KIND[kind]])
    values = [v.format(**names) for v in values]
    argv = _base(command, parser, paths)
    if action.option_strings:
        argv = _replace(argv, action, values)
    else:
        position = argv.index(_valid(action, paths, command)[0])
        argv[position] = values[0]
    code, out, err = cli_streams(*argv)
    no_internal_error(code, out + err)
    assert code in (0, 1, 2), (code, out + err)
    if code == 2:
        # After argparse's usage or a progress line: the error, in the one form.
        assert any(ERROR_FORM.match(line) for line in err.splitlines()), err
