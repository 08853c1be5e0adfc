"""Fixtures of the sweep tests: the small digits MLP, a noisy base chip, a helper that runs
``asimc`` in this process, and one real local Ray cluster (127.0.0.1 only) for the session."""
from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from asimc.sweep.engines import RAY_LOOPBACK_ENV

ROOT = Path(__file__).resolve().parents[2]
MODEL = str(ROOT / "examples" / "models" / "digits_mlp.onnx")
CNN = str(ROOT / "examples" / "models" / "digits_cnn.onnx")   # points of about a second
NOISY = str(ROOT / "chips" / "asim-hcim-1.acim")       # 1 LSB random noise: seeds matter
LIMIT = "40"


def run_cli(capsys, *args) -> tuple[int, str, str]:
    """``asimc ARGS`` in this process: (exit code, stdout, stderr)."""
    from asimc.cli import main
    capsys.readouterr()
    try:
        code = main([str(a) for a in args])
    except SystemExit as exit_:      # argparse errors
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


def sweep_args(db, *vary, seeds=2, extra=(), limit=LIMIT, model=MODEL):
    args = ["sweep", model, "--chip", NOISY, "--data", "digits", "--limit", str(limit),
            "--db", db, "--seeds", str(seeds)]
    for v in vary:
        args += ["--vary", v]
    return args + list(extra)


def show_json(capsys, db, *extra) -> list[dict]:
    code, out, err = run_cli(capsys, "sweep", "show", db, "--json", *extra)
    assert code == 0, err
    return json.loads(out)


def points_of(rows):
    return [r for r in rows if r["point"] not in ("fp32", "int")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


RAY_HEAD: dict = {}        # "pgid": the process group of the session's Ray head


@pytest.fixture(scope="session")
def ray_address():
    """A real Ray head on 127.0.0.1 with 2 CPUs, in its own process group (killed whole at
    teardown, with every worker it started)."""
    port = _free_port()
    temp = f"/tmp/ray{os.getpid() % 100000}"
    # Our own token: Ray keeps a default one in ~/.ray, which other local clusters rewrite.
    os.makedirs(temp, exist_ok=True)
    token = os.path.join(temp, "auth_token")
    with open(token, "w") as f:
        f.write(secrets.token_hex(32))
    saved = {k: os.environ.get(k) for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH",
                                            RAY_LOOPBACK_ENV)}
    # The head, its workers and this driver all on 127.0.0.1 (Ray's single-machine mode; by
    # default Ray turns 127.0.0.1 into the machine's interface address).
    os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=token,
                      **{RAY_LOOPBACK_ENV: "0"})
    import ray  # noqa: F401  (the `ray` extra; `make` installs it, so a missing one fails)
    ray_bin = str(Path(sys.executable).parent / "ray")
    process = subprocess.Popen(
        [ray_bin, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}",
         "--num-cpus=2", "--include-dashboard=false", "--object-store-memory=100000000",
         f"--temp-dir={temp}", "--disable-usage-stats", "--block"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    RAY_HEAD["pgid"] = process.pid
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.5)
        else:
            raise RuntimeError("the local Ray head did not start")
        address = f"127.0.0.1:{port}"
        while subprocess.run([ray_bin, "status", f"--address={address}"],
                             capture_output=True).returncode != 0:   # until the node is up
            if time.time() > deadline:
                raise RuntimeError("the local Ray head did not come up")
            time.sleep(1)
        yield address
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)     # the head and every worker it started
        except ProcessLookupError:
            pass
        process.wait()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def listening_sockets(pgid: int) -> list[str]:
    """The local addresses (``ip:port``) of every TCP socket that a process of group ``pgid``
    listens on, read from /proc (Linux)."""
    inodes = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.getpgid(int(entry)) != pgid:
                continue
            for fd in os.listdir(f"/proc/{entry}/fd"):
                target = os.readlink(f"/proc/{entry}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except (ProcessLookupError, PermissionError, FileNotFoundError):
            continue
    found = []
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        with open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[3] != "0A" or fields[9] not in inodes:      # 0A: LISTEN
                    continue
                address, port = fields[1].split(":")
                words = [bytes.fromhex(address[i:i + 8])[::-1] for i in range(0, width, 8)]
                raw = b"".join(words)
                ip = socket.inet_ntop(socket.AF_INET if width == 8 else socket.AF_INET6, raw)
                found.append(f"{ip}:{int(port, 16)}")
    return found
