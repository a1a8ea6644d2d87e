"""API keys and per-key query budgets of a served student, kept in SQLite (stdlib ``sqlite3``).

[reconstructed] One table, ``keys``: a short public id, the SHA-256 of the secret (the secret
itself is shown once, at creation, and never stored), a name, a budget and the images used so
far (both counted in images, not requests), and a revoked flag. The database is opened in WAL
mode with a busy timeout, so ``faceleaks keys`` can create or revoke keys while a server runs,
and a restarted server keeps every key's spent budget. Charging is one ``UPDATE ... WHERE used
+ n <= budget``: two requests racing on one key can never overspend it.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from faceleaks.errors import ConfigError
from faceleaks.serving.ledger import use_wal

__all__ = ["KeyStore", "KeyRecord", "hash_key", "KeyRefused"]

_SCHEMA = """CREATE TABLE IF NOT EXISTS keys (
    key_id TEXT PRIMARY KEY, key_hash TEXT UNIQUE NOT NULL, name TEXT NOT NULL,
    budget INTEGER NOT NULL, used INTEGER NOT NULL DEFAULT 0, revoked INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL)"""


def hash_key(secret: str) -> str:
    """Hex SHA-256 of an API key's secret (what the database stores)."""
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class KeyRecord:
    """One API key as stored: ``budget`` and ``used`` in images; ``remaining`` = budget - used."""

    key_id: str
    name: str
    budget: int
    used: int
    revoked: bool
    created: float

    @property
    def remaining(self) -> int:
        """Images this key may still send."""
        return max(self.budget - self.used, 0)


class KeyRefused(Exception):
    """A request's key is missing (``status`` 401), unknown or revoked (403), or over budget (429)."""

    def __init__(self, status: int, message: str, remaining: int | None = None) -> None:
        super().__init__(message)
        self.status, self.remaining = status, remaining


class KeyStore:
    """API keys and budgets in the SQLite file ``path`` (created if needed).

    Parameters
    ----------
    path : path of the database file; its folder must exist

    Raises
    ------
    ConfigError
        The file cannot be opened as a database.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
            use_wal(self._db)
            self._db.execute(_SCHEMA)
        except sqlite3.Error as err:
            raise ConfigError(f"--keys {self.path} is not a usable key database ({err}); give a new file name") from err

    def create(self, name: str, budget: int) -> tuple[str, str]:
        """A new key for ``name`` allowed ``budget`` images; returns ``(key_id, secret)``.

        The secret (``fl_<key_id>_<random>``) is returned once and only its hash is stored.
        """
        if budget < 0:
            raise ConfigError(f"--budget must be >= 0 images, got {budget}")
        key_id = secrets.token_hex(4)
        secret = f"fl_{key_id}_{secrets.token_urlsafe(24)}"
        with self._lock:
            self._db.execute("INSERT INTO keys (key_id, key_hash, name, budget, created) VALUES (?, ?, ?, ?, ?)",
                             (key_id, hash_key(secret), name, int(budget), time.time()))
        return key_id, secret

    def list(self) -> list[KeyRecord]:
        """Every key, oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT key_id, name, budget, used, revoked, created FROM keys "
                                    "ORDER BY created").fetchall()
        return [KeyRecord(r[0], r[1], r[2], r[3], bool(r[4]), r[5]) for r in rows]

    def revoke(self, key_id: str) -> None:
        """Revoke ``key_id``; ``ConfigError`` naming the known ids if there is no such key."""
        with self._lock:
            n = self._db.execute("UPDATE keys SET revoked = 1 WHERE key_id = ?", (key_id,)).rowcount
        if n == 0:
            known = ", ".join(r.key_id for r in self.list()) or "none"
            raise ConfigError(f"no key {key_id!r} in {self.path} (known: {known}); see `faceleaks keys list`")

    def check(self, secret: str | None) -> KeyRecord:
        """The live key whose secret is ``secret``; ``KeyRefused`` 401 (missing) or 403 (wrong/revoked)."""
        if not secret:
            raise KeyRefused(401, "missing API key: send it in the X-API-Key header")
        with self._lock:
            r = self._db.execute("SELECT key_id, name, budget, used, revoked, created FROM keys WHERE key_hash = ?",
                                 (hash_key(secret),)).fetchone()
        if r is None or r[4]:
            raise KeyRefused(403, "unknown or revoked API key: ask the API's owner for a valid key")
        return KeyRecord(r[0], r[1], r[2], r[3], bool(r[4]), r[5])

    def charge(self, key_id: str, n: int) -> int:
        """Spend ``n`` images of ``key_id``'s budget atomically; returns the images left.

        Raises
        ------
        KeyRefused
            429 when ``n`` more would exceed the budget (nothing is spent), 403 if revoked meanwhile.
        """
        with self._lock:
            ok = self._db.execute("UPDATE keys SET used = used + ? WHERE key_id = ? AND revoked = 0 "
                                  "AND used + ? <= budget", (n, key_id, n)).rowcount
            r = self._db.execute("SELECT budget, used, revoked FROM keys WHERE key_id = ?", (key_id,)).fetchone()
        if r is None or r[2]:
            raise KeyRefused(403, "unknown or revoked API key: ask the API's owner for a valid key")
        left = max(r[0] - r[1], 0)
        if not ok:
            raise KeyRefused(429, f"query budget exceeded: {n} images asked, {left} of {r[0]} left for this key",
                             remaining=left)
        return left

    def close(self) -> None:
        """Close the database connection."""
        self._db.close()
