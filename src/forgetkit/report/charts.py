"""Matplotlib without a display, and charts written atomically."""

from __future__ import annotations

from pathlib import Path


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, path: Path) -> Path:
    """Save ``fig`` as a PNG at ``path`` through a temporary file, then close it."""
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=120)
    pyplot().close(fig)
    tmp.replace(path)
    return path


__all__ = ["pyplot", "save"]
