"""The performance check for a GPU machine, in about five minutes: bf16 full, LoRA, sparse,
SEAT and LfU-LoRA steps of a ~1B random-init Llama with gradient checkpointing (the RESULT
line of ``bench_scale.py``, GPU memory and wall time), then an exact dg-hard repair of a
synthetic 8B-shaped layer stack with batched SVDs on the GPU, with its throughput.

    python bench/gpu_perf.py [--size 1b] [--layers 4] [--steps 4] [--output DIR]

On a machine without a GPU it runs the same on the CPU (slowly: use ``--size 0.5b --layers 1``
to check the plumbing).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", default="1b")
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--output", default="results/gpu_perf")
    args = parser.parse_args()
    out = Path(args.output)
    subprocess.run([sys.executable, str(HERE / "bench_scale.py"), "--sizes", args.size,
                    "--gc", "on", "--precision", "bf16", "--steps", str(args.steps),
                    "--methods", "full,lora,sparse,seat,lfu-lora", "--output", str(out)],
                   check=True)

    sys.path.insert(0, str(HERE))
    import torch
    from repair_floors import synthetic_pair

    from forgetkit.repair import repair
    from forgetkit.repair.io import CheckpointReader

    base, ft = synthetic_pair(args.layers, out / "synthetic")
    n = sum(info.numel for info in CheckpointReader(base).tensors.values())
    device = "cuda" if torch.cuda.is_available() else "cpu"
    started = time.perf_counter()
    summary = repair(base, ft, out / "repaired", overwrite=True, device=device)
    seconds = time.perf_counter() - started
    ranks = [t["kept_rank"] for t in summary["tensors"] if t["action"] == "repaired"]
    print(f"\ndg-hard (exact SVD) on {args.layers} 8B-shaped layers ({n / 1e9:.2f}B parameters, "
          f"bf16), {device}: {seconds:.1f} s, {n / seconds / 1e6:.1f} Mparam/s; kept ranks "
          f"{min(ranks)}-{max(ranks)} (the synthetic change is rank 16)")


if __name__ == "__main__":
    main()
