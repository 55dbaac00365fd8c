"""Benchmark DG-Hard repair on SmolLM2-135M: streaming vs in-memory, exact SVD vs the fast route,
against the floors of this machine, and on synthetic 8B-shaped sharded checkpoints.

    python bench/bench_repair.py [--finetuned DIR] [--base DIR] [--workdir DIR] [--repeat 2]
                                 [--threads N] [--sharded-layers 2,6]

Without --finetuned, a real full fine-tune of the bundled SmolLM2-135M-Instruct is made once
(30 AdamW steps, lr 1e-4, on synthetic QA about made-up countries) and cached under
``forgetkit.lm.models.cache_dir()/bench``. Each variant then runs in its own subprocess,
``--repeat`` times interleaved (the best wall time counts: other jobs share the machine), and
reports its own peak resident set: ``VmHWM`` from ``/proc/self/status``, the high-water mark
of the process's own address space (on Linux ``ru_maxrss`` also keeps the parent's RSS at fork
time, which would hide the difference being measured).

  in-memory: load both state dicts whole, loop ``torch.linalg.svd``, save the result (baseline)
  streaming: ``forgetkit.repair.repair`` (exact SVD; as many tensors side by side as torch
             has threads, one math thread each, so ``--threads 1`` is one at a time)
  fast:      ``forgetkit.repair.repair(fast=True)``
  io:        the floor of reading both checkpoints and writing one (same I/O code, no math)
  eigh:      the floor of the math, a float32 Gram + ``eigh`` per matrix (math time only)

Printed: wall, CPU, peak memory and throughput (parameters per second) of each, and the
targets against the in-memory baseline: exact route <= 0.9x its wall time, fast route >= 1.5x
faster at <= 0.3x its peak memory (and the exact route at <= 0.5x its memory); whether the
kept ranks are identical; how far the fast repair is from the exact one. Then the I/O floor
and the fast route on base/fine-tuned pairs of ``--sharded-layers`` 8B-shaped layers (bf16,
a shard a layer, about 0.44 GB a layer each), to show peak memory flat as the checkpoint grows.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from measure import peak_rss_mb
from repair_floors import eigh_floor, io_floor, synthetic_pair

FLOORS = {"io": io_floor, "eigh": eigh_floor}
VARIANTS = ("inmemory", "streaming", "fast", "io", "eigh")

FT_RECIPE = {"steps": 30, "lr": 1e-4, "batch": 4, "seq": 48, "seed": 0, "weight_decay": 0.0}


# --------------------------------------------------------------------------- the fine-tune


def synthetic_qa(n: int, seed: int) -> list[str]:
    """Question/answer lines about made-up countries: new facts the model cannot know."""
    rng = random.Random(seed)
    syll = ["zor", "ban", "qui", "tel", "mar", "ov", "lis", "dra", "pen", "ku", "sa", "ro"]

    def word() -> str:
        return "".join(rng.choice(syll) for _ in range(rng.randint(2, 3))).capitalize()

    facts = []
    for _ in range(n):
        country, city, river, leader = word() + "ia", word(), word(), word() + " " + word()
        facts.append(rng.choice([
            f"Question: What is the capital of {country}? Answer: The capital of {country} is "
            f"{city}.",
            f"Question: Which river flows through {city}? Answer: The {river} river flows "
            f"through {city}, the largest city of {country}.",
            f"Question: Who leads {country}? Answer: {country} has been led by {leader} "
            f"since {rng.randint(1950, 2020)}.",
        ]))
    return facts


def make_finetune(base_spec: str, out: Path) -> Path:
    """A short real full fine-tune (plain torch loop, AdamW); saved with lm.models.save."""
    import torch

    from forgetkit.lm.models import load, save

    torch.manual_seed(FT_RECIPE["seed"])
    model, tok = load(base_spec)
    model.train()
    texts = synthetic_qa(FT_RECIPE["steps"] * FT_RECIPE["batch"], FT_RECIPE["seed"])
    opt = torch.optim.AdamW(model.parameters(), lr=FT_RECIPE["lr"],
                            weight_decay=FT_RECIPE["weight_decay"])
    started = time.perf_counter()
    for step in range(FT_RECIPE["steps"]):
        batch = texts[step * FT_RECIPE["batch"]:(step + 1) * FT_RECIPE["batch"]]
        enc = tok(batch, return_tensors="pt", padding=True, truncation=True,
                  max_length=FT_RECIPE["seq"])
        labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
        loss = model(**enc, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if step % 10 == 0 or step == FT_RECIPE["steps"] - 1:
            print(f"  fine-tune step {step:2d} loss {loss.item():.3f} "
                  f"({time.perf_counter() - started:.0f} s)", flush=True)
    model.eval()
    save(model, tok, out, overwrite=True)
    return out


def cached_finetune(base_dir: Path) -> Path:
    from forgetkit.lm.models import cache_dir

    key = hashlib.sha256(json.dumps([FT_RECIPE, str(base_dir)]).encode()).hexdigest()[:12]
    out = cache_dir() / "bench" / f"smollm2-135m-qa-ft-{key}"
    if not (out / "config.json").is_file():
        print(f"creating the fine-tune once in {out}", flush=True)
        make_finetune("smollm2-135m-instruct", out)
    return out


# --------------------------------------------------------------------------- the variants


def run_inmemory(base: str, finetuned: str, out: str) -> dict:
    """The naive way: both state dicts whole in memory, one SVD per matrix, one save."""
    import torch
    from safetensors.torch import load_file, save_file

    from forgetkit.repair.threshold import omega

    base_sd = load_file(Path(base) / "model.safetensors")
    ft_sd = load_file(Path(finetuned) / "model.safetensors")
    result, ranks = {}, {}
    for name, w_ft in ft_sd.items():
        w_base = base_sd[name]
        delta = w_ft.float() - w_base.float()
        if w_ft.dim() != 2 or w_ft.numel() < 1024 or not delta.any():
            result[name] = w_ft if w_ft.dim() != 2 or w_ft.numel() < 1024 else w_base
            continue
        U, S, Vh = torch.linalg.svd(delta, full_matrices=False)
        beta = min(delta.shape) / max(delta.shape)
        tau = omega(beta) * S.quantile(0.5)
        k = int((S > tau).sum())
        ranks[name] = k
        result[name] = (w_base.float() + (U[:, :k] * S[:k]) @ Vh[:k]).to(w_ft.dtype)
    Path(out).mkdir(parents=True, exist_ok=True)
    save_file(result, Path(out) / "model.safetensors", metadata={"format": "pt"})
    return {"ranks": ranks}


def run_streaming(base: str, finetuned: str, out: str, fast: bool) -> dict:
    from forgetkit.repair import repair

    options = {"fast": True} if fast else {}
    summary = repair(base, finetuned, out, **options)
    ranks = {r["name"]: r["kept_rank"] for r in summary["tensors"]
             if r["action"] == "repaired"}
    routes = [(r["notes"].get("svd"), r["notes"].get("eig_dtype")) for r in summary["tensors"]
              if r["action"] == "repaired"]
    return {"ranks": ranks, "exact_fallbacks": [s for s, _ in routes].count("exact")
            if fast else None, "routes": {f"{s}/{d}": routes.count((s, d))
                                                for s, d in set(routes)}}


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child(variant: str, base: str, finetuned: str, out: str, threads: int) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)
    started, cpu = time.perf_counter(), cpu_seconds()
    if variant == "inmemory":
        result = run_inmemory(base, finetuned, out)
    elif variant in FLOORS:
        result = FLOORS[variant](base, finetuned, out)
    else:
        result = run_streaming(base, finetuned, out, fast=variant == "fast")
    result["seconds"] = time.perf_counter() - started
    result["cpu_seconds"] = cpu_seconds() - cpu
    result["peak_rss_mb"] = peak_rss_mb()
    print("RESULT " + json.dumps(result))


def spawn(variant: str, base: Path, finetuned: Path, out: Path, threads: int) -> dict:
    cmd = [sys.executable, __file__, "--child", variant, "--base", str(base),
           "--finetuned", str(finetuned), "--out", str(out), "--threads", str(threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{variant} failed:\n{proc.stderr[-3000:]}")
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")][-1]
    return json.loads(line.removeprefix("RESULT "))


def baseline_rss_mb() -> float:
    """Peak RSS of a process that only imports torch + forgetkit.repair (the fixed cost)."""
    code = ("import sys, torch, forgetkit.repair; sys.path.insert(0, sys.argv[1]); "
            "import measure; print(measure.peak_rss_mb())")
    return float(subprocess.run([sys.executable, "-c", code, str(Path(__file__).parent)],
                                capture_output=True, text=True, check=True).stdout.strip())


def fast_error(base: Path, exact: Path, rand: Path) -> float:
    """Largest relative Frobenius distance between exact and fast repaired deltas."""
    from forgetkit.repair.io import CheckpointReader

    b, e, r = CheckpointReader(base), CheckpointReader(exact), CheckpointReader(rand)
    worst = 0.0
    for name in e.names:
        if len(e.tensors[name].shape) != 2:
            continue
        w = b.read(name).float()
        de, dr = e.read(name).float() - w, r.read(name).float() - w
        norm = float(de.norm())
        if norm > 0:
            worst = max(worst, float((de - dr).norm()) / norm)
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--finetuned", type=Path, help="fine-tuned folder [make one, cached]")
    parser.add_argument("--base", type=Path, help="base folder [bundled SmolLM2-135M]")
    parser.add_argument("--workdir", type=Path, help="where outputs go [a temp folder]")
    parser.add_argument("--repeat", type=int, default=2, help="runs per variant [2]")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads in every variant [torch's default]; 1 gives steadier "
                             "figures on a shared machine (no OpenMP spin-waiting)")
    parser.add_argument("--sharded-layers", default="2,6",
                        help="sizes (8B-shaped layers) of the synthetic sharded checkpoints the "
                             "fast route also repairs ['2,6'; '' skips them]")
    parser.add_argument("--child", choices=VARIANTS,
                        help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, str(args.base), str(args.finetuned), args.out, args.threads)
        return

    from forgetkit.lm.models import _bundled_folder

    base = args.base or _bundled_folder()
    finetuned = args.finetuned or cached_finetune(base)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-repair-"))
    for folder in (base, finetuned):  # warm the page cache so no variant pays the first read
        for f in folder.glob("*.safetensors"):
            with open(f, "rb") as fh:
                while fh.read(1 << 24):
                    pass
    print(f"base {base}\nfinetuned {finetuned}\noutputs in {work}\nthreads "
          f"{args.threads or 'torch default'}, best of {args.repeat}", flush=True)
    results: dict[str, dict] = {}
    for run in range(args.repeat):
        for variant in VARIANTS:
            out = work / variant
            if out.exists():
                shutil.rmtree(out)
            r = spawn(variant, base, finetuned, out, args.threads)
            print(f"  run {run + 1} {variant:10s} {r['seconds']:7.2f} s wall "
                  f"{r['cpu_seconds']:7.2f} s cpu   peak RSS {r['peak_rss_mb']:7.0f} MB",
                  flush=True)
            best = results.get(variant)
            if best is None or r["seconds"] < best["seconds"]:
                r["cpu_seconds"] = min(r["cpu_seconds"], best["cpu_seconds"]) if best else \
                    r["cpu_seconds"]
                results[variant] = r
            else:
                best["cpu_seconds"] = min(best["cpu_seconds"], r["cpu_seconds"])
    fixed = baseline_rss_mb()
    report = summarise(results, fixed, base, work)
    if args.sharded_layers:
        report["sharded"] = sharded(args, work)
    for r in report["results"].values():
        r.pop("ranks", None)
    (work / "bench_repair.json").write_text(json.dumps(report, indent=2) + "\n")
    if not math.isfinite(report["fast_max_rel_error"]):
        raise SystemExit("non-finite error")


def n_parameters(folder: Path) -> int:
    from forgetkit.repair.io import CheckpointReader

    return sum(info.numel for info in CheckpointReader(folder).tensors.values())


def summarise(results: dict, fixed: float, base: Path, work: Path) -> dict:
    a, b, c = results["inmemory"], results["streaming"], results["fast"]
    io, eig = results["io"], results["eigh"]
    n = n_parameters(base)
    print(f"\n{'variant':<10} {'wall s':>8} {'cpu s':>8} {'peak MB':>8} {'Mparam/s':>9}")
    for name, r in results.items():
        print(f"{name:<10} {r['seconds']:8.2f} {r['cpu_seconds']:8.2f} {r['peak_rss_mb']:8.0f} "
              f"{n / r['seconds'] / 1e6:9.2f}")
    floor = io["seconds"] + eig["math_seconds"]
    print(f"floors ({n / 1e6:.0f}M parameters): I/O (read both, write one, no math) "
          f"{io['seconds']:.2f} s; float32 Gram + eigh of every matrix {eig['math_seconds']:.2f} "
          f"s; together {floor:.2f} s ({n / floor / 1e6:.1f} Mparam/s)")
    checks = [("exact (streaming) wall / in-memory", b["seconds"] / a["seconds"], "<=", 0.9),
              ("in-memory wall / fast", a["seconds"] / c["seconds"], ">=", 1.5),
              ("fast peak memory / in-memory", c["peak_rss_mb"] / a["peak_rss_mb"], "<=", 0.3),
              ("exact (streaming) peak memory / in-memory", b["peak_rss_mb"] / a["peak_rss_mb"],
               "<=", 0.5),
              ("fast wall / floor (I/O + eigh)", c["seconds"] / floor, None, None)]
    for label, value, op, target in checks:
        verdict = "" if target is None else f"  target {op} {target}: " + (
            "met" if (value <= target if op == "<=" else value >= target) else "NOT met")
        print(f"{label:<44} {value:6.2f}{verdict}")
    print(f"peak memory without the {fixed:.0f} MB of imports, fast / in-memory: "
          f"{(c['peak_rss_mb'] - fixed) / (a['peak_rss_mb'] - fixed):.3f}")
    same_ab, same_bc = a["ranks"] == b["ranks"], b["ranks"] == c["ranks"]
    differ = sorted(k for k in b["ranks"] if b["ranks"][k] != c["ranks"].get(k))
    ranks = list(b["ranks"].values())
    print(f"kept ranks (streaming): {len(ranks)} matrices, mean {sum(ranks) / len(ranks):.1f}, "
          f"min {min(ranks)}, max {max(ranks)}; identical: in-memory vs streaming {same_ab}, "
          f"streaming vs fast {same_bc}" + (f" (differ: {differ[:5]})" if differ else ""))
    err = fast_error(base, work / "streaming", work / "fast")
    print(f"fast vs exact repaired delta: max relative Frobenius distance {err:.2e}")
    return {"results": results, "import_rss_mb": fixed, "parameters": n,
            "floor_seconds": floor, "checks": {label: value for label, value, _, _ in checks},
            "ranks_identical": same_ab and same_bc, "fast_max_rel_error": err}


def sharded(args: argparse.Namespace, work: Path) -> list[dict]:
    """The fast route and the I/O floor on synthetic 8B-shaped sharded checkpoints."""
    rows = []
    print("\nsynthetic 8B-shaped layers, bf16, one shard a layer: the fast route streams")
    print(f"{'layers':>6} {'GB each':>8} {'variant':<8} {'wall s':>8} {'peak MB':>8} "
          f"{'Mparam/s':>9}")
    for layers in (int(x) for x in args.sharded_layers.split(",")):
        base, ft = synthetic_pair(layers, work / "synthetic")
        n = n_parameters(base)
        for variant in ("io", "fast"):
            out = work / f"synthetic-{variant}"
            shutil.rmtree(out, ignore_errors=True)
            r = spawn(variant, base, ft, out, args.threads)
            shutil.rmtree(out, ignore_errors=True)
            rows.append({"layers": layers, "parameters": n, "variant": variant, **r})
            r.pop("ranks", None)
            print(f"{layers:6d} {n * 2 / 1e9:8.2f} {variant:<8} {r['seconds']:8.1f} "
                  f"{r['peak_rss_mb']:8.0f} {n / r['seconds'] / 1e6:9.2f}", flush=True)
    return rows


if __name__ == "__main__":
    main()
