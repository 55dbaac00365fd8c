"""Memory and step time of every training family against the floor its parameter count sets,
at two model sizes, with gradient checkpointing on and off, in fp32 and bf16 autocast.

    python bench/bench_scale.py [--quick] [--sizes 135m,0.5b] [--gc on,off]
                                [--precision fp32,bf16] [--methods full,lora,...]
                                [--steps 4] [--batch-size 8] [--output DIR]

Sizes: ``135m`` is the embedded SmolLM2-135M-Instruct; ``0.5b`` and ``1b`` are Llama-
architecture models with SmolLM2's vocabulary, randomly initialised from a config (no
download) and saved once as a real checkpoint the runs load. Each (size, method, gradient
checkpointing, precision) trains ``--steps`` steps of batch 8 x ~64 tokens in its own
subprocess through ``forgetkit.train.run`` and stops before saving. Measured per run:

* step time, wall and CPU (all threads), median over steps after the first;
* peak resident memory (the child's own VmHWM under a fixed mmap threshold: why in
  ``bench/measure.py``), and the resident memory before the model loads (the runtime);
  on a GPU, the peak of allocated GPU memory instead (and no runtime);
* what the tensors hold, measured on the live model and optimizer: weights (parameters and
  buffers, once per storage), the sparse index, gradients (at the optimizer step) and
  optimizer state; "rest" is the peak minus the runtime and those parts (activations,
  logits, transients);
* the floor: weights and buffers as held, plus a gradient and two AdamW moments for every
  trainable element (about 16 bytes a parameter for full fine-tuning in fp32).

Printed: a table per size, bytes per parameter (peak minus runtime) at each size and the
straight line through them, the ratios against full fine-tuning (LfU against LoRA) with the
targets of the performance issue, and one machine-readable line, measured at the largest
size with gradient checkpointing on and the first precision given:

    RESULT seat_full_mem_gc=.. sparse_full_mem_gc=.. seat_full_step=.. lfu_lora_mem_gc=..
           lfu_lora_step=.. floor_sparse_full=..

Step ratios use CPU time on a CPU (steadier than wall time on a shared machine; wall is
printed) and wall time on a GPU.
``--quick``: 135m only, checkpointing on, fp32, 3 steps (a few minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from measure import child_env, peak_rss_mb

RUNS = {
    "full": {"method": "full"},
    "lora": {"method": "lora"},
    "sparse": {"method": "sparse"},
    "seat": {"method": "seat", "kl_reference": "cached"},
    "lfu-lora": {"method": "lfu-lora"},
    "lfu-reps": {"method": "lfu-reps"},
}
# Llama shapes around SmolLM2's (vocabulary 49152, tied embeddings); parameters in brackets.
SHAPES = {
    "0.5b": dict(hidden_size=1152, intermediate_size=3072, num_hidden_layers=32,
                 num_attention_heads=16, num_key_value_heads=4),  # [~0.50B]
    "1b": dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=22,
               num_attention_heads=32, num_key_value_heads=4),  # [~1.07B]
}
# Sizes that are models forgetkit already knows ("tiny": a seconds-long check of the plumbing).
NAMED = {"135m": "smollm2-135m-instruct", "tiny": "tiny-random-llama"}
TARGETS = {"seat_full_mem_gc": 0.6, "sparse_full_mem_gc": 0.6, "seat_full_step": 2.1,
           "lfu_lora_mem_gc": 1.15, "lfu_lora_step": 2.1}
PARTS = ("weights", "index", "grads", "optimizer", "rest")


class Measured(Exception):
    """Raised at the end of training: the run is measured, its output is not needed."""


def current_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def random_checkpoint(size: str, folder: Path) -> Path:
    """A randomly initialised Llama of shape ``size`` with SmolLM2's tokenizer, saved in bf16."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from forgetkit.lm import models
    from forgetkit.lm.loading import BUNDLED

    out = folder / f"random-llama-{size}"
    if (out / "config.json").is_file():
        return out
    tok = models.load_tokenizer(BUNDLED)
    config = LlamaConfig(vocab_size=len(tok), tie_word_embeddings=True, rope_theta=100000.0,
                         max_position_embeddings=2048, rms_norm_eps=1e-5,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id, **SHAPES[size])
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).to(torch.bfloat16)
    models.save(model, tok, out)
    return out


def _unique_bytes(tensors) -> int:
    seen, total = set(), 0
    for t in tensors:
        key = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape))
        if key not in seen:
            seen.add(key)
            total += t.numel() * t.element_size()
    return total


def child(spec: str, name: str, gc: bool, bf16: bool, steps: int, batch_size: int,
          out: str) -> None:
    """Train ``steps`` steps of one configuration; write what it measured as JSON."""
    import torch
    from transformers import TrainerCallback

    from forgetkit.data.records import write_qa
    from forgetkit.data.synth import synth
    from forgetkit.train.config import TrainConfig
    from forgetkit.train.run import train

    tmp = Path(tempfile.mkdtemp())
    data = write_qa(synth("contracts", 2, seed=0)[:batch_size * 2], tmp / "d.jsonl")
    gpu = torch.cuda.is_available()  # then memory is the GPU's and step time its wall time
    stats: dict = {"wall": [], "cpu": [], "device": "cuda" if gpu else "cpu",
                   "runtime_mb": 0.0 if gpu else current_rss_mb()}

    def sync() -> None:
        if gpu:
            torch.cuda.synchronize()

    class Meter(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            sync()
            self.t, self.c = time.perf_counter(), time.process_time()

        def on_pre_optimizer_step(self, args, state, control, model=None, **kw):
            grads = [p.grad for p in model.parameters() if p.grad is not None]
            stats["grads"] = _unique_bytes(grads)

        def on_step_end(self, args, state, control, model=None, optimizer=None, **kw):
            sync()
            stats["wall"].append(time.perf_counter() - self.t)
            stats["cpu"].append(time.process_time() - self.c)
            stats["optimizer"] = _unique_bytes(
                v for s in optimizer.state.values() for v in s.values()
                if torch.is_tensor(v) and v.dim() > 0)
            params = list(model.parameters())
            buffers = dict(model.named_buffers())
            index = [b for n, b in buffers.items() if n.endswith(".index")]
            stats["index"] = _unique_bytes(index)
            stats["weights"] = _unique_bytes(
                params + [b for n, b in buffers.items() if not n.endswith(".index")])
            trainable = [p for p in params if p.requires_grad]
            stats["trainable"] = sum(p.numel() for p in {id(p): p for p in trainable}.values())
            stats["parameters"] = sum(p.numel() for n, p in model.named_parameters()
                                      if "lora_" not in n and "aux" not in n)
            stats["floor"] = (stats["weights"] + stats["index"]
                              + sum(p.numel() * (p.element_size() + 8) for p in trainable))

        def on_train_end(self, args, state, control, **kw):
            stats["peak_mb"] = (torch.cuda.max_memory_allocated() / 2**20 if gpu
                                else peak_rss_mb())
            raise Measured

    config = TrainConfig(model=spec, data=data, output=tmp / "out", max_steps=steps,
                         batch_size=batch_size, save_strategy="no", progress=False,
                         dtype="float32", gradient_checkpointing=gc, bf16=bf16, **RUNS[name])
    try:
        train(config, callbacks=[Meter()])
    except Measured:
        pass
    if name in ("sparse", "seat"):  # the base is a buffer; its values are the parameters
        stats["parameters"] = stats["weights"] // 4 - stats["trainable"]
    Path(out).write_text(json.dumps(stats))


def run_child(spec: str, name: str, gc: bool, precision: str, args) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json") as fh:
        cmd = [sys.executable, __file__, "--child", name, "--spec", spec, "--steps",
               str(args.steps), "--batch-size", str(args.batch_size), "--out", fh.name,
               "--gc", "on" if gc else "off", "--precision", precision]
        done = subprocess.run(cmd, env=child_env("fixed"), capture_output=True, text=True)
        if done.returncode != 0:
            tail = (done.stdout + done.stderr).strip().splitlines()[-5:]
            raise SystemExit(f"{name} ({spec}, gc {gc}, {precision}) failed:\n"
                             + "\n".join(tail))
        r = json.loads(Path(fh.name).read_text())
    r["step_wall"] = statistics.median(r["wall"][1:] or r["wall"])
    r["step_cpu"] = statistics.median(r["cpu"][1:] or r["cpu"])
    # the ratios' step time: CPU time on a CPU (steadier when shared), wall time on a GPU
    r["step"] = r["step_wall"] if r["device"] == "cuda" else r["step_cpu"]
    parts_mb = {k: r[k] / 2**20 for k in ("weights", "index", "grads", "optimizer")}
    r["parts_mb"] = {**parts_mb, "rest": r["peak_mb"] - r["runtime_mb"] - sum(parts_mb.values())}
    return r


def ratio(results: dict, key: str, a: str, b: str) -> float:
    return results[a][key] / results[b][key]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sizes", default="135m,0.5b")
    parser.add_argument("--gc", default="on,off", help="gradient checkpointing: on, off or both")
    parser.add_argument("--precision", default="fp32,bf16")
    parser.add_argument("--methods", default=",".join(RUNS))
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--output", default="results/bench_scale")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.spec, args.child, args.gc == "on", args.precision == "bf16", args.steps,
              args.batch_size, args.out)
        return
    if args.quick:
        args.sizes, args.gc, args.precision, args.steps = "135m", "on", "fp32", 3
    methods = args.methods.split(",")
    unknown = set(methods) - set(RUNS) | set(args.sizes.split(",")) - {*NAMED, *SHAPES}
    if unknown:
        raise SystemExit(f"unknown method or size {sorted(unknown)}; methods: {list(RUNS)}, "
                         f"sizes: {[*NAMED, *SHAPES]}")
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    sizes = args.sizes.split(",")
    specs = {s: NAMED.get(s) or str(random_checkpoint(s, out)) for s in sizes}
    grid = [(s, gc == "on", p) for s in sizes for gc in args.gc.split(",")
            for p in args.precision.split(",")]
    results: dict = {}
    for size, gc, precision in grid:
        key = f"{size} gc={'on' if gc else 'off'} {precision}"
        results[key] = {}
        print(f"\n{key}, batch {args.batch_size}, {args.steps} steps, medians over steps 2..",
              flush=True)
        print(f"{'run':<9} {'wall s':>7} {'cpu s':>7} {'peak MB':>8} {'floor MB':>9} "
              f"{'peak/floor':>10} | " + " ".join(f"{p:>9}" for p in PARTS) + "  (MB)")
        for name in methods:
            started = time.perf_counter()
            r = results[key][name] = run_child(specs[size], name, gc, precision, args)
            net = r["peak_mb"] - r["runtime_mb"]
            print(f"{name:<9} {r['step_wall']:7.2f} {r['step_cpu']:7.2f} {r['peak_mb']:8.0f} "
                  f"{r['floor'] / 2**20:9.0f} {net / (r['floor'] / 2**20):10.2f} | "
                  + " ".join(f"{r['parts_mb'][p]:9.0f}" for p in PARTS)
                  + f"  [{time.perf_counter() - started:.0f} s]", flush=True)
        (out / "bench_scale.json").write_text(json.dumps(results, indent=2))
    report(results, sizes, methods, args)


def report(results: dict, sizes: list[str], methods: list[str], args) -> None:
    gc = "on" if "on" in args.gc.split(",") else "off"
    precision = args.precision.split(",")[0]
    print(f"\nbytes per parameter (peak minus runtime), checkpointing {gc}, {precision}")
    for name in methods:
        points = [(results[f"{s} gc={gc} {precision}"][name]["parameters"],
                   (results[f"{s} gc={gc} {precision}"][name]["peak_mb"]
                    - results[f"{s} gc={gc} {precision}"][name]["runtime_mb"]) * 2**20)
                  for s in sizes]
        line = "  ".join(f"{s}: {m / n:5.1f} B/param (n={n / 1e6:.0f}M)"
                         for s, (n, m) in zip(sizes, points, strict=True))
        if len(points) >= 2:
            (n0, m0), (n1, m1) = points[0], points[-1]
            slope = (m1 - m0) / (n1 - n0)
            line += f"  | line: {slope:5.1f} B/param + {(m0 - slope * n0) / 2**20:5.0f} MB"
        print(f"{name:<9} {line}")
    at = results[f"{sizes[-1]} gc={gc} {precision}"]
    figures = {}
    pairs = {"seat_full_mem_gc": ("seat", "full", "peak_mb"),
             "sparse_full_mem_gc": ("sparse", "full", "peak_mb"),
             "seat_full_step": ("seat", "full", "step"),
             "lfu_lora_mem_gc": ("lfu-lora", "lora", "peak_mb"),
             "lfu_lora_step": ("lfu-lora", "lora", "step"),
             "floor_sparse_full": ("sparse", "full", "floor")}
    print(f"\nratios at {sizes[-1]}, checkpointing {gc}, {precision}")
    for label, (a, b, key) in pairs.items():
        if a in at and b in at:
            figures[label] = ratio(at, key, a, b)
            target = TARGETS.get(label)
            verdict = "" if target is None else f"  target <= {target}: " + (
                "met" if figures[label] <= target else "NOT met")
            print(f"{label:<20} {figures[label]:6.2f}{verdict}")
    print("RESULT " + " ".join(f"{k}={v:.3f}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
