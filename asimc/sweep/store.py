"""The sweep's result store: one SQLite database in WAL mode.

Tables: ``meta`` (what the sweep is: model, data, context), ``points`` (one per distinct chip,
with its canonical text, parameters and costs), ``results`` (one row per (point, seed), keyed by
a hash of everything that decides its numbers) and ``baselines`` (FP32 and each ``int``
precision). Each finished row is committed at once with ``synchronous=FULL``, so killing the
driver at any moment loses no finished row; SQLite's journal keeps the file consistent.

Only the driver writes, and only one driver at a time: it holds an exclusive ``flock`` on
``DB.lock`` (released by the kernel however the driver dies; removed when the driver ends). Readers (``sweep show``) need no
lock: WAL lets them read while the driver writes.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import math
import os
import sqlite3
from pathlib import Path

from ..errors import UsageError

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS points (
    id INTEGER PRIMARY KEY,
    chip_key TEXT UNIQUE NOT NULL,
    params TEXT NOT NULL,
    chip_text TEXT,
    valid INTEGER NOT NULL,
    message TEXT NOT NULL DEFAULT '',
    costs TEXT,
    int_key TEXT,
    child_text TEXT
);
CREATE TABLE IF NOT EXISTS results (
    key TEXT PRIMARY KEY,
    point INTEGER NOT NULL REFERENCES points(id),
    seed INTEGER NOT NULL,
    status TEXT NOT NULL,
    accuracy REAL, agreement REAL, sqnr_db REAL,
    message TEXT NOT NULL DEFAULT '',
    seconds REAL,
    scores TEXT
);
CREATE INDEX IF NOT EXISTS results_point ON results(point, seed);
CREATE TABLE IF NOT EXISTS baselines (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    precision TEXT NOT NULL,
    accuracy REAL, agreement REAL, sqnr_db REAL,
    scores TEXT
);
"""
# Every metric of asimc.metrics of a row, as JSON (`scores`): added after schema 1's first
# databases, which get the column (empty) when a sweep opens them again.
_ADDED_COLUMNS = (("results", "scores TEXT"), ("baselines", "scores TEXT"),
                  ("points", "child_text TEXT"))
SCORE_FIELDS = ("accuracy", "agreement", "sqnr_db", "cosine", "cosine_worst", "mse")


def row_key(identity: str, chip_text: str, seed: int) -> str:
    return hashlib.sha256(f"{identity}\x1f{chip_text}\x1f{seed}".encode()).hexdigest()


def chip_key(chip_text: str | None, params: dict) -> str:
    text = chip_text if chip_text is not None else "invalid:" + json.dumps(params, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _real(value):
    """NaN cannot be stored as REAL (SQLite makes it NULL anyway): say so explicitly."""
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def connect(path: str | os.PathLike, *, create: bool) -> sqlite3.Connection:
    path = Path(path)
    if not create and not path.is_file():
        raise UsageError(f"{path}: no such sweep database")
    try:
        db = sqlite3.connect(str(path), timeout=30, isolation_level=None)
        db.execute("PRAGMA busy_timeout = 30000")
        if create:
            db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = FULL")
        if create:
            db.executescript(_SCHEMA)
            for table, column in _ADDED_COLUMNS:
                if column.split()[0] not in _columns(db, table):
                    db.execute(f"ALTER TABLE {table} ADD COLUMN {column}")
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.DatabaseError as error:
        raise UsageError(f"{path}: not a sweep database ({error})") from None
    if not {"meta", "points", "results", "baselines"} <= tables:
        raise UsageError(f"{path}: not a sweep database (written by `asimc sweep`)")
    return db


def _columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in db.execute(f"PRAGMA table_info({table})")}


def _scores_json(values: dict) -> str:
    """The metrics of one row as JSON (a non-finite number as a string, which JSON lacks)."""
    return json.dumps({k: _json_number(values.get(k)) for k in SCORE_FIELDS})


def _json_number(value):
    return value if value is None or math.isfinite(value) else repr(float(value))


def _from_json_number(value):
    return float(value) if isinstance(value, str) else value


class DriverLock:
    """The one-driver-per-database lock: an exclusive flock on ``DB.lock``, a file that lives
    as long as the driver (removed on release; a driver killed with -9 leaves it behind, and the
    next driver takes it over, since the kernel dropped the flock)."""

    def __init__(self, db_path: str | os.PathLike):
        self.path = f"{db_path}.lock"
        while True:
            try:
                self._file = open(self.path, "a+")
            except OSError as error:
                raise UsageError(f"{self.path}: cannot create the lock file "
                                 f"({error.strerror})") from None
            try:
                fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self._file.seek(0)
                holder = self._file.read().strip() or "another process"
                self._file.close()
                raise UsageError(f"{db_path}: another `asimc sweep` is already writing this "
                                 f"database (pid {holder}); wait for it to finish, or stop it "
                                 "(it resumes where it left off), or use another --db") from None
            if self._is_current():
                break
            self._file.close()          # locked a file its last holder removed meanwhile: retry
        self._file.seek(0)
        self._file.truncate()
        self._file.write(str(os.getpid()))
        self._file.flush()

    def _is_current(self) -> bool:
        try:
            return os.stat(self.path).st_ino == os.fstat(self._file.fileno()).st_ino
        except FileNotFoundError:
            return False

    def release(self) -> None:
        if not self._file.closed:
            # Removed while still held, so that no other driver can lock the name meanwhile.
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
            self._file.close()


class Store:
    """The driver's view of the database (it alone writes)."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    # -- meta ---------------------------------------------------------------------------------
    def meta(self) -> dict:
        return {name: json.loads(value) for name, value in self.db.execute(
            "SELECT name, value FROM meta")}

    def set_meta(self, values: dict, begin: bool = True) -> None:
        with self.db:
            if begin:
                self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                                [(k, json.dumps(v)) for k, v in values.items()])

    def clear(self) -> None:
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            for table in ("results", "baselines", "points", "meta"):
                self.db.execute(f"DELETE FROM {table}")

    # -- points -------------------------------------------------------------------------------
    def add_points(self, points) -> list[int]:
        """Insert the points not stored yet; returns every point's id, in order."""
        ids = []
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            for p in points:
                key = chip_key(p.chip_text, p.params)
                row = self.db.execute("SELECT id FROM points WHERE chip_key = ?", (key,)).fetchone()
                if row is None:
                    cursor = self.db.execute(
                        "INSERT INTO points (chip_key, params, chip_text, valid, message, "
                        "child_text) VALUES (?, ?, ?, ?, ?, ?)",
                        (key, json.dumps(p.params), p.chip_text, int(p.valid), p.message,
                         p.child_text))
                    ids.append(cursor.lastrowid)
                else:
                    ids.append(row[0])
        return ids

    def finished_keys(self) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT key FROM results WHERE status = 'done'")}

    def record(self, identity: str, chip_text: str, result: dict) -> None:
        """Commit one evaluated point: its rows (one per seed), costs and baselines."""
        point = result["point"]
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            for r in result["results"]:
                self.db.execute(
                    "INSERT OR REPLACE INTO results (key, point, seed, status, accuracy, "
                    "agreement, sqnr_db, message, seconds, scores) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (row_key(identity, chip_text, r["seed"]), point, r["seed"], r["status"],
                     _real(r.get("accuracy")), _real(r.get("agreement")),
                     _real(r.get("sqnr_db")), r.get("message", ""), r.get("seconds"),
                     _scores_json(r) if r["status"] == "done" else None))
            if result["status"] != "done":
                return
            ints = result["int"]
            self.db.execute("UPDATE points SET costs = ?, int_key = ? WHERE id = ?",
                            (json.dumps(result["costs"]), ints["key"], point))
            fp32 = result["fp32"]
            for key, kind, precision, values in (
                    (ints["key"], "int", ints["precision"], ints),
                    ("fp32", "fp32", "float32", fp32)):
                self.db.execute(
                    "INSERT OR REPLACE INTO baselines (key, kind, precision, accuracy, "
                    "agreement, sqnr_db, scores) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (key, kind, precision, _real(values["accuracy"]),
                     _real(values["agreement"]), values["sqnr_db"], _scores_json(values)))
            self.set_meta({"class_scores": bool(fp32.get("class_scores", True))}, begin=False)


# -- reading (sweep show) -------------------------------------------------------------------------

def read_sweep(path: str | os.PathLike) -> dict:
    """Everything ``sweep show`` needs, read in one transaction (consistent while a driver
    writes)."""
    db = connect(path, create=False)
    try:
        db.execute("BEGIN")
        meta = {name: json.loads(value) for name, value in db.execute(
            "SELECT name, value FROM meta")}
        child = "child_text" if "child_text" in _columns(db, "points") else "NULL"   # older
        points = [dict(zip(("id", "params", "chip_text", "valid", "message", "costs",
                            "int_key", "child_text"), row)) for row in db.execute(
            f"SELECT id, params, chip_text, valid, message, costs, int_key, {child} "
            "FROM points ORDER BY id")]
        scores = {"results": "scores" in _columns(db, "results"),
                  "baselines": "scores" in _columns(db, "baselines")}
        results = [dict(zip(("point", "seed", "status", "accuracy", "agreement", "sqnr_db",
                             "message", "key", "scores"), row)) for row in db.execute(
            "SELECT point, seed, status, accuracy, agreement, sqnr_db, message, key, "
            f"{'scores' if scores['results'] else 'NULL'} FROM results ORDER BY point, seed")]
        baselines = [dict(zip(("key", "kind", "precision", "accuracy", "agreement",
                               "sqnr_db", "scores"), row)) for row in db.execute(
            "SELECT key, kind, precision, accuracy, agreement, sqnr_db, "
            f"{'scores' if scores['baselines'] else 'NULL'} FROM baselines")]
        db.execute("COMMIT")
    except sqlite3.DatabaseError as error:
        raise UsageError(f"{path}: cannot read the sweep database ({error})") from None
    finally:
        db.close()
    for p in points:
        p["params"] = json.loads(p["params"])
        p["costs"] = json.loads(p["costs"]) if p["costs"] else {}
    for row in results + baselines:
        # A row stored before the other metrics were: its own columns only.
        stored = json.loads(row.pop("scores") or "{}")
        row.update({k: _from_json_number(stored.get(k, row.get(k))) for k in SCORE_FIELDS})
    return {"meta": meta, "points": points, "results": results, "baselines": baselines}
