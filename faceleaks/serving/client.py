"""``HttpBlackBox``: the attacker's view of a student API (httpx), with retries, batching and a ledger.

[reconstructed] ``query`` hashes each image (SHA-256 of its bytes), takes the answers the query
ledger (``serving.ledger``) already holds, and sends the distinct others in batches; each
batch's answers are written to the ledger before the next batch goes, so a killed audit
re-sends at most the batch in flight. A batch is retried, with backoff ``backoff * 2**i`` s, on
5xx answers, timeouts and connection errors (our own loop: httpx's transport retries cover
connection errors only) and waits out a rate limit (429 with ``Retry-After``). Every other
refusal becomes one line for the user: ``QueryBudgetExceeded`` for a spent budget, else
``QueryError`` naming the status and the server's reason.

The wire format is pluggable (``adapter``): our ``.npy`` protocol (``NpyAdapter``, default) or a
JSON API of another team (``serving.json_api.JsonApiAdapter``).
"""

from __future__ import annotations

import time

import httpx
import numpy as np

from faceleaks.errors import QueryBudgetExceeded, QueryError
from faceleaks.serving.ledger import Ledger, image_hashes
from faceleaks.serving.protocol import DeclaredBox, OutputKind, QueryResult, check_images
from faceleaks.serving.wire import encode_images

__all__ = ["HttpBlackBox", "NpyAdapter", "KEY_HEADER"]

KEY_HEADER = "X-API-Key"
_TRANSIENT = (httpx.TransportError,)  # connect/read/write timeouts, refused and dropped connections


class NpyAdapter:
    """faceleaks' own wire format (``serving.server``): ``.npy`` batches in, JSON values out."""

    key_header = KEY_HEADER
    max_batch: int | None = None

    def info(self, box: "HttpBlackBox") -> tuple[OutputKind, int]:
        """``(output_kind, input_size)`` from ``GET /info``."""
        info = box.send("GET", "/info").json()
        self.max_batch = info.get("max_batch")
        return OutputKind(info["output_kind"]), int(info["input_size"])

    def request(self, images: np.ndarray) -> tuple[str, str, dict]:
        """``(method, path, httpx keyword arguments)`` of one batch."""
        return "POST", "/query", {"content": encode_images(images), "headers": {"content-type": "application/x-npy"}}

    def values(self, response: httpx.Response, n: int) -> np.ndarray:
        """The (n, ...) answers of one batch from the server's JSON."""
        return np.asarray(response.json()["values"])


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail", "")
    except (ValueError, AttributeError):
        detail = response.text
    return " ".join(str(detail).split())[:300]


class HttpBlackBox(DeclaredBox):
    """A student API at ``url`` as a ``BlackBox``.

    Parameters
    ----------
    url : base URL, e.g. ``http://127.0.0.1:8000``
    key : the API key (sent in the adapter's key header), or None for an open API
    batch_size : images per request (capped at the server's ``max_batch``)
    retries : attempts per request on 5xx, timeouts and connection errors
    timeout : seconds per request (connect, read, write)
    backoff : seconds before the first retry; doubled at each further one
    ledger : the query ledger to read answers from and write them to, or None (no ledger)
    adapter : the wire format (``NpyAdapter()`` by default)

    Raises
    ------
    QueryError
        The API is unreachable after ``retries`` attempts or refuses the key (one line).
    """

    def __init__(self, url: str, *, key: str | None = None, batch_size: int = 64, retries: int = 5,
                 timeout: float = 120.0, backoff: float = 0.2, ledger: Ledger | None = None, adapter=None) -> None:
        self.url, self.key = url.rstrip("/"), key
        self.retries, self.backoff, self.ledger = max(int(retries), 1), backoff, ledger
        self.adapter = adapter if adapter is not None else NpyAdapter()
        self.n_sent = self.n_requests = self.n_from_ledger = self.n_retries = 0
        self.remaining: int | None = None
        self._client = httpx.Client(timeout=timeout)
        self._kind, self._input_size = self.adapter.info(self)
        cap = getattr(self.adapter, "max_batch", None)
        self.batch_size = min(int(batch_size), int(cap)) if cap else int(batch_size)

    def _refusal(self, response: httpx.Response, path: str) -> QueryError:
        status, detail = response.status_code, _detail(response)
        where = f"{self.url}{path}"
        if status == 401:
            return QueryError(f"{where} needs an API key (401): pass --key-file with the key the API's owner gave you")
        if status == 403:
            return QueryError(f"{where} refused the API key (403: {detail}); check --key-file or ask for a new key")
        if status == 429:
            return QueryBudgetExceeded(f"{where} refused the query (429: {detail}); ask the API's owner for a "
                                       f"larger budget (remaining: {response.headers.get('x-budget-remaining', '?')})")
        return QueryError(f"{where} refused the query ({status}: {detail})")

    def send(self, method: str, path: str, **kw) -> httpx.Response:
        """One request with retries; the answer (2xx) or ``QueryError`` / ``QueryBudgetExceeded``."""
        if self.key is not None:
            kw["headers"] = {**kw.get("headers", {}), self.adapter.key_header: getattr(self.adapter, "key_prefix", "") + self.key}
        last: object = None
        for attempt in range(self.retries):
            try:
                response = self._client.request(method, self.url + path, **kw)
            except _TRANSIENT as err:
                last = f"{type(err).__name__}: {err}"
            else:
                if "x-budget-remaining" in response.headers:
                    self.remaining = int(response.headers["x-budget-remaining"])
                if response.status_code < 400:
                    return response
                if response.status_code == 429 and "retry-after" in response.headers:
                    time.sleep(float(response.headers["retry-after"]))
                    last = "rate limited (429)"
                    continue
                if response.status_code < 500:
                    raise self._refusal(response, path)
                last = f"server error {response.status_code}: {_detail(response)}"
            self.n_retries += 1
            time.sleep(self.backoff * 2**attempt)
        raise QueryError(f"student API {self.url} failed after {self.retries} attempts ({last}); "
                         "check that it is running, or raise --retries")

    def _ask(self, images: np.ndarray) -> np.ndarray:
        """Answers of the API to ``images`` (one request)."""
        method, path, kw = self.adapter.request(images)
        try:
            values = np.asarray(self.adapter.values(self.send(method, path, **kw), len(images)))
        except (ValueError, KeyError, TypeError) as err:  # a malformed answer: JSON, missing field, ragged rows
            raise QueryError(f"the API at {self.url} sent a malformed answer ({type(err).__name__}: {err})") from err
        if len(values) != len(images):
            raise QueryError(f"the API at {self.url} answered {len(values)} rows for {len(images)} images")
        if self._kind is OutputKind.LABEL and not (np.issubdtype(values.dtype, np.number)
                                                   and np.all(np.mod(values, 1) == 0)):
            raise QueryError(f"the API at {self.url} answered labels that are not whole numbers: {values[:5]!r}")
        self.n_sent += len(images)
        self.n_requests += 1
        return values.astype(np.int64 if self._kind is OutputKind.LABEL else np.float32)

    def query(self, images: np.ndarray) -> QueryResult:
        """Answers for uint8 (n_queries, S, S, 3) crops: from the ledger where held, else from the API.

        Raises
        ------
        QueryError
            Malformed images, an unreachable API, or a refusal (one line, naming how far it got).
        """
        images = check_images(images, self._input_size)
        hashes = image_hashes(images)
        known = self.ledger.get(hashes) if self.ledger is not None else {}
        self.n_from_ledger += sum(h in known for h in hashes)
        first = {h: i for i, h in reversed(list(enumerate(hashes)))}
        todo = [h for h in dict.fromkeys(hashes) if h not in known]
        for start in range(0, len(todo), self.batch_size):
            part = todo[start : start + self.batch_size]
            try:
                values = self._ask(images[[first[h] for h in part]])
            except QueryError as err:
                raise type(err)(f"{err} (after {start} of the {len(todo)} new images of this call were "
                                "answered and kept)") from err
            if self.ledger is not None:
                self.ledger.put(part, self._kind.value, values)
            known.update(zip(part, values))
        if not hashes:
            label = self._kind is OutputKind.LABEL
            return QueryResult(self._kind, np.zeros((0,) if label else (0, 0), np.int64 if label else np.float32))
        return QueryResult(self._kind, np.stack([known[h] for h in hashes]))

    def close(self) -> None:
        """Close the HTTP connections (and not the ledger, which the caller owns)."""
        self._client.close()
