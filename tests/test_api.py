"""The Python API: forgetkit.train / unlearn / repair / evaluate with specs and paths, or
with a loaded model and in-memory data; the packages of the same names stay packages."""

import json

import datasets

from forgetkit.data.synth import synth
from forgetkit.lm import models


def test_the_four_entry_points_take_models_and_data_in_memory(tmp_path):
    import forgetkit.train.run  # noqa: F401 - the package is still a package

    model, tok = models.load(models.TINY)
    rows = datasets.Dataset.from_list([r.to_json() for r in synth("contracts", 1, seed=0)[:4]])
    out = forgetkit.train(model=model, tokenizer=tok, data=rows, output=tmp_path / "ft",
                          max_steps=2, batch_size=2, save_strategy="no", progress=False)
    run = json.loads((out / "forgetkit_run.json").read_text())
    assert run["global_step"] == 2 and run["n_examples"] == 4
    scores = forgetkit.evaluate(str(out), known=synth("known", 3, seed=0), max_new_tokens=4,
                                progress=False)
    assert scores["model"] == str(out) and scores["sets"]
    summary = forgetkit.repair(_saved_base(tmp_path), out, tmp_path / "rep", method="wise-ft")
    assert summary["method"] == "wise-ft" and (tmp_path / "rep" / "config.json").is_file()
    authors = synth("authors", 2, seed=1)
    first = authors[0].subject
    unlearned = forgetkit.unlearn(model=models.TINY, method="ga", output=tmp_path / "ga",
                                  forget=[r for r in authors if r.subject == first][:4],
                                  retain=[r for r in authors if r.subject != first][:4],
                                  max_steps=1, save_strategy="no", progress=False)
    assert (unlearned / "model.safetensors").is_file()


def _saved_base(tmp_path):
    folder = tmp_path / "base"
    model, tok = models.load(models.TINY)
    models.save(model, tok, folder)
    return folder
