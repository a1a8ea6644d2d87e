"""An adapter for another team's JSON API: base64 JPEG in, probabilities or a label out.

[reconstructed] Field names and the path come from a small TOML or JSON file, e.g.::

    path = "/v1/predict"          # POST path under --url
    images_field = "images"       # request: {"images": ["<base64 JPEG>", ...]}
    output_field = "predictions"  # response: {"predictions": [[p0, p1, ...], ...]}  (dotted path allowed)
    output = "posterior"          # or "label" (a class index per image)
    input_size = 150              # side of the crops the API expects, pixels
    key_header = "Authorization"  # header carrying the key (default X-API-Key)
    key_prefix = "Bearer "        # prepended to the key
    jpeg_quality = 95
    max_batch = 32                # images per request (1: one image per request, field holds a string)

Use it with ``HttpBlackBox(url, key=..., adapter=JsonApiAdapter.from_file(path))``. The JPEG
encoding is lossy, so answers belong to the decoded images, not the exact crops.
"""

from __future__ import annotations

import base64
import io
import json
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from faceleaks.errors import ConfigError, QueryError
from faceleaks.serving.protocol import OutputKind

__all__ = ["JsonApiAdapter", "jpeg_base64"]


def jpeg_base64(image: np.ndarray, quality: int = 95) -> str:
    """Base64 text of one uint8 (S, S, 3) RGB crop encoded as JPEG at ``quality``."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format="JPEG", quality=int(quality))
    return base64.b64encode(buf.getvalue()).decode("ascii")


@dataclass
class JsonApiAdapter:
    """Field names of a JSON face API (see the module docstring); ``from_file`` reads them."""

    path: str = "/predict"
    images_field: str = "images"
    output_field: str = "predictions"
    output: str = "posterior"
    input_size: int = 150
    key_header: str = "X-API-Key"
    key_prefix: str = ""
    jpeg_quality: int = 95
    max_batch: int = 32

    def __post_init__(self) -> None:
        if self.output not in ("posterior", "label"):
            raise ConfigError(f"output = {self.output!r} in the JSON API config; choose posterior or label")
        if self.max_batch < 1 or self.input_size < 1:
            raise ConfigError("max_batch and input_size in the JSON API config must be >= 1")

    @classmethod
    def from_file(cls, path: str | Path) -> "JsonApiAdapter":
        """The adapter configured by a ``.toml`` or ``.json`` file; ``ConfigError`` naming an unknown key."""
        path = Path(path)
        try:
            text = path.read_text()
            data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
        except (OSError, ValueError) as err:
            raise ConfigError(f"JSON API config {path} cannot be read ({err}); give a TOML or JSON file") from err
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown key {unknown[0]!r} in {path}; allowed: {', '.join(sorted(known))}")
        return cls(**data)

    def info(self, box) -> tuple[OutputKind, int]:
        """``(output_kind, input_size)`` as configured (no request is made)."""
        return OutputKind(self.output), int(self.input_size)

    def request(self, images: np.ndarray) -> tuple[str, str, dict]:
        """``(method, path, httpx keyword arguments)`` of one batch of crops."""
        encoded = [jpeg_base64(im, self.jpeg_quality) for im in images]
        return "POST", self.path, {"json": {self.images_field: encoded if self.max_batch > 1 else encoded[0]}}

    def values(self, response: httpx.Response, n: int) -> np.ndarray:
        """(n, n_classes) posteriors or (n,) labels read from ``output_field``; ``QueryError`` if absent."""
        try:
            data = response.json()
            for part in self.output_field.split("."):
                data = data[part]
            values = np.asarray(data if self.max_batch > 1 else [data], dtype=np.float64)
        except (ValueError, KeyError, TypeError) as err:
            raise QueryError(f"the API's answer has no usable {self.output_field!r} field ({type(err).__name__}: "
                             f"{err}); fix output_field in the JSON API config") from err
        if len(values) != n:
            raise QueryError(f"the API answered {len(values)} results for {n} images")
        return values
