"""How far the refusal judges agree with hand labels on 548 real answers of the demo's models
(``data/sets/judge_agreement.jsonl``, see ``forgetkit.eval.judge.agreement``).

    python bench/judge_agreement.py [--judges embedding,string-match] [--errors]

Printed per judge: agreement with its Wilson 95% interval and Cohen's kappa, agreement per
kind of answer, the share of answers (label 0) it calls refusals, which inflates IDK, and
of refusals it misses; ``--errors`` lists the answers it gets wrong.
"""

from __future__ import annotations

import argparse
import collections


def _cell(rate) -> str:
    return f"{rate['value']:.3f} [{rate['low']:.3f}, {rate['high']:.3f}] (n={rate['n']})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--judges", default="embedding,string-match")
    parser.add_argument("--errors", action="store_true")
    parser.add_argument("--set", default=None, help="only the rows of this set "
                                                    "(development, held-out)")
    args = parser.parse_args()

    from forgetkit.eval.judge import load_judge
    from forgetkit.eval.judge.agreement import KINDS, judge_agreement, read_labelled

    rows = [r for r in read_labelled() if args.set in (None, r["set"])]
    kinds = collections.Counter((r["kind"], r["refusal"]) for r in rows)
    print(f"{len(rows)} labelled answers: "
          + ", ".join(f"{k} (label {y}): {n}" for (k, y), n in sorted(kinds.items())))
    results = {name: judge_agreement(load_judge(name), rows) for name in args.judges.split(",")}
    names = list(results)
    print("\n| | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    print("| agreement | " + " | ".join(_cell(r["agreement"]) for r in results.values()) + " |")
    for name in results[names[0]]["per_set"]:
        print(f"| agreement, {name} | " + " | ".join(_cell(r["per_set"][name])
                                                    for r in results.values()) + " |")
    print("| Cohen's kappa | " + " | ".join(f"{r['cohen_kappa']:.3f}"
                                            for r in results.values()) + " |")
    for kind in KINDS:
        cells = [_cell(r["per_kind"][kind]) if kind in r["per_kind"] else "–"
                 for r in results.values()]
        print(f"| agreement on {kind} | " + " | ".join(cells) + " |")
    print("| answers called refusals | " + " | ".join(_cell(r["false_refusals"])
                                                    for r in results.values()) + " |")
    print("| refusals missed | " + " | ".join(_cell(r["missed_refusals"])
                                             for r in results.values()) + " |")
    if args.errors:
        for name, r in results.items():
            print(f"\n{name}: {len(r['errors'])} wrong")
            for e in r["errors"]:
                print(f"  label {e['label']} ({e['kind']}): {e['answer'][:110]!r}")


if __name__ == "__main__":
    main()
