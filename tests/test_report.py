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


def _curve(ft_end, chosen, stopped=None, keep_best=None, met=None):
    points = [{"step": s, "ft": ft_end * s / 8, "idk/unverifiable": 1 - s / 16,
               "idk/heldout_contracts": 1 - s / 10, "idk": 1 - s / 13, "known": 0.8,
               "kl": 0.01 * s} for s in (0, 4, 8)]
    return {"measures": ["ft", "idk", "idk/unverifiable", "idk/heldout_contracts", "known",
                         "kl"], "points": points, "sets": {"train": 8, "known": 8},
            "keep_best": keep_best, "keep_best_met": met, "stop_when": None,
            "stopped_at": stopped, "chosen_step": chosen}


def test_the_monitor_curves_are_drawn_with_the_kept_point_in_a_table(tmp_path):
    results = _results()
    results["curves"] = {"contracts/full": _curve(1.0, 8),
                         "contracts/seat": _curve(0.9, 4, keep_best="ft if idk>=0.7", met=True)}
    render_results(results, tmp_path)
    md = (tmp_path / "results.md").read_text()
    assert (tmp_path / "curves_contracts.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "![curves](curves_contracts.png)" in md and "curves_authors.png" not in md
    table = md.split("### While training")[1]
    # per run: the kept step and the measures there; the pooled IDK gives way to per-file
    assert "| full | 8 | 1.000 | 0.500 | 0.200 | 0.800 | 0.080 | last step |" in table
    assert "| seat | 4 | 0.450 | 0.750 | 0.600 | 0.800 | 0.040 | keep-best ft if idk>=0.7 |" \
        in table
