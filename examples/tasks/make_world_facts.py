"""Write world_facts.jsonl: a four-way multiple-choice version of forgetkit's known
questions (each right answer among three wrong ones of the same topic), the local
lm-evaluation-harness task of world_facts.yaml. Run from this folder; seeded."""

import json
import random
from pathlib import Path

from forgetkit.data.synth.known import KNOWN_POOL

rng = random.Random(0)
by_topic: dict[str, list[str]] = {}
for _, _, keywords, topic in KNOWN_POOL:
    by_topic.setdefault(topic, []).append(keywords[0])
rows = []
for question, _, keywords, topic in KNOWN_POOL:
    pool = sorted({k for k in by_topic[topic] if k != keywords[0]}
                  | {k for t, ks in by_topic.items() if t != topic for k in ks[:2]})
    wrong = [k for k in pool if k not in keywords]
    same = [k for k in wrong if k in by_topic[topic]]
    picks = rng.sample(same, min(3, len(same)))
    picks += rng.sample([k for k in wrong if k not in picks], 3 - len(picks))
    choices = [keywords[0], *picks]
    rng.shuffle(choices)
    rows.append({"question": question, "choices": choices, "label": choices.index(keywords[0])})
Path("world_facts.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
print(f"wrote {len(rows)} questions")
