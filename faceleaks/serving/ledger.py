"""The attacker's query ledger: every image sent to an endpoint, its answer and when, in SQLite.

[reconstructed] Keyed by (endpoint, SHA-256 of the image's bytes): a client that finds an image's
answer here never sends it again, so an audit killed mid-way resumes where it stopped, and the
ledger is the audit trail (what was asked of whom, and when). Each batch's answers are committed
in one transaction as soon as they arrive; the database is in WAL mode with a 60 s busy timeout,
so several processes may share one ledger (``INSERT OR IGNORE``: the first answer stored wins).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path

import numpy as np

from faceleaks.errors import ConfigError

__all__ = ["Ledger", "image_hashes", "use_wal"]

_SCHEMA = """CREATE TABLE IF NOT EXISTS answers (
    endpoint TEXT NOT NULL, image_sha256 TEXT NOT NULL, kind TEXT NOT NULL, dtype TEXT NOT NULL,
    shape TEXT NOT NULL, answer BLOB NOT NULL, answered_at REAL NOT NULL,
    PRIMARY KEY (endpoint, image_sha256))"""
_CHUNK = 500


def image_hashes(images: np.ndarray) -> list[str]:
    """Hex SHA-256 of each image's bytes (uint8 (n, S, S, 3) → n strings)."""
    return [hashlib.sha256(np.ascontiguousarray(im).tobytes()).hexdigest() for im in images]


def use_wal(db: sqlite3.Connection, attempts: int = 100) -> None:
    """Switch ``db`` to write-ahead logging. Two processes opening a new ledger at once can get
    "database is locked" here at once (SQLite does not apply the busy timeout to this change of
    journal mode), so it is retried for up to ``attempts`` x 0.05 s."""
    for attempt in range(attempts):
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or attempt == attempts - 1:
                raise
            time.sleep(0.05)


class Ledger:
    """Answers of one endpoint, stored in the SQLite file ``path`` (created with its folder if needed).

    Parameters
    ----------
    path : database file
    endpoint : what the answers belong to (e.g. the API's URL and output kind); answers of other
        endpoints in the same file are never returned

    Raises
    ------
    ConfigError
        The file is not a usable database.
    """

    def __init__(self, path: str | Path, endpoint: str) -> None:
        self.path, self.endpoint = Path(path).expanduser(), endpoint
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(self.path, timeout=60, check_same_thread=False)
            use_wal(self._db)
            with self._db:
                self._db.execute(_SCHEMA)
        except sqlite3.Error as err:
            raise ConfigError(f"ledger {self.path} is not a usable database ({err}); give another path") from err

    def get(self, hashes: list[str]) -> dict[str, np.ndarray]:
        """The stored answer row of each hash in ``hashes`` that has one (others are absent)."""
        out: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(hashes))
        with self._lock:
            for start in range(0, len(unique), _CHUNK):
                part = unique[start : start + _CHUNK]
                rows = self._db.execute(
                    f"SELECT image_sha256, dtype, shape, answer FROM answers WHERE endpoint = ? AND image_sha256 IN "
                    f"({','.join('?' * len(part))})", (self.endpoint, *part)).fetchall()
                for sha, dtype, shape, blob in rows:
                    out[sha] = np.frombuffer(blob, dtype=np.dtype(dtype)).reshape(json.loads(shape)).copy()
        return out

    def put(self, hashes: list[str], kind: str, values: np.ndarray) -> None:
        """Store row ``values[i]`` as the answer to image ``hashes[i]``, all in one transaction."""
        now = time.time()
        rows = [(self.endpoint, h, kind, v.dtype.str, json.dumps(list(v.shape)), np.ascontiguousarray(v).tobytes(), now)
                for h, v in zip(hashes, np.asarray(values))]
        with self._lock, self._db:
            self._db.executemany("INSERT OR IGNORE INTO answers VALUES (?, ?, ?, ?, ?, ?, ?)", rows)

    def count(self) -> int:
        """Answers stored for this endpoint."""
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM answers WHERE endpoint = ?",
                                        (self.endpoint,)).fetchone()[0])

    def check(self) -> str:
        """SQLite's ``PRAGMA integrity_check`` ("ok" for a sound file)."""
        with self._lock:
            return str(self._db.execute("PRAGMA integrity_check").fetchone()[0])

    def close(self) -> None:
        """Close the connection."""
        self._db.close()
