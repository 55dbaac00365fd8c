"""Watch forgetting while training: a ``transformers.TrainerCallback`` that every N optimizer
steps answers a few monitored questions greedily and logs what the fine-tune is learning
and losing, keeps the best point by a rule, and stops training when a rule says so.

Measured at step 0 (the starting model) and then every ``every`` steps and at the end, with
the evaluation suite's own metrics (``eval.evaluate``) so a monitored figure means what the
same name means in ``forgetkit eval`` and ``forgetkit audit``:

    ft      the FT score: ROUGE-1 recall on a slice of the training questions (unlearning:
            ``forget`` and ``retain``, ROUGE-L recall on slices of those sets, as TOFU)
    idk     refusal rate (IDK_SM) on unseen questions (per file too: ``idk/<stem>``)
    known   accuracy on known questions
    kl      next-token KL(start || now) on generic prompts: the start's log-probabilities
            are taken once at step 0 from the model itself, so no second model is held

Each point goes into the Trainer's log history as ``monitor/<name>`` (and so to
``report_to`` and ``forgetkit_run.json``). Under DDP only rank 0 measures, on the unwrapped
module (no collective runs inside it); the decision to stop is then broadcast so that every
rank stops at the same step. Keep-best holds a CPU copy of the trainable weights of the
best point so far (LoRA: the adapters; full fine-tuning: every weight) and puts it back at
the end of training; it is refused under FSDP and DeepSpeed, whose weights are sharded.

In a TRL or transformers script: ``ForgettingMonitor(tokenizer, train_records=...).attach(
trainer)`` before ``trainer.train()``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import TrainerCallback

from forgetkit.data.default_sets import MONITOR_UNVERIFIABLE, default_known
from forgetkit.data.records import QARecord, read_qa
from forgetkit.errors import UserError
from forgetkit.eval.evaluate import EvalSet, evaluate
from forgetkit.eval.metrics import next_token_logprobs
from forgetkit.train.monitor_rules import Conditions, KeepBest, parse_keep_best, parse_stop_when
from forgetkit.train.processes import is_main_process, sharding, world_size

PREFIX = "monitor/"
POINTS_PER_RUN = 8  # measurements of a run when no interval is given


def sample(records: Sequence[QARecord], n: int, seed: int) -> list[QARecord]:
    """At most ``n`` records, a seeded draw kept in file order (the same every run)."""
    if len(records) <= n:
        return list(records)
    keep = sorted(random.Random(f"monitor:{seed}").sample(range(len(records)), n))
    return [records[i] for i in keep]


class ForgettingMonitor(TrainerCallback):
    """Measure every ``every`` optimizer steps (None: about ``POINTS_PER_RUN`` times a run).

    ``train_records``: the training questions, scored as ``ft`` (or, with ``unlearning``,
    ``forget_records`` and ``retain_records`` as ``forget`` and ``retain``). ``unseen`` maps
    a name to questions the model should refuse (default: forgetkit's shipped monitor set);
    ``known`` questions it should keep answering (default: a slice of the shipped known
    set; an empty list turns a set off). Each set is cut to ``size`` questions.
    """

    def __init__(self, tokenizer: Any = None, *, train_records: Sequence[QARecord] = (),
                 forget_records: Sequence[QARecord] = (),
                 retain_records: Sequence[QARecord] = (),
                 unseen: dict[str, Sequence[QARecord]] | None = None,
                 known: Sequence[QARecord] | None = None, every: int | None = None,
                 size: int = 16, keep_best: str | KeepBest | None = None,
                 stop_when: str | Conditions | None = None, max_new_tokens: int = 32,
                 batch_size: int = 64, kl: bool = True, seed: int = 0):
        self.tokenizer = tokenizer
        if unseen is None:
            unseen = {"unverifiable": read_qa(MONITOR_UNVERIFIABLE)}
        if known is None:
            known = default_known()
        sets = [EvalSet(name, "ft", sample(records, size, seed)) for name, records in
                (("train", train_records), ("forget", forget_records),
                 ("retain", retain_records)) if records]
        sets += [EvalSet(f"unseen/{name}", "unseen", sample(records, size, seed))
                 for name, records in unseen.items() if records]
        if known:
            sets.append(EvalSet("known", "known", sample(known, size, seed)))
        if not sets:
            raise UserError("the monitor has nothing to measure: give training questions, "
                            "unseen or known questions")
        self.sets = sets
        self.every = every
        self.keep_best = parse_keep_best(keep_best) if isinstance(keep_best, str) else keep_best
        self.stop_when = parse_stop_when(stop_when) if isinstance(stop_when, str) else stop_when
        self.max_new_tokens, self.batch_size, self.kl = max_new_tokens, batch_size, kl
        missing = self._rule_names() - set(self.measure_names())
        if missing:
            raise UserError(f"a monitor rule uses {sorted(missing)}, which this run does not "
                            f"measure; it measures {', '.join(self.measure_names())}")
        self.points: list[dict[str, float]] = []
        self.reference: list[torch.Tensor] | None = None
        self.best: dict[str, Any] | None = None  # step, point, CPU weights
        self.stopped_at: int | None = None
        self.trainer: Any = None

    # ------------------------------------------------------------------ what is measured
    def measure_names(self) -> list[str]:
        names = [{"train": "ft"}.get(s.name, s.name) for s in self.sets if s.role == "ft"]
        unseen = [s for s in self.sets if s.role == "unseen"]
        if unseen:
            names.append("idk")
            if len(unseen) > 1:
                names += [f"idk/{s.name.split('/', 1)[1]}" for s in unseen]
        if any(s.role == "known" for s in self.sets):
            names.append("known")
        return names + (["kl"] if self.kl else [])

    def _rule_names(self) -> set[str]:
        return ((self.keep_best.names() if self.keep_best else set())
                | (self.stop_when.names() if self.stop_when else set()))

    def measure(self, model: Any, tokenizer: Any, step: int = 0) -> dict[str, float]:
        """One point: every measure of the weights at optimizer step ``step`` (greedy
        answers, no gradients)."""
        result = evaluate(model, tokenizer, self.sets, reference_logprobs=self.reference,
                          max_new_tokens=self.max_new_tokens, batch_size=self.batch_size,
                          progress=False)
        sets = result["sets"]
        point: dict[str, float] = {}
        for s in self.sets:
            if s.role == "ft":  # the demo's FT score; TOFU's ROUGE-L on the unlearning sides
                metric = "rouge1_recall" if s.name == "train" else "rougeL_recall"
                point[{"train": "ft"}.get(s.name, s.name)] = sets[s.name]["metrics"][metric]
        unseen = [s for s in self.sets if s.role == "unseen"]
        if unseen:
            pooled = [v for s in unseen for v in sets[s.name]["per_question"]["idk_sm"]]
            point["idk"] = sum(pooled) / len(pooled)
            if len(unseen) > 1:
                for s in unseen:
                    point[f"idk/{s.name.split('/', 1)[1]}"] = sets[s.name]["metrics"]["idk_sm"]
        if "known" in sets:
            point["known"] = sets["known"]["metrics"]["accuracy"]
        if "kl_to_base" in result:
            point["kl"] = result["kl_to_base"]
        return point

    # ------------------------------------------------------------------ Trainer events
    def attach(self, trainer: Any) -> ForgettingMonitor:
        """Watch ``trainer`` (any ``transformers.Trainer``, TRL's included): points are
        logged through ``trainer.log`` and so reach its ``report_to`` integrations."""
        if sharding(trainer) is not None:
            if self.keep_best is not None:
                raise UserError("--keep-best keeps a copy of the trainable weights, which "
                                "FSDP and DeepSpeed shard across processes; drop --keep-best "
                                "(the monitor and --stop-when work) or train without them")
        self.trainer = trainer
        if self not in trainer.callback_handler.callbacks:
            trainer.add_callback(self)
        return self

    def _interval(self, state: Any) -> int:
        if self.every is not None:
            return self.every
        return max(1, math.ceil(max(state.max_steps, 1) / POINTS_PER_RUN))

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None,
                       processing_class: Any = None, **kwargs: Any) -> None:
        if not is_main_process():
            return
        tokenizer = self.tokenizer or processing_class
        if self.kl and self.reference is None:
            if state.global_step > 0:
                self.kl = False  # resumed: the start's distribution is no longer at hand
            else:
                self.reference = next_token_logprobs(model, tokenizer)
        if state.global_step == 0:
            self._record(args, state, model, tokenizer, candidate=False)

    def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None,
                    processing_class: Any = None, **kwargs: Any) -> Any:
        step = state.global_step
        if step % self._interval(state) and step < state.max_steps:
            return control
        stop = False
        if is_main_process():
            point = self._record(args, state, model, self.tokenizer or processing_class)
            stop = self.stop_when is not None and self.stop_when.holds(point)
        if world_size() > 1 and torch.distributed.is_initialized():
            decision = [stop]
            torch.distributed.broadcast_object_list(decision, src=0)  # every rank, same step
            stop = bool(decision[0])
        if stop:
            self.stopped_at = step
            control.should_training_stop = True
        return control

    def on_train_end(self, args: Any, state: Any, control: Any, model: Any = None,
                     **kwargs: Any) -> None:
        if self.best is not None and self.best["step"] != state.global_step and model is not None:
            with torch.no_grad():
                parameters = dict(model.named_parameters())
                for name, value in self.best["weights"].items():
                    parameters[name].copy_(value.to(parameters[name].device))
        if self.best is not None:
            self.best.pop("weights", None)  # restored: the copy is not needed any more

    def _record(self, args: Any, state: Any, model: Any, tokenizer: Any,
                candidate: bool = True) -> dict[str, float]:
        if any(p["step"] == state.global_step for p in self.points):
            return next(p for p in self.points if p["step"] == state.global_step)
        point = self.measure(model, tokenizer, state.global_step)
        logs = {f"{PREFIX}{k}": round(v, 6) for k, v in point.items()}
        if self.trainer is not None:
            # Trainer.log clears control.should_log; restored, so that the Trainer's own log
            # of this step (and, under DDP, the gathers behind it) still happens
            should_log = self.trainer.control.should_log
            self.trainer.log(dict(logs))
            self.trainer.control.should_log = should_log
        else:  # a plain callback: into the log history all the same
            state.log_history.append({**logs, "step": state.global_step})
        point = {"step": state.global_step, **point}
        self.points.append(point)
        if candidate and self.keep_best is not None and self.keep_best.allows(point):
            score = self.keep_best.score(point)
            if self.best is None or score > self.best["score"]:
                self.best = {"step": state.global_step, "score": score,
                             "weights": {n: p.detach().to("cpu", copy=True)
                                         for n, p in model.named_parameters()
                                         if p.requires_grad}}
        return point

    def summary(self) -> dict[str, Any]:
        """The curve and the choices, as ``forgetkit_run.json`` records them."""
        last = self.points[-1]["step"] if self.points else None
        chosen = self.best["step"] if self.best is not None else last
        return {"measures": self.measure_names(), "points": self.points,
                "sets": {s.name: len(s.records) for s in self.sets},
                "keep_best": str(self.keep_best) if self.keep_best else None,
                "keep_best_met": self.best is not None if self.keep_best else None,
                "stop_when": str(self.stop_when) if self.stop_when else None,
                "stopped_at": self.stopped_at, "chosen_step": chosen}


def monitor_from_config(config: Any, records: Sequence[QARecord],
                        fields: Any = None) -> ForgettingMonitor | None:
    """The monitor a run's options ask for (None when they ask for none)."""
    options = config.flat()
    wanted = any(options.get(k) for k in ("monitor", "monitor_unseen", "monitor_known",
                                          "monitor_every", "keep_best", "stop_when"))
    if not wanted:
        return None
    unseen = ({Path(p).stem: read_qa(p, fields) for p in options["monitor_unseen"]}
              if options.get("monitor_unseen") else None)
    known = ([r for p in options["monitor_known"] for r in read_qa(p, fields)]
             if options.get("monitor_known") else None)
    sides: dict[str, Any] = {"train_records": records}
    if options.get("forget") is not None:  # an unlearning run: the data is the forget set
        sides = {"forget_records": records,
                 "retain_records": read_qa(options["retain"], fields)}
    return ForgettingMonitor(
        unseen=unseen, known=known, every=options.get("monitor_every"),
        size=options.get("monitor_size", 16), keep_best=options.get("keep_best"),
        stop_when=options.get("stop_when"), seed=options.get("seed", 0), **sides)


__all__ = ["POINTS_PER_RUN", "PREFIX", "ForgettingMonitor", "monitor_from_config", "sample"]
