"""Measure the round-off of the fast repair route's spectra on real fine-tuning deltas.

    python bench/calibrate_gram_error.py BASE FINETUNED [BASE FINETUNED ...]

The fast route (``--fast``) decides each kept rank on singular values taken from the
Gram matrix ``G = D^T D`` of the delta instead of an SVD. ``SpectralMethod._unresolved`` needs
bounds on how far those values can be from the exact ones. For every 2-D delta with >= 1024
entries this prints the worst error, in units of ``sqrt(N) * eps32 * s_max^2`` on the
eigenvalues of G (N = the long side), of:

  gram32+eigh32     float32 Gram matrix, float32 ``torch.linalg.eigh`` (the first pass)
  gram32+eigvalsh64 float32 Gram matrix, float64 eigenvalues (the second pass: only the
                    Gram matrix's own rounding is left)

and, in units of ``sqrt(n) * eps32 * s_max`` on the singular values (n = the short side), of
the float32 exact SVD itself, which the fast route has to agree with. The reference is a
float64 SVD of the float32 delta.
"""

from __future__ import annotations

import math
import sys

import torch

from forgetkit.repair.apply import open_pair, resolve_folder
from forgetkit.repair.methods.spectral import MIN_ELEMENTS, gram_matrix

EPS = torch.finfo(torch.float32).eps


def errors(delta: torch.Tensor) -> dict[str, float]:
    short = delta if delta.shape[0] >= delta.shape[1] else delta.T
    n_small, n_large = min(delta.shape), max(delta.shape)
    ref = torch.linalg.svdvals(delta.double())
    ref_eig = ref.square().flip(-1)  # ascending, like eigh
    s_max = float(ref[0])
    gram = gram_matrix(short, torch.float32)
    unit_eig = math.sqrt(n_large) * EPS * s_max**2
    out = {
        "gram32+eigh32": float((torch.linalg.eigh(gram).eigenvalues.double() - ref_eig)
                               .abs().max()) / unit_eig,
        "gram32+eigvalsh64": float((torch.linalg.eigvalsh(gram.double()) - ref_eig)
                                   .abs().max()) / unit_eig,
    }
    svd32 = torch.linalg.svd(delta, full_matrices=False).S.double()  # the exact route's call
    out["svd32"] = float((svd32 - ref).abs().max()) / (math.sqrt(n_small) * EPS * s_max)
    return out


def main() -> None:
    args = sys.argv[1:]
    if not args or len(args) % 2:
        raise SystemExit(__doc__)
    worst: dict[str, float] = {}
    count = 0
    for base, finetuned in zip(args[::2], args[1::2], strict=True):
        pair = open_pair(resolve_folder(base, "base"), resolve_folder(finetuned, "finetuned"))
        for name in pair.names:
            info = pair.info(name)
            if len(info.shape) != 2 or info.numel < MIN_ELEMENTS:
                continue
            delta = pair.delta(name, torch.device("cpu"))
            if delta is None or not bool(delta.any()):
                continue
            count += 1
            for key, value in errors(delta).items():
                worst[key] = max(worst.get(key, 0.0), value)
    print(f"{count} deltas")
    print(f"worst eigenvalue error / (sqrt(N) eps s_max^2): gram32+eigh32 "
          f"{worst['gram32+eigh32']:.4f}, gram32+eigvalsh64 {worst['gram32+eigvalsh64']:.4f}")
    print(f"worst float32 SVD error / (sqrt(n) eps s_max): {worst['svd32']:.4f}")


if __name__ == "__main__":
    main()
