"""A student behind a real HTTP API: FastAPI on uvicorn, with keys, budgets, limits and checked input.

Wire format [reconstructed]: ``GET /health`` → ``{"status": "ok"}`` (no key); ``GET /info`` →
``{"name", "output_kind", "input_size", "max_batch"}``; ``POST /query`` with an
``application/x-npy`` (or ``application/octet-stream``) body holding one ``.npy`` array of uint8
(n, S, S, 3) RGB crops → ``{"kind", "values"}`` (posteriors as nested lists, or labels).

Every request but ``/health`` carries its key in ``X-API-Key`` (``serving.keys.KeyStore``; no
store: an open API, as ``faceleaks run --http`` uses on 127.0.0.1). In order, a query is refused
with 401 (no key), 403 (unknown or revoked key), 429 (over the key's rate), 415 (content type),
413 (``Content-Length`` or the streamed body over ``Limits.max_body``, or more images than
``Limits.max_batch``), 422 (a body that is not a uint8 (n, S, S, 3) ``.npy``, naming the bad
item; checked from its header before anything is allocated, ``serving.wire``), 429 (over the
key's budget). Answers and refusals carry ``X-Budget-Remaining`` once the key is known. A bug
answers 500 ``internal server error`` and is logged here, never sent to the client.
``/docs``, ``/redoc`` and ``/openapi.json`` are off.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from faceleaks.errors import QueryError
from faceleaks.serving.keys import KeyRefused, KeyStore
from faceleaks.serving.ledger import image_hashes
from faceleaks.serving.protocol import BlackBox
from faceleaks.serving.wire import NPY_TYPES, Limits, WireError, decode_images

__all__ = ["create_app", "serve_in_thread", "Faults", "Limits", "load_api", "reveal_api", "free_port", "run_in_thread"]

log = logging.getLogger(__name__)
KEY_HEADER = "X-API-Key"
BUDGET_HEADER = "X-Budget-Remaining"


@dataclass(frozen=True)
class Faults:
    """Test-only fault injection: a fraction ``rate`` of queries fails, half with 503, half answered
    after ``delay`` seconds (longer than the client's timeout, so it times out); seeded."""

    rate: float = 0.0
    delay: float = 0.0
    seed: int = 0


def reveal_api(box: BlackBox, output: str = "posterior", *, top_k: int = 3) -> BlackBox:
    """What the API reveals: the one place output reductions and defences are applied, server-side.

    Parameters
    ----------
    box : the student's posterior box (``serving.local.LocalBlackBox``)
    output : ``posterior``, ``topk`` or ``label`` (``serving.perturb.reveal``)
    top_k : k of ``topk``
    """
    from faceleaks.serving.perturb import reveal

    return reveal(box, output, top_k=top_k)


def load_api(folder: Path, *, output: str = "posterior", top_k: int = 3, cache_dir: Path | None = None) -> BlackBox:
    """The box a served student answers with: the student saved in ``folder``, as ``reveal_api`` reduces it.

    Weights are read by ``models.saving.load_student`` (``torch.load(weights_only=True)``, hashes
    checked), never unpickled. Raises ``ArtifactError`` for a missing or corrupt folder.
    """
    from faceleaks.models.saving import load_student
    from faceleaks.serving.local import LocalBlackBox

    return reveal_api(LocalBlackBox(load_student(Path(folder), cache_dir=cache_dir)), output, top_k=top_k)


class _RateLimiter:
    """Token bucket per key: ``rate`` requests per second, ``burst`` at once (0 rate: no limit)."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, who: str) -> None:
        if self.rate <= 0:
            return
        now = time.monotonic()
        tokens, last = self._buckets.get(who, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        if tokens < 1:
            raise KeyRefused(429, f"rate limit: at most {self.rate:g} requests per second per key; slow down")
        self._buckets[who] = (tokens - 1, now)


class _State:
    """What one app answers with and counts (owner-side; never sent)."""

    def __init__(self, box, keys, limits, faults, served) -> None:
        self.box, self.keys, self.limits, self.served = box, keys, limits, served
        self.faults, self.rng = faults or Faults(), random.Random((faults or Faults()).seed)
        self.lock, self.rates = threading.Lock(), _RateLimiter(limits.rate, limits.burst)

    def answer(self, images: np.ndarray):
        with self.lock:  # one model call at a time: students keep an embedding memo
            result = self.box.query(images)
            if self.served is not None:
                self.served.update(image_hashes(images))
        return result


def _authorise(state: _State, request: Request) -> str | None:
    """The key id of the request (None for an open API); ``KeyRefused`` 401/403/429 (rate)."""
    if state.keys is None:
        state.rates.take(request.client.host if request.client else "?")
        return None
    record = state.keys.check(request.headers.get(KEY_HEADER))
    request.state.remaining = record.remaining
    state.rates.take(record.key_id)
    return record.key_id


async def _read_body(request: Request, limits: Limits) -> bytes:
    """The body, refused (413) from ``Content-Length`` or as soon as the stream passes ``max_body``."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in NPY_TYPES:
        raise WireError(415, f"content type {kind or 'none'!r} is not accepted: send application/x-npy")
    declared = request.headers.get("content-length")
    if declared is not None and not declared.isdigit():
        raise WireError(400, f"Content-Length {declared[:20]!r} is not a byte count")
    if declared is not None and int(declared) > limits.max_body:
        raise WireError(413, f"body of {declared} bytes; this API takes at most {limits.max_body} bytes per request")
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limits.max_body:
            raise WireError(413, f"body over {limits.max_body} bytes; send smaller batches")
        chunks.append(chunk)
    return b"".join(chunks)


def _refusal(request: Request, status: int, message: str, remaining: int | None = None) -> JSONResponse:
    remaining = remaining if remaining is not None else getattr(request.state, "remaining", None)
    headers = {BUDGET_HEADER: str(remaining)} if remaining is not None else {}
    if status == 429 and "rate limit" in message:
        headers["Retry-After"] = "1"
    return JSONResponse({"detail": message}, status_code=status, headers=headers)


def _add_handlers(app: FastAPI) -> None:
    @app.exception_handler(KeyRefused)
    async def refused(request: Request, err: KeyRefused):
        return _refusal(request, err.status, str(err), err.remaining)

    @app.exception_handler(WireError)
    async def bad_body(request: Request, err: WireError):
        return _refusal(request, err.status, str(err))

    @app.exception_handler(Exception)
    async def bug(request: Request, err: Exception):
        log.error("internal error answering %s %s", request.method, request.url.path, exc_info=err)
        return JSONResponse({"detail": "internal server error"}, status_code=500)


async def _query(state: _State, request: Request) -> JSONResponse:
    key_id = _authorise(state, request)
    body = await _read_body(request, state.limits)
    images = decode_images(body, state.box.input_size, state.limits)
    u = state.rng.random()
    if u < state.faults.rate / 2:
        return JSONResponse({"detail": "injected fault (test setting)"}, status_code=503)
    if u < state.faults.rate:
        await asyncio.sleep(state.faults.delay)
    remaining = state.keys.charge(key_id, len(images)) if key_id is not None else None
    try:
        result = await run_in_threadpool(state.answer, images)
    except Exception as err:
        if key_id is not None:
            state.keys.charge(key_id, -len(images))  # refund what was not answered
        log.error("the model failed on a batch of %d images", len(images), exc_info=err)
        return JSONResponse({"detail": "the model failed on this batch"}, status_code=500)
    headers = {BUDGET_HEADER: str(remaining)} if remaining is not None else {}
    return JSONResponse({"kind": result.kind.value, "values": result.values.tolist()}, headers=headers)


def create_app(box: BlackBox, *, name: str = "student", keys: KeyStore | None = None, limits: Limits = Limits(),
               faults: Faults | None = None, served: Counter | None = None) -> FastAPI:
    """A FastAPI app answering queries with ``box`` (the owner's side).

    Parameters
    ----------
    box : the box to answer with, what the API reveals applied (``reveal_api``)
    name : the API's name in ``/info``
    keys : API keys and budgets; None: an open API (in-run use on 127.0.0.1 only)
    limits : body, batch and rate limits
    faults : test-only fault injection (``Faults``)
    served : if given, counts the SHA-256 of every image answered (the server's query log, for tests)
    """
    app = FastAPI(title=f"faceleaks student API: {name}", docs_url=None, redoc_url=None, openapi_url=None)
    state = _State(box, keys, limits, faults, served)
    _add_handlers(app)

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok"}

    @app.get("/info")
    def info(request: Request) -> JSONResponse:
        _authorise(state, request)
        remaining = getattr(request.state, "remaining", None)
        return JSONResponse({"name": name, "output_kind": box.output_kind.value, "input_size": box.input_size,
                             "max_batch": limits.max_batch},
                            headers={BUDGET_HEADER: str(remaining)} if remaining is not None else {})

    @app.post("/query")
    async def query(request: Request) -> JSONResponse:
        return await _query(state, request)

    return app


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def run_in_thread(app, *, port: int | None = None) -> Iterator[str]:
    """Run an ASGI ``app`` with uvicorn on 127.0.0.1 in a background thread; yields the base URL.

    The server stops when the block ends. Raises ``QueryError`` if it does not start within 20 s.
    """
    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
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


@contextmanager
def serve_in_thread(box: BlackBox, *, name: str = "student", port: int | None = None, **app_options) -> Iterator[str]:
    """Serve ``box`` (``create_app(box, name=name, **app_options)``) on 127.0.0.1 in a background thread.

    ``app_options``: ``keys``, ``limits``, ``faults``, ``served``. Yields the base URL; see ``run_in_thread``.
    """
    with run_in_thread(create_app(box, name=name, **app_options), port=port) as url:
        yield url
