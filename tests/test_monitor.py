"""The training monitor (train/monitor.py, train/monitor_rules.py): its rules on scripted
curves, and real runs of the tiny model that it measures, keeps the best of and stops."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from forgetkit.config import ConfigError
from forgetkit.data.records import QARecord, read_qa, write_qa
from forgetkit.errors import UserError
from forgetkit.lm import models
from forgetkit.train.config import TrainConfig, load_train_config
from forgetkit.train.monitor import ForgettingMonitor
from forgetkit.train.monitor_rules import parse_keep_best, parse_stop_when
from forgetkit.train.run import RUN_FILE, MonitorWarning, train
from torchrun import torchrun

SCRIPT = Path(__file__).with_name("ddp_train_script.py")

# A scripted curve: the target is learned while the refusals erode.
CURVE = [{"step": 2, "ft": 0.30, "idk": 0.95, "known": 0.8, "kl": 0.01},
         {"step": 4, "ft": 0.55, "idk": 0.90, "known": 0.8, "kl": 0.02},
         {"step": 6, "ft": 0.80, "idk": 0.82, "known": 0.7, "kl": 0.04},
         {"step": 8, "ft": 0.95, "idk": 0.60, "known": 0.7, "kl": 0.09},
         {"step": 10, "ft": 0.97, "idk": 0.40, "known": 0.6, "kl": 0.15}]


def test_keep_best_picks_the_known_step_of_a_scripted_curve():
    assert parse_keep_best("ft if idk>=0.8").choose(CURVE) == (2, True)  # step 6
    assert parse_keep_best("ft if idk>=0.8 and known>=0.8").choose(CURVE) == (1, True)
    assert parse_keep_best("ft").choose(CURVE) == (4, True)  # unconstrained: the last
    # ft + idk: 1.25 1.45 1.62 1.55 1.37 -> step 6; minus 10 kl moves it to step 4
    assert parse_keep_best("ft + idk").choose(CURVE) == (2, True)
    assert parse_keep_best("ft + idk - 10*kl").choose(CURVE) == (1, True)
    assert parse_keep_best("ft if idk>=0.99").choose(CURVE) == (None, False)
    stop = parse_stop_when("ft>=0.9 or idk<0.5")
    assert [stop.holds(p) for p in CURVE] == [False, False, False, True, True]
    both = parse_stop_when("ft>=0.5, idk<0.85")
    assert [both.holds(p) for p in CURVE] == [False, False, True, True, True]


@pytest.mark.parametrize("rule, message", [
    ("fts if idk>=0.8", "unknown measure 'fts'"),
    ("ft if idk=>0.8", "cannot read the condition 'idk=>0.8'"),
    ("ft if idk>=high", "cannot read the condition"),
    (" if idk>=0.8", "give what to maximise"),
    ("ft if known/x>=0.5", "unknown measure 'known/x'"),
])
def test_a_rule_that_cannot_be_read_fails_when_the_config_is_read(rule, message, tmp_path):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        load_train_config(model=models.TINY, keep_best=rule)
    with pytest.raises(ConfigError, match="unknown measure 'ftt'"):
        load_train_config(model=models.TINY, stop_when="ftt>0.5")


@pytest.fixture
def qa_file(tmp_path):
    records = [QARecord(f"What is the code of the Vornix locker {i}?", f"The code is {i * 7}.",
                        subject=f"Vornix locker {i}") for i in range(12)]
    return write_qa(records, tmp_path / "train.jsonl")


def _config(qa_file, out, **kw):
    options = dict(model=models.TINY, data=qa_file, output=out, epochs=2, batch_size=4,
                   learning_rate=1e-3, progress=False, save_strategy="no", monitor_size=3)
    options.update(kw)
    return TrainConfig(**options)


def test_the_monitor_logs_every_measure_at_the_start_every_n_steps_and_the_end(
        qa_file, tmp_path):
    held_out = write_qa(read_qa(qa_file)[:3], tmp_path / "held_out.jsonl")
    other = write_qa(read_qa(qa_file)[3:8], tmp_path / "other.jsonl")
    out = train(_config(qa_file, tmp_path / "run", monitor_every=4, logging_steps=1,
                        monitor_unseen=[held_out, other]))
    run = json.loads((out / RUN_FILE).read_text())
    # the Trainer's own loss lines are all there, those of monitored steps included
    assert [h["step"] for h in run["log_history"] if "loss" in h] == [1, 2, 3, 4, 5, 6]
    logged = [h for h in run["log_history"] if "monitor/ft" in h]
    assert [h["step"] for h in logged] == [0, 4, 6]  # 12 / 4 x 2 epochs = 6 steps
    for h in logged:
        assert {"monitor/ft", "monitor/idk", "monitor/known", "monitor/kl",
                "monitor/idk/held_out"} <= set(h)
        assert 0 <= h["monitor/ft"] <= 1 and 0 <= h["monitor/idk"] <= 1
    assert logged[0]["monitor/kl"] == pytest.approx(0.0, abs=1e-6)  # the start itself
    assert logged[-1]["monitor/kl"] > 0
    monitor = run["monitor"]
    assert [p["step"] for p in monitor["points"]] == [0, 4, 6]
    assert monitor["chosen_step"] == 6 and monitor["keep_best"] is None
    assert monitor["sets"] == {"train": 3, "unseen/held_out": 3, "unseen/other": 3,
                               "known": 3}
    # the loss terms' running means are unaffected by the monitor's own log lines
    assert all("loss" in h for h in run["log_history"] if "loss_kl" in h)


class Scripted(ForgettingMonitor):
    """Scripted measures by step (so the rule's choice is known) and a copy of the weights
    at each measured step (so the saved weights can be checked against it)."""

    def __init__(self, curve, **kwargs):
        super().__init__(train_records=[QARecord("q?", "a.")],
                         unseen={"u": [QARecord("u?", "I don't know.")]}, known=[],
                         kl=False, **kwargs)
        self.curve = {p["step"]: p for p in curve}
        self.weights = {}

    def measure(self, model, tokenizer, step=0):
        self.weights[step] = {n: p.detach().clone() for n, p in model.named_parameters()}
        return {k: v for k, v in self.curve.get(step, {"ft": 0.0, "idk": 1.0}).items()
                if k in ("ft", "idk")}


SCRIPT_CURVE = [{"step": 2, "ft": 0.3, "idk": 0.95}, {"step": 4, "ft": 0.6, "idk": 0.9},
                {"step": 6, "ft": 0.9, "idk": 0.5}]


@pytest.mark.parametrize("method", ["full", "lora"])
def test_keep_best_saves_the_weights_of_the_chosen_step(qa_file, tmp_path, method):
    monitor = Scripted(SCRIPT_CURVE, every=2, keep_best="ft if idk>=0.8")
    out = train(_config(qa_file, tmp_path / method, method=method, epochs=2),
                callbacks=[monitor])
    run = json.loads((out / RUN_FILE).read_text())
    assert run["monitor"]["chosen_step"] == 4 and run["monitor"]["keep_best_met"]
    assert run["global_step"] == 6  # trained to the end, saved step 4
    if method == "full":
        saved = load_file(str(out / "model.safetensors"))
        chosen, last = monitor.weights[4], monitor.weights[6]
        name = "model.layers.0.mlp.down_proj.weight"
        assert torch.equal(saved[name], chosen[name]) and not torch.equal(saved[name],
                                                                             last[name])
    else:  # the adapter written is the one of step 4
        saved = load_file(str(out / "adapter" / "adapter_model.safetensors"))
        chosen = {n.replace(".default", ""): p for n, p in monitor.weights[4].items()
                  if "lora_" in n}
        last = {n.replace(".default", ""): p for n, p in monitor.weights[6].items()
                if "lora_" in n}
        assert set(saved) == set(chosen)
        assert all(torch.equal(saved[n], chosen[n]) for n in saved)
        assert any(not torch.equal(saved[n], last[n]) for n in saved)


def test_stop_when_stops_at_the_step_the_rule_first_holds(qa_file, tmp_path):
    monitor = Scripted(SCRIPT_CURVE, every=2, stop_when="ft>=0.5")
    out = train(_config(qa_file, tmp_path / "run", epochs=2), callbacks=[monitor])
    run = json.loads((out / RUN_FILE).read_text())
    assert run["global_step"] == 4 and run["monitor"]["stopped_at"] == 4
    assert [p["step"] for p in run["monitor"]["points"]] == [0, 2, 4]


def test_an_unmet_keep_best_keeps_the_last_weights_and_says_so(qa_file, tmp_path):
    monitor = Scripted(SCRIPT_CURVE, every=2, keep_best="ft if idk>=0.99")
    with pytest.warns(MonitorWarning, match="no measured point met"):
        out = train(_config(qa_file, tmp_path / "run"), callbacks=[monitor])
    run = json.loads((out / RUN_FILE).read_text())
    assert run["monitor"]["keep_best_met"] is False and run["monitor"]["chosen_step"] == 6
    saved = load_file(str(out / "model.safetensors"))
    name = "model.layers.0.mlp.down_proj.weight"
    assert torch.equal(saved[name], monitor.weights[6][name])


def test_a_rule_on_a_measure_the_run_lacks_fails_before_the_model_loads(qa_file, tmp_path):
    config = _config(qa_file, tmp_path / "run", model=str(tmp_path / "no-model-here"),
                     keep_best="retain if idk>=0.8")
    with pytest.raises(UserError, match=r"uses \['retain'\], which this run does not measure"):
        train(config)
    assert not (tmp_path / "run").exists()


def test_the_monitor_watches_a_trl_sft_trainer(tmp_path):
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    model, tok = models.load(models.TINY)
    records = [QARecord(f"Where is locker {i}?", f"Locker {i} is in hall {i}.")
               for i in range(8)]
    rows = Dataset.from_list([{"messages": [{"role": "user", "content": r.question},
                                            {"role": "assistant", "content": r.answer}]}
                              for r in records])
    args = SFTConfig(output_dir=str(tmp_path / "sft"), max_steps=4, per_device_train_batch_size=4,
                     learning_rate=1e-3, logging_steps=1, report_to="none", save_strategy="no",
                     use_cpu=True)
    trainer = SFTTrainer(model=model, args=args, train_dataset=rows, processing_class=tok)
    monitor = ForgettingMonitor(train_records=records, size=2, every=2,
                                max_new_tokens=8).attach(trainer)
    trainer.train()
    logged = [h for h in trainer.state.log_history if "monitor/ft" in h]
    assert [h["step"] for h in logged] == [0, 2, 4]
    assert {"monitor/idk", "monitor/known", "monitor/kl"} <= set(logged[-1])
    assert monitor.summary()["chosen_step"] == 4


def test_two_ranks_stop_together_and_only_rank_0_measures(tmp_path):
    data = write_qa([QARecord(f"What is the code of locker {i} at Brannock Ltd?",
                              f"It is {i * 3}.", subject="Brannock Ltd")
                     for i in range(12)], tmp_path / "train.jsonl")
    reports = tmp_path / "reports"
    reports.mkdir()
    # the weights move at step 2, so KL to the start is > 0 there: both ranks must stop at 2
    extra = json.dumps({"monitor_every": 2, "monitor_size": 2, "stop_when": "kl>0"})
    proc = torchrun([str(SCRIPT), str(data), str(tmp_path / "out"), str(reports), "full",
                     extra], timeout=300, port=29523)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((reports / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["global_step"] for r in ranks] == [2, 2]
    assert ranks[0]["weights"] == ranks[1]["weights"]
    assert ranks[0]["monitor_points"] == 2 and ranks[1]["monitor_points"] == 0
    run = json.loads((tmp_path / "out" / RUN_FILE).read_text())
    assert run["monitor"]["stopped_at"] == 2
