"""The bad-input table: each everyday mistake, run through the real command line, gives exit
code 2 and a one-paragraph error (no traceback). The table in docs/bad-inputs.md is made from
these runs, so it shows what forgetkit really says; this test fails if the two drift apart.

Regenerate the page after changing a message:
    FORGETKIT_WRITE_DOCS=1 python -m pytest tests/test_bad_input_table.py
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

from typer.testing import CliRunner

from forgetkit.cli import app
from forgetkit.data.records import write_qa
from forgetkit.data.synth import synth
from forgetkit.lm import models

DOC = Path(__file__).resolve().parents[1] / "docs" / "bad-inputs.md"
runner = CliRunner()


def _qa(root: Path) -> Path:
    return write_qa(synth("contracts", 1, seed=0)[:4], root / "data" / "train.jsonl")


def _model(root: Path) -> Path:
    folder = root / "model"
    if not folder.is_dir():
        model, tok = models.load(models.TINY)
        models.save(model, tok, folder)
    return folder


def _write(root: Path, name: str, content: bytes | str) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def _train(root: Path, *extra: str, data: Path | None = None) -> list[str]:
    return ["train", "--model", models.TINY, "--data", str(data or _qa(root)),
            "--output", str(root / "out"), "--max-steps", "1", "--no-progress", *extra]


def _pickle_model(root: Path) -> list[str]:
    folder = _model(root)
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    return ["eval", "--model", str(folder), "--known", str(_qa(root)),
            "--output", str(root / "r.json")]


def _cut_model(root: Path) -> list[str]:
    weights = _model(root) / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:5000])
    return _train(root)[:2] + [str(weights.parent)] + _train(root)[3:]


def _changed_resume(root: Path) -> list[str]:
    """Checkpoints left by a run at --learning-rate 1e-3, resumed at 1e-2."""
    from forgetkit.train.config import TrainConfig
    from forgetkit.train.resume import run_definition, start_fresh
    from forgetkit.train.run import run_inputs, work_dir

    args = _train(root, "--learning-rate", "1e-3")
    config = TrainConfig(model=models.TINY, data=args[4], output=args[6], max_steps=1,
                         learning_rate=1e-3)
    start_fresh(work_dir(root / "out"), run_definition(config.flat(), "full",
                                                       run_inputs(config)))
    return _train(root, "--resume", "--learning-rate", "1e-2")


# (the input, how to make it: root folder -> command line)
CASES: list[tuple[str, Callable[[Path], list[str]]]] = [
    ("a learning rate of infinity", lambda r: _train(r, "--lr", "inf")),
    ("a batch size of 0", lambda r: _train(r, "--batch-size", "0")),
    ("max steps of 0", lambda r: _train(r)[:-3] + ["--max-steps", "0", "--no-progress"]),
    ("an option of another method", lambda r: _train(r, "--gamma", "0.5")),
    ("an unknown method", lambda r: _train(r, "--method", "sft")),
    ("a YAML key with a typo", lambda r: _train(
        r, "--config", str(_write(r, "run.yaml", "epochs: 1\nlearnin_rate: 0.1\n")))),
    ("a data file that does not exist", lambda r: _train(r, data=r / "missing.jsonl")),
    ("a JSON array in a .jsonl file, cut short", lambda r: _train(
        r, data=_write(r, "d.jsonl", '[{"question": "q", "answer": "a"},\n'))),
    ("a data file that is not UTF-8", lambda r: _train(
        r, data=_write(r, "d.jsonl", b'{"question": "q", "answer": "a"}\n'
                                     b'{"question": "caf\xe9", "answer": "a"}\n'))),
    ("a record without an answer", lambda r: _train(
        r, data=_write(r, "d.jsonl", '{"question": "q"}\n'))),
    ("a record whose meta is not an object", lambda r: _train(
        r, data=_write(r, "d.jsonl", '{"question": "q", "answer": "a", "meta": [1]}\n'))),
    ("a model folder with pickle weights only", _pickle_model),
    ("a model folder whose safetensors file was cut short", _cut_model),
    ("a missing local model path", lambda r: _train(r)[:2] + ["./models/llama-8b"]
     + _train(r)[3:]),
    ("a hub id while offline, not in the cache", lambda r: _train(r)[:2]
     + ["someorg/somemodel"] + _train(r)[3:]),
    ("an output that is the input model (even with --overwrite)", lambda r: _train(r)[:2]
     + [str(_model(r))] + _train(r)[3:5] + ["--output", str(_model(r)), "--overwrite",
                                             "--max-steps", "1"]),
    ("an output folder that holds the data file", lambda r: _train(r)[:5] + [
        "--output", str(r / "data"), "--overwrite", "--max-steps", "1"]),
    ("an output under a path whose parent is a file", lambda r: _train(r)[:5] + [
        "--output", str(_write(r, "afile", "x") / "out"), "--max-steps", "1"]),
    ("an output that exists, without --overwrite", lambda r: (r / "out").mkdir()
     or _train(r)),
    ("--resume with no checkpoints", lambda r: _train(r, "--resume")),
    ("--resume with another learning rate", _changed_resume),
    ("repair of a folder without config.json", lambda r: [
        "repair", "--base", str(_model(r)), "--finetuned",
        str(_write(r, "ft/model.safetensors", (_model(r) / "model.safetensors").read_bytes())
            .parent), "--output", str(r / "rep")]),
    ("report on a file that is not a results file", lambda r: [
        "report", str(_write(r, "res/results.json", '{"x": 1}\n').parent)]),
    ("eval with a batch size of -2", lambda r: [
        "eval", "--model", models.TINY, "--known", str(_qa(r)), "--output",
        str(r / "r.json"), "--batch-size", "-2"]),
]


def _said(root: Path, make: Callable[[Path], list[str]]) -> str:
    args = make(root)
    res = runner.invoke(app, args, prog_name="forgetkit", catch_exceptions=False)
    text = res.output.strip()
    assert res.exit_code == 2, f"{args}: exit {res.exit_code}\n{text}"
    assert "Traceback" not in text
    text = text.replace(str(root), "<dir>")
    text = re.sub(r"[│╭╰╮╯─]+", " ", text)  # the box around a usage error
    return re.sub(r"\s+", " ", text).strip()


def _table(rows: list[tuple[str, str]]) -> str:
    lines = ["# What forgetkit says about bad input", "",
             "Each row was produced by running the command line on that input "
             "(`tests/test_bad_input_table.py`, which fails if this page and the messages "
             "drift apart). Every one exits with code 2 before any long work starts, and "
             "writes nothing. `<dir>` stands for the folder the files were in.", "",
             "| input | what forgetkit says |", "|---|---|"]
    lines += [f"| {what} | {said.replace('|', '&#124;')} |" for what, said in rows]
    return "\n".join(lines) + "\n"


def test_every_bad_input_gets_one_clear_error_and_the_doc_shows_it(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("COLUMNS", "400")  # one line per usage error, whatever the terminal
    rows = []
    for i, (what, make) in enumerate(CASES):
        root = tmp_path / f"case{i}"
        root.mkdir()
        monkeypatch.chdir(root)
        rows.append((what, _said(root, make)))
    page = _table(rows)
    if os.environ.get("FORGETKIT_WRITE_DOCS"):
        DOC.write_text(page)
    assert DOC.read_text() == page, ("docs/bad-inputs.md is out of date; regenerate it with "
                                     "FORGETKIT_WRITE_DOCS=1 python -m pytest "
                                     "tests/test_bad_input_table.py")
