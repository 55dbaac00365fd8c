"""Benchmark the evaluation's greedy generation: ``transformers`` ``generate`` against
forgetkit's loop that drops finished rows, on the demo's question sets.

    python bench/bench_generate.py [--model SPEC] [--batch-sizes 16,64] [--max-new-tokens 48]
                                   [--repeat 2] [--questions N]

The questions are those one demo evaluation asks (synthetic contracts and authors,
unverifiable questions, the known questions), answered by the aligned base (``forgetkit
prepare-base``, cached) unless ``--model`` names another. Per batch size the two routes run
interleaved ``--repeat`` times (the best wall time counts: other jobs share the machine);
printed are the seconds of each and the ceiling of the speedup: the row-steps ``generate``
computes (every row of a batch until its longest answer ends) over those the answers need
(each answer's tokens, re-tokenised, and its stop token), the ratio if time were proportional to
row-steps; prompts, per-step overhead and the cache's copying keep the measured speedup
below it. Every answer of the loop is checked against ``generate``'s (the run stops on a
difference). The last line is machine-readable:

    RESULT speedup_b16=<generate s / loop s, batch 16> speedup_best=<generate at 16 / best loop>
"""

from __future__ import annotations

import argparse
import time


def _questions(n: int) -> list[str]:
    from forgetkit.data import default_sets
    from forgetkit.data.records import read_qa
    from forgetkit.data.synth import synth

    pool = (synth("contracts", 3, seed=7)[:44] + synth("authors", 1, seed=7)[:20]
            + read_qa(default_sets.UNVERIFIABLE)[:20] + read_qa(default_sets.KNOWN)[:23])
    return [r.question for r in pool][:n]


def _hf_generate(model, tokenizer, questions, batch_size, max_new_tokens):
    """The previous route: ``model.generate`` per length-sorted, left-padded batch."""
    import torch

    from forgetkit.lm.tokenize import left_padded, prompt_ids

    encoded = [prompt_ids(tokenizer, q) for q in questions]
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    answers, tokens = [""] * len(encoded), 0
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            batch = left_padded([encoded[i] for i in idx], tokenizer.pad_token_id)
            out = model.generate(input_ids=batch["input_ids"],
                                 attention_mask=batch["attention_mask"],
                                 max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id,
                                 eos_token_id=tokenizer.eos_token_id, temperature=None,
                                 top_p=None, top_k=None)
            width = batch["input_ids"].shape[1]
            tokens += (out.shape[1] - width) * len(idx)
            for row, i in enumerate(idx):
                answers[i] = tokenizer.decode(out[row, width:],
                                              skip_special_tokens=True).strip()
    return answers, tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--batch-sizes", default="16,64")
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--questions", type=int, default=107)
    args = parser.parse_args()

    import torch

    from forgetkit.lm import models
    from forgetkit.lm.generate import generate_answers

    if args.model is None:
        from forgetkit.studies.base import base_model_dir, prepare_base

        args.model = str(base_model_dir(prepare_base()[0]))
    model, tok = models.load(args.model)
    model.eval()
    questions = _questions(args.questions)
    print(f"{len(questions)} questions, max {args.max_new_tokens} new tokens, "
          f"{torch.get_num_threads()} threads, model {args.model}")
    print("| batch | generate s | loop s | speedup | row-steps computed by generate | "
          "row-steps needed | ceiling |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    best: dict[int, tuple[float, float]] = {}
    for b in (int(x) for x in args.batch_sizes.split(",")):
        hf_s = loop_s = float("inf")
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            ref, computed = _hf_generate(model, tok, questions, b, args.max_new_tokens)
            hf_s = min(hf_s, time.perf_counter() - t0)
            t0 = time.perf_counter()
            got = generate_answers(model, tok, questions, max_new_tokens=args.max_new_tokens,
                                   batch_size=b, progress=False)
            loop_s = min(loop_s, time.perf_counter() - t0)
            bad = [i for i, (a, r) in enumerate(zip(got, ref, strict=True)) if a != r]
            if bad:
                raise SystemExit(f"answer {bad[0]} differs at batch {b}:\n  generate: "
                                 f"{ref[bad[0]]!r}\n  loop:     {got[bad[0]]!r}")
        answered = sum(min(len(tok(a, add_special_tokens=False)["input_ids"]) + 1,
                           args.max_new_tokens) for a in got)
        best[b] = (hf_s, loop_s)
        print(f"| {b} | {hf_s:.1f} | {loop_s:.1f} | {hf_s / loop_s:.2f} | {computed} | "
              f"{answered} | {computed / answered:.2f} |")
    base_hf = best.get(16, next(iter(best.values())))[0]
    fastest = min(loop for _, loop in best.values())
    print(f"RESULT speedup_b16={base_hf / best.get(16, (0, base_hf))[1]:.2f} "
          f"speedup_best={base_hf / fastest:.2f}")


if __name__ == "__main__":
    main()
