"""A resumed run is the run it claims to be: checkpoints made with other data, settings or
method are refused (naming the difference) before the model loads, and a checkpoint that a
kill or a full disk cut short is skipped for the last complete one."""

import json
import shutil
import warnings

import pytest
import torch
from safetensors.torch import load_file

from forgetkit.data.records import QARecord, write_qa
from forgetkit.lm import models
from forgetkit.train import trainer as trainer_mod
from forgetkit.train.config import TrainConfig
from forgetkit.train.resume import (
    DEFINITION_FILE,
    ResumeError,
    SkippedCheckpointWarning,
    checkpoint_problem,
)
from forgetkit.train.run import RUN_FILE, train, work_dir


class Stop(Exception):
    pass


@pytest.fixture
def qa_file(tmp_path):
    recs = [QARecord(f"What is the code of the Vornix locker {i}?", f"The code is {i * 7}.")
            for i in range(8)]
    return write_qa(recs, tmp_path / "train.jsonl")


def _config(qa_file, out, **kw):
    base = dict(model=models.TINY, data=qa_file, output=out, epochs=3, batch_size=4,
                learning_rate=1e-3, progress=False, save_strategy="epoch")
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture
def stopped(qa_file, tmp_path, monkeypatch):
    """A run killed right after writing its first checkpoint (epoch 1, step 2)."""
    out = tmp_path / "out"
    original = trainer_mod.ForgetTrainer._save_checkpoint

    def save_then_stop(self, *args, **kwargs):
        original(self, *args, **kwargs)
        raise Stop

    monkeypatch.setattr(trainer_mod.ForgetTrainer, "_save_checkpoint", save_then_stop)
    with pytest.raises(Stop):
        train(_config(qa_file, out))
    monkeypatch.undo()
    assert (work_dir(out) / "checkpoint-2" / "trainer_state.json").is_file()
    return out


def test_resume_with_other_settings_or_data_is_refused_naming_them(stopped, qa_file, tmp_path,
                                                                   monkeypatch):
    loads = []
    monkeypatch.setattr(models, "load", lambda *a, **k: loads.append(a) or 1 / 0)
    with pytest.raises(ResumeError, match=r"learning_rate 0\.001 -> 0\.01"):
        train(_config(qa_file, stopped, resume=True, learning_rate=1e-2))
    with pytest.raises(ResumeError, match=r"method 'full' -> 'lora'"):
        train(_config(qa_file, stopped, resume=True, method="lora"))
    other = write_qa([QARecord("What is the code?", "It is 1.")] * 8, tmp_path / "other.jsonl")
    with pytest.raises(ResumeError, match=r"data file: its content changed"):
        train(_config(other, stopped, resume=True))
    assert not loads  # refused before any model was loaded


def test_resume_skips_an_incomplete_checkpoint_and_ends_as_an_unbroken_run(stopped, qa_file,
                                                                           tmp_path):
    checkpoints = work_dir(stopped)
    # What a full disk leaves: a newer checkpoint whose weights were cut short.
    cut = shutil.copytree(checkpoints / "checkpoint-2", checkpoints / "checkpoint-4")
    weights = cut / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    assert "model.safetensors is incomplete" in checkpoint_problem(cut)
    # The same data under another name is the same run; settings that only change how the
    # run is watched (logging) do not count.
    moved = shutil.copy(qa_file, tmp_path / "moved.jsonl")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train(_config(moved, stopped, resume=True, logging_steps=1))
    skipped = [w for w in caught if issubclass(w.category, SkippedCheckpointWarning)]
    assert skipped and "checkpoint-4" in str(skipped[0].message)
    assert "continuing from checkpoint-2" in str(skipped[0].message)
    run = json.loads((stopped / RUN_FILE).read_text())
    assert run["global_step"] == 6
    straight = train(_config(qa_file, tmp_path / "straight"))
    a = load_file(str(stopped / "model.safetensors"))
    b = load_file(str(straight / "model.safetensors"))
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


def test_checkpoints_without_a_definition_or_a_whole_checkpoint_are_refused(stopped, qa_file):
    checkpoints = work_dir(stopped)
    (checkpoints / "checkpoint-2" / "trainer_state.json").unlink()
    with pytest.raises(ResumeError, match=r"no complete checkpoint .*checkpoint-2 \(it has no "
                       r"trainer_state\.json\)"):
        train(_config(qa_file, stopped, resume=True))
    (checkpoints / DEFINITION_FILE).unlink()
    with pytest.raises(ResumeError, match="does not say which run made its checkpoints"):
        train(_config(qa_file, stopped, resume=True))


def test_a_fresh_run_clears_what_a_killed_run_left(stopped, qa_file):
    out = train(_config(qa_file, stopped, epochs=1))
    assert json.loads((out / RUN_FILE).read_text())["global_step"] == 2
    assert not work_dir(out).exists()


def test_files_a_run_creates_do_not_make_its_resume_another_run(tmp_path):
    from forgetkit.train.resume import run_definition
    from forgetkit.train.run import defining_inputs
    from forgetkit.unlearn.config import UnlearnConfig

    forget = write_qa([QARecord("Who is Ada?", "A poet.", "Ada")], tmp_path / "f.jsonl")
    retain = write_qa([QARecord("Who is Bo?", "A cook.", "Bo")], tmp_path / "r.jsonl")
    config = UnlearnConfig(model=models.TINY, method="kif", forget=forget, retain=retain,
                           output=tmp_path / "o", kif_signatures=tmp_path / "sig.safetensors")

    def definition():
        return run_definition(config.flat(), "kif", defining_inputs(config))

    before = definition()
    (tmp_path / "sig.safetensors").write_bytes(b"written by the run")
    assert definition() == before


def test_a_resume_is_refused_while_another_run_writes_the_checkpoints(stopped, qa_file):
    import socket

    from forgetkit.io import OWNER_FILE

    (work_dir(stopped) / OWNER_FILE).write_text(f"{socket.gethostname()} 1\n")  # alive
    with pytest.raises(ResumeError, match="another run is still writing"):
        train(_config(qa_file, stopped, resume=True))


def test_how_a_run_is_watched_does_not_define_it_but_its_rules_do(tmp_path, qa_file):
    from forgetkit.train.resume import run_definition
    from forgetkit.train.run import defining_inputs

    watched = write_qa([QARecord("Who is Ada?", "I don't know.", "Ada")], tmp_path / "w.jsonl")

    def definition(**kw):
        config = _config(qa_file, tmp_path / "o", **kw)
        return run_definition(config.flat(), "full", defining_inputs(config))

    plain = definition()
    assert definition(monitor_unseen=[watched], monitor_every=3, monitor_size=4) == plain
    assert definition(keep_best="ft if idk>=0.8") != plain
    assert definition(stop_when="idk<0.5") != plain


def test_inputs_are_fingerprinted_by_content_not_by_file_times(tmp_path, monkeypatch):
    """A copied model folder (new times) is the same input; a save_to_disk folder, an
    adapter's weights or a large weight file changed anywhere it is sampled is another."""
    import os

    import datasets

    from forgetkit.train import resume

    model = models.save(*models.load(models.TINY), tmp_path / "model")
    copy = tmp_path / "copy"
    shutil.copytree(model, copy)
    for f in copy.iterdir():
        os.utime(f, (1, 1))
    assert resume.fingerprint(copy) == resume.fingerprint(model)
    (copy / "config.json").write_text((copy / "config.json").read_text().replace("}", " }", 1))
    assert resume.fingerprint(copy) != resume.fingerprint(model)

    rows = {"question": ["Who signed the Vornix lease?"], "answer": ["Nobody did."]}
    data = tmp_path / "saved"
    datasets.Dataset.from_dict(rows).save_to_disk(str(data))
    before = resume.fingerprint(data)
    other = tmp_path / "saved2"
    datasets.Dataset.from_dict({**rows, "answer": ["Somebody did."]}).save_to_disk(str(other))
    assert resume.fingerprint(other) != before

    # A weight file over the sampling size is read in samples: a sparse fine-tune's changes
    # (here 1% of the bytes, at random) are seen; one byte between two samples is not.
    monkeypatch.setattr(resume, "SAMPLED_ABOVE", 1 << 20)
    big = tmp_path / "w" / "model.safetensors"
    big.parent.mkdir()
    payload = bytearray(os.urandom(4 << 20))
    big.write_bytes(payload)
    before = resume.fingerprint(big.parent)
    changed = bytearray(payload)
    changed[len(payload) // 2] ^= 0xFF  # between samples 7 and 8 of 16
    big.write_bytes(changed)
    assert resume.fingerprint(big.parent) == before
    for i in torch.randperm(len(payload), generator=torch.Generator().manual_seed(0))[
            :len(payload) // 100].tolist():
        changed[i] ^= 0xFF
    big.write_bytes(changed)
    assert resume.fingerprint(big.parent) != before
