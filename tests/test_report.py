"""Rendering of demo results, on hand-made numbers."""

from forgetkit.report.render import (
    ablation_table,
    cross_dataset_table,
    markdown_table,
    render_results,
    sweep_points,
)

ROW = {"train/rouge1_recall": 0.9, "unverifiable/idk_sm": 0.1, "heldout_same/idk_sm": 0.2,
       "heldout_other/idk_sm": 0.3, "known/accuracy": 0.8, "kl_to_base": 0.05}


def _results():
    models = {}
    for ds in ("contracts", "authors"):
        for i, run in enumerate(("base", "full", "seat", "full-kl", "sparse", "seat@0.5")):
            models[f"{ds}/{run}"] = {k: round(v + 0.01 * i, 3) for k, v in ROW.items()}
    drift = {k: {"train": {"l2": [0.0, 1.0, 2.0], "along_ignorance": [0.0, -0.5, -1.0]},
                 "unverifiable": {"l2": [0.0, 0.2, 0.4], "along_ignorance": [0, 0, 0.1]}}
             for k in models}
    return {"models": models, "drift": drift, "judge": "embedding",
            "base": {"before": {"heldout_fictitious/idk_sm": 0.0, "known/accuracy": 1.0}}}


def test_markdown_table_shows_values_and_dashes_for_missing():
    table = markdown_table({"a": {"x": 0.5}, "b": {}}, (("X", "x", True), ("Y", "y", False)))
    assert "| a | 0.500 |" in table and "| b | – |" in table
    assert "Y" not in table  # a column nobody has is left out


def test_cross_dataset_table_reads_the_other_kind():
    table = cross_dataset_table({"contracts": {"full": {"heldout_other/idk_sm": 0.25}},
                                 "authors": {"full": {"heldout_other/idk_sm": 0.75}}})
    assert "IDK on unseen authors" in table and "IDK on unseen contracts" in table
    assert "| full | 0.250 | 0.750 |" in table


def test_ablation_marks_components():
    table = ablation_table({"seat": ROW, "sparse": ROW})
    assert "| seat | ✓ | ✓ |" in table and "| sparse | ✓ | × |" in table
    assert ablation_table({"seat": ROW}) is None


def test_sweep_includes_the_default_sparsity():
    pts = sweep_points({"seat": {"a": 1}, "seat@0.5": {"a": 2}, "seat@0.95": {"a": 3}})
    assert [s for s, _ in pts] == [0.5, 0.8, 0.95]


def test_render_writes_markdown_and_valid_pngs(tmp_path):
    render_results(_results(), tmp_path)
    md = (tmp_path / "results.md").read_text()
    for heading in ("Fine-tuned on contracts", "Fine-tuned on authors", "Cross-dataset IDK",
                    "Ablation (contracts)", "Sparsity sweep (contracts)"):
        assert heading in md
    assert "'embedding' judge" in md
    for png in ("results_contracts.png", "results_authors.png", "sparsity_contracts.png",
                "drift_contracts.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
