"""A student behind a real HTTP API (FastAPI + uvicorn) and the attacker's client (httpx).

Wire format [reconstructed]: ``GET /info`` → ``{"name", "output_kind", "input_size"}``;
``POST /query`` with an ``application/octet-stream`` body holding a NumPy ``.npy`` array of uint8
(n, S, S, 3) RGB crops → ``{"kind", "values"}`` (posteriors as nested lists, or labels). The
client sends batches, retries transient failures, and raises ``QueryError`` naming how far it got;
wrapped in ``CachingBlackBox``, answers already received are kept, so a retried audit loses nothing.
"""

from __future__ import annotations

import io
import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import numpy as np
import uvicorn
from fastapi import FastAPI, HTTPException, Request

from faceleaks.errors import QueryError
from faceleaks.serving.protocol import BlackBox, OutputKind, QueryResult, check_images

__all__ = ["create_app", "HttpBlackBox", "serve_in_thread"]

log = logging.getLogger(__name__)


def _to_npy(images: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(images), allow_pickle=False)
    return buf.getvalue()


def create_app(box: BlackBox, *, name: str = "student"):
    """A FastAPI app answering queries with ``box`` (the owner's side)."""
    app = FastAPI(title=f"faceleaks student API: {name}")

    @app.get("/info")
    def info() -> dict:
        return {"name": name, "output_kind": box.output_kind.value, "input_size": box.input_size}

    @app.post("/query")
    async def query(request: Request) -> dict:
        try:
            images = np.load(io.BytesIO(await request.body()), allow_pickle=False)
            result = box.query(images)
        except (ValueError, OSError, QueryError) as err:
            raise HTTPException(status_code=422, detail=str(err)) from err
        return {"kind": result.kind.value, "values": result.values.tolist()}

    return app


class HttpBlackBox:
    """The attacker's view of a student API at ``url``.

    Parameters
    ----------
    url : str
        Base URL, e.g. ``http://127.0.0.1:8000``.
    batch_size : int
        Images per request.
    retries : int
        Attempts per batch on connection errors and 5xx answers, with backoff ``0.2 * 2**i`` s.
    timeout : float
        Seconds per request.
    """

    def __init__(self, url: str, *, batch_size: int = 64, retries: int = 3, timeout: float = 60.0) -> None:
        self.url = url.rstrip("/")
        self.batch_size = batch_size
        self.retries = retries
        self._client = httpx.Client(timeout=timeout)
        info = self._request("GET", "/info").json()
        self._kind = OutputKind(info["output_kind"])
        self._input_size = int(info["input_size"])

    @property
    def output_kind(self) -> OutputKind:
        return self._kind

    @property
    def input_size(self) -> int:
        return self._input_size

    def _request(self, method: str, path: str, **kw) -> httpx.Response:
        last: Exception | None = None
        for attempt in range(self.retries):
            try:
                response = self._client.request(method, self.url + path, **kw)
            except httpx.TransportError as err:
                last = err
            else:
                if response.status_code < 500:
                    if response.status_code >= 400:
                        raise QueryError(f"{self.url}{path} refused the query ({response.status_code}): {response.text[:200]}")
                    return response
                last = QueryError(f"server error {response.status_code}")
            time.sleep(0.2 * 2**attempt)
        raise QueryError(f"student API {self.url} failed after {self.retries} attempts: {last}") from last

    def query(self, images: np.ndarray) -> QueryResult:
        images = check_images(images, self._input_size)
        parts = []
        for start in range(0, len(images), self.batch_size):
            try:
                r = self._request("POST", "/query", content=_to_npy(images[start : start + self.batch_size]),
                                  headers={"content-type": "application/octet-stream"})
            except QueryError as err:
                raise QueryError(f"{err} (after {start} of {len(images)} images of this call were answered)") from err
            parts.append(np.asarray(r.json()["values"]))
        dtype = np.int64 if self._kind is OutputKind.LABEL else np.float32
        values = np.concatenate(parts).astype(dtype) if parts else np.zeros((0,), dtype)
        return QueryResult(self._kind, values)

    def close(self) -> None:
        self._client.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve_in_thread(box: BlackBox, *, name: str = "student", port: int | None = None) -> Iterator[str]:
    """Serve ``box`` with uvicorn on 127.0.0.1 in a background thread; yields the base URL."""
    port = port or _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(box, name=name), host="127.0.0.1", port=port,
                                           log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise QueryError(f"the student API did not start on port {port}")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
