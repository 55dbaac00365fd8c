"""Compare two results files of the same study and list every figure that differs.

    python bench/compare_results.py OLD_DIR NEW_DIR [results.json evaluations.json ...]

Keys that hold timings, output folders or the study's name are skipped: two runs of the
same code on the same seed should show no other difference. Prints the number of
differences per file and the first 40 of them; exits 1 if any figure differs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

SKIPPED = ("time", "timing", "second", "study", "folder")


def differences(a: Any, b: Any, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b)):
            if any(word in key.lower() for word in SKIPPED):
                continue
            if key not in a or key not in b:
                out.append(f"{path}/{key}: only in {'old' if key in a else 'new'}")
            else:
                out += differences(a[key], b[key], f"{path}/{key}")
        return out
    if isinstance(a, list) and isinstance(b, list):
        out = [f"{path}: {len(a)} items vs {len(b)}"] if len(a) != len(b) else []
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            out += differences(x, y, f"{path}[{i}]")
        return out
    return [] if a == b else [f"{path}: {a!r} vs {b!r}"]


def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    old, new = Path(sys.argv[1]), Path(sys.argv[2])
    names = sys.argv[3:] or ["results.json", "evaluations.json"]
    found = 0
    for name in names:
        diffs = differences(json.loads((old / name).read_text()),
                            json.loads((new / name).read_text()))
        found += len(diffs)
        print(f"{name}: {len(diffs)} differences")
        for line in diffs[:40]:
            print("  ", line)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
