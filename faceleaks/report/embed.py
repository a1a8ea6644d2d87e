"""Matplotlib figures as ``data:`` URIs, so ``report.html`` needs no other file and no network."""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from faceleaks.report.sections import FigureBlock  # noqa: E402

__all__ = ["png_uri", "figure_block"]


def png_uri(fig: Figure, *, dpi: int = 80) -> str:
    """``fig`` as a ``data:image/png;base64,...`` URI; the figure is closed afterwards."""
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    finally:
        plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def figure_block(fig: Figure, alt: str, caption: str = "", *, dpi: int = 80, collapsed: bool = False) -> FigureBlock:
    """A :class:`FigureBlock` of ``fig`` (closed afterwards)."""
    return FigureBlock(uri=png_uri(fig, dpi=dpi), alt=alt, caption=caption, collapsed=collapsed)
