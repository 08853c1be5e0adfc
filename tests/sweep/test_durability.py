"""kill -9 of a real driver process at random moments, a second driver, `show` while a sweep
writes, and Ctrl-C: no finished row lost, no row computed twice, the database always intact."""
from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time

import asimc.cli  # noqa: F401  (imported now, not while a driver races ahead)
import asimc.sweep.answers  # noqa: F401
from asimc.sweep.evaluate import EVAL_LOG_ENV
from asimc.sweep.store import DriverLock

from .conftest import CNN, points_of, run_cli, show_json, sweep_args

VARY = ("adc.bits=3:14:1",)
POINTS = 12
# Points slow enough that a kill or a Ctrl-C lands while rows are missing: the CNN on all 450
# test images, about a second each (the MLP's take tens of milliseconds: a sweep of them can
# finish before the signal).
LIMIT = 450


def _start(db, log):
    args = sweep_args(db, *VARY, seeds=1, limit=LIMIT, model=CNN) + ["--workers", "1"]
    env = {**os.environ, EVAL_LOG_ENV: str(log)}
    return subprocess.Popen([sys.executable, "-m", "asimc", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)   # its own process group: killed whole


def _done_keys(db) -> set[str]:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as con:
            return {r[0] for r in con.execute("SELECT key FROM results WHERE status = 'done'")}
    except sqlite3.OperationalError:          # not created yet
        return set()


def _wait_for_rows(db, count, process, timeout=240) -> set[str]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        keys = _done_keys(db)
        if len(keys) >= count:
            return keys
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    raise AssertionError(f"no {count} finished rows after {timeout} s")


def _kill_group(process, sig=signal.SIGKILL):
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass


def _log(path):
    return [line for line in path.read_text().splitlines()] if path.exists() else []


def test_kill_9_at_random_moments_loses_nothing(tmp_path, capsys, monkeypatch):
    db, log = str(tmp_path / "s.db"), tmp_path / "evals.log"
    rng = random.Random()
    seen: set[str] = set()
    for attempt in range(2):
        process = _start(db, log)
        try:
            if attempt == 0:
                seen = _wait_for_rows(db, 1, process)
                target = rng.randint(len(seen) + 1, len(seen) + 2)
            else:
                # While a driver holds the database, `show` reads it.
                rows = show_json(capsys, db)
                assert any(r["status"] == "done" for r in points_of(rows))
                target = len(seen) + 1
            seen = _wait_for_rows(db, target, process)
            time.sleep(rng.uniform(0.0, 0.2))      # land anywhere: mid-point, mid-commit
            seen = _done_keys(db) | seen
        finally:
            _kill_group(process)
            process.wait()
        after = _done_keys(db)
        assert seen <= after                      # every row finished before the kill is there
        with sqlite3.connect(db) as con:
            assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        seen = after
        if len(seen) > POINTS - 6:
            # Keep rows for the resumed run to compute: a kill can land after a few more rows
            # than the target (two workers, the random pause), so stop well before the end.
            break
    missing_before = POINTS - len(seen)
    assert missing_before >= 1
    evaluated_before = len(_log(log))
    monkeypatch.setenv(EVAL_LOG_ENV, str(log))
    code, _, err = run_cli(capsys, *sweep_args(db, *VARY, seeds=1, limit=LIMIT, model=CNN),
                           "--workers", "1")
    assert code == 0, err
    resumed = _log(log)[evaluated_before:]
    assert len(resumed) == len(set(resumed)) == missing_before    # each missing row once
    rows = points_of(show_json(capsys, db))
    assert [r["status"] for r in rows] == ["done"] * POINTS
    assert len(_done_keys(db)) == POINTS


def test_a_second_driver_is_refused(tmp_path, capsys):
    db = str(tmp_path / "s.db")
    holder = DriverLock(db)          # what a running driver holds
    try:
        code, _, err = run_cli(capsys, *sweep_args(db, *VARY, seeds=1, limit=LIMIT, model=CNN))
    finally:
        holder.release()
    assert code == 2 and "another `asimc sweep` is already writing this database" in err
    assert run_cli(capsys, *sweep_args(db, "adc.bits=8", seeds=1), "--workers", "1")[0] == 0
    assert not os.path.exists(f"{db}.lock")     # a finished sweep leaves no lock file behind


def test_ctrl_c_stops_cleanly_and_says_how_to_resume(tmp_path):
    db, log = str(tmp_path / "s.db"), tmp_path / "evals.log"
    process = _start(db, log)
    try:
        _wait_for_rows(db, 1, process)
        _kill_group(process, signal.SIGINT)       # what a terminal sends to the whole group
        out, err = process.communicate(timeout=120)
    finally:
        _kill_group(process)
    assert process.returncode == 130, err
    assert "run the same command again to resume" in err
    assert "Traceback" not in err
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert len(_done_keys(db)) >= 1
