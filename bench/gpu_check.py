"""Every method family in mixed precision with gradient checkpointing, a few steps each, on
the device the machine has; each saved checkpoint must reload with finite weights.

    python bench/gpu_check.py [--model smollm2-135m-instruct] [--steps 3] [--precision bf16]
                              [--processes 1] [--only full,seat]

Meant for a GPU machine (about three minutes on one GPU with the default 135M model); on a
CPU it runs the same commands in bf16 (use ``--model tiny-random-llama`` for a quick pass).
With ``--processes N`` each run goes through ``torchrun --nproc_per_node N``. Prints one row
per run: method, exit code, wall seconds, the saved dtype, whether every weight is finite,
and the first line of any error; exits 1 if any run failed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from measure import child_env

# "<method>+monitor": the same run watched by the training monitor at every step, keeping
# the best point (greedy generation in the middle of mixed-precision, checkpointed training).
# "<method>+fsdp": under accelerate's FSDP2 (one process a GPU), saved through the Trainer's
# gathering save; "seat+fsdp" must be refused before the model loads, saying why.
TRAIN = ["full", "lora", "sparse", "seat", "ewc", "clora", "lfu-reps", "lfu-lora",
         "lora+monitor", "full+fsdp", "lora+fsdp", "seat+fsdp"]
MONITOR = ["--monitor-every", "1", "--monitor-size", "4", "--keep-best", "ft - kl"]
REFUSED = {"seat+fsdp": "cannot be gathered for saving under FSDP"}
FSDP = ["--use_fsdp", "--fsdp_version", "2", "--fsdp_state_dict_type", "FULL_STATE_DICT",
        "--fsdp_auto_wrap_policy", "TRANSFORMER_BASED_WRAP"]
UNLEARN = ["kif", "npo"]


def command(method: str, args: argparse.Namespace, root: Path) -> list[str]:
    name, _, variant = method.partition("+")
    launcher = [sys.executable, "-m", "forgetkit"] if args.processes == 1 else [
        sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={args.processes}",
        "-m", "forgetkit"]
    if variant == "fsdp":
        launcher = ["accelerate", "launch", *FSDP, "--num_processes", str(args.processes),
                    "--mixed_precision", args.precision, "-m", "forgetkit"]
    common = ["--model", args.model, "--max-steps", str(args.steps), "--batch-size", "4",
              "--save-strategy", "no", "--no-progress", "--gradient-checkpointing",
              f"--{args.precision}", "--output", str(root / method),
              *(MONITOR if variant == "monitor" else [])]
    if name in UNLEARN:
        return [*launcher, "unlearn", "--method", method, "--forget", str(root / "forget.jsonl"),
                "--retain", str(root / "retain.jsonl"), *common]
    return [*launcher, "train", "--method", name, "--data", str(root / "train.jsonl"),
            *common]


def check(folder: Path) -> tuple[str, bool]:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder, dtype="auto")
    finite = all(bool(torch.isfinite(p).all()) for p in model.parameters())
    return str(next(model.parameters()).dtype).removeprefix("torch."), finite


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--precision", choices=["bf16", "fp16"], default="bf16")
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--only", default="", help="comma-separated methods (default: all)")
    args = parser.parse_args()
    methods = [m for m in TRAIN + UNLEARN if not args.only or m in args.only.split(",")]

    from forgetkit.data.records import write_qa
    from forgetkit.data.synth import synth
    from forgetkit.unlearn.setting import build_setting

    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_qa(synth("contracts", 1, seed=0)[:16], root / "train.jsonl")
        setting = build_setting(n_authors=4, forget=0.25, seed=0)
        write_qa(setting.forget[:8], root / "forget.jsonl")
        write_qa(setting.retain[:8], root / "retain.jsonl")
        print(f"model {args.model}, {args.steps} steps, {args.precision}, gradient "
              f"checkpointing, {args.processes} process(es)")
        print(f"{'method':<10} {'exit':>4} {'seconds':>8} {'dtype':>9} {'finite':>6}  error")
        for method in methods:
            start = time.monotonic()
            run = subprocess.run(command(method, args, root), capture_output=True, text=True,
                                 env=child_env())
            took = time.monotonic() - start
            dtype, finite, error = "-", False, ""
            if method in REFUSED:  # must stop with a clear error, before any model loads
                lines = [x for x in run.stderr.splitlines() if x.strip()]
                ok = (run.returncode != 0 and REFUSED[method] in run.stderr
                      and not (root / method).exists())
                failed += not ok
                print(f"{method:<10} {run.returncode:>4} {took:>8.1f} {'-':>9} {'-':>6}  "
                      f"{'refused as it should be: ' if ok else 'NOT REFUSED: '}"
                      f"{(lines[-1] if lines else '')[:80]}")
                continue
            if run.returncode == 0:
                dtype, finite = check(root / method)
                steps = json.loads((root / method / "forgetkit_run.json").read_text())
                error = "" if steps["global_step"] == args.steps else "wrong step count"
                if method.endswith("+fsdp") and "gathered" not in json.dumps(steps["notes"]):
                    error = "not saved through the Trainer's gathering save"
                if "+monitor" in method and len(steps.get("monitor", {}).get(
                        "points", [])) != args.steps + 1:
                    error = "the monitor did not measure every step"
            else:
                lines = [x for x in run.stderr.splitlines() if x.strip()]
                error = lines[-1][:100] if lines else "no output"
            ok = run.returncode == 0 and finite and not error
            failed += not ok
            print(f"{method:<10} {run.returncode:>4} {took:>8.1f} {dtype:>9} "
                  f"{str(finite):>6}  {error}")
    print(f"{len(methods) - failed} of {len(methods)} passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
