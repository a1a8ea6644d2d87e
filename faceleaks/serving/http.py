"""A student behind a real HTTP API and the attacker's client: the names ``faceleaks run --http`` uses.

The server lives in ``serving.server`` (FastAPI + uvicorn: keys, budgets, limits, checked
``.npy`` input), the client in ``serving.client`` (httpx: retries, batching, the query ledger).
``faceleaks run --http`` serves each student with ``serve_in_thread`` on 127.0.0.1 as an open
API (no key store: the server and its only client live in the same process) and queries it
with ``HttpBlackBox``.
"""

from __future__ import annotations

from faceleaks.serving.client import HttpBlackBox
from faceleaks.serving.server import create_app, serve_in_thread

__all__ = ["create_app", "HttpBlackBox", "serve_in_thread"]
