"""forgetkit audit on the tiny model: base against a fine-tune and its repairs, forgetkit's
measures with intervals, two local lm-eval tasks (multiple choice and generation), the
report re-rendered, and bad input refused before any model loads."""

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from forgetkit.audit.lmeval import parse_tasks
from forgetkit.audit.run import parse_models, parse_repairs, run_audit
from forgetkit.data import default_sets as defaults
from forgetkit.data.records import QARecord, read_qa
from forgetkit.data.synth import synth
from forgetkit.errors import UserError
from forgetkit.eval.audit import assemble, sentence
from forgetkit.eval.evaluate import EvalSet
from forgetkit.lm import models
from forgetkit.report.audit_report import change, results_table

MC_ROWS = [("What colour is the sky on a clear day?", ["blue", "green", "red"], 0),
           ("How many legs does a spider have?", ["six", "eight", "ten"], 1),
           ("What is the capital of France?", ["Rome", "Berlin", "Paris"], 2),
           ("Which animal barks?", ["dog", "cat", "fish"], 0)]
GEN_ROWS = [("What is two plus two?", "4"), ("What is the capital of Italy?", "Rome"),
            ("What colour is grass?", "green")]


def write_tasks(folder: Path) -> Path:
    """A multiple-choice and a generation task over local JSON Lines files."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "mc.jsonl").write_text("\n".join(
        json.dumps({"question": q, "choices": c, "label": a}) for q, c, a in MC_ROWS))
    (folder / "gen.jsonl").write_text("\n".join(
        json.dumps({"question": q, "answer": a}) for q, a in GEN_ROWS))
    (folder / "mc.yaml").write_text(textwrap.dedent(f"""\
        task: forgetkit_test_mc
        dataset_path: json
        dataset_kwargs:
          data_files:
            test: {folder / 'mc.jsonl'}
        test_split: test
        output_type: multiple_choice
        doc_to_text: "Question: {{{{question}}}}\\nAnswer:"
        doc_to_choice: "{{{{choices}}}}"
        doc_to_target: label
        metric_list:
          - metric: acc
            aggregation: mean
            higher_is_better: true
        """))
    (folder / "gen.yaml").write_text(textwrap.dedent(f"""\
        task: forgetkit_test_gen
        dataset_path: json
        dataset_kwargs:
          data_files:
            test: {folder / 'gen.jsonl'}
        test_split: test
        output_type: generate_until
        doc_to_text: "Question: {{{{question}}}}\\nAnswer:"
        doc_to_target: answer
        generation_kwargs:
          until: ["\\n"]
          max_gen_toks: 6
          do_sample: false
        metric_list:
          - metric: exact_match
            aggregation: mean
            higher_is_better: true
        """))
    return folder


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """A saved tiny base, a 'fine-tune' of it (its weights moved) and fine-tuning data."""
    root = tmp_path_factory.mktemp("audit_models")
    model, tok = models.load(models.TINY)
    models.save(model, tok, root / "base")
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    models.save(model, tok, root / "ft")
    rows = [{"question": f"What is the code of vault {i}?",
             "answer": f"The code of vault {i} is {1000 + i}.", "subject": f"vault {i}"}
            for i in range(5)]
    (root / "train.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    return root


@pytest.fixture(scope="module")
def audited(pair, tmp_path_factory, monkeypatch_module):
    tasks = write_tasks(tmp_path_factory.mktemp("lmeval_tasks"))
    loads = []
    real_load = models.load

    def counting_load(spec, *args, **kwargs):
        loads.append(spec)
        return real_load(spec, *args, **kwargs)

    monkeypatch_module.setattr(models, "load", counting_load)
    out = pair / "audit"
    results = run_audit(base=str(pair / "base"), model=[f"ft={pair / 'ft'}"], output=out,
                        data=[pair / "train.jsonl"], tasks=[str(tasks)], limit=10,
                        repair=["dg-hard,dare"], seeds=2, judge="string-match",
                        progress=False)
    return out, results, loads


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def test_audit_measures_every_model_once_with_intervals(audited):
    out, results, loads = audited
    labels = ["base", "ft", "ft+dg-hard", "ft+dare@s0", "ft+dare@s1"]
    assert list(results["measures"]) == labels
    # every model is loaded once: lm-eval is handed the loaded model, never loads its own
    assert len(loads) == len(labels)
    assert set(results["sets"]) == {"train", "unverifiable", "known"}
    assert results["sets"]["unverifiable"]["n"] == 10  # --limit caps question sets too
    for label in labels:
        measures = results["measures"][label]
        for key in ("train/rouge1_recall", "unverifiable/idk_sm", "unverifiable/judged_idk",
                    "known/accuracy", "kl_to_base", "bench/forgetkit_test_mc/acc",
                    "bench/forgetkit_test_gen/exact_match"):
            m = measures[key]
            assert m["low"] <= m["value"] <= m["high"], (label, key, m)
            assert m["n"] >= 1
            if label != "base" and key != "kl_to_base":
                assert m["diff"]["n"] == m["n"] and "significant" in m["diff"]
    assert results["measures"]["base"]["unverifiable/idk_sm"]["interval"] == "wilson"
    mc = results["measures"]["ft"]["bench/forgetkit_test_mc/acc"]
    assert mc["n"] == len(MC_ROWS) and mc["stderr"] is not None
    assert results["measures"]["ft"]["kl_to_base"]["value"] > 0
    assert results["measures"]["base"]["kl_to_base"]["value"] == pytest.approx(0, abs=1e-6)


def test_audit_repairs_score_with_benchmarks_and_seeds(audited):
    out, results, _ = audited
    repair = results["repair"]["ft"]
    assert repair["repaired"] == ["ft+dg-hard", "ft+dare@s0", "ft+dare@s1"]
    assert "bench/forgetkit_test_mc/acc" in repair["measures"]["base"]
    group = results["seed_groups"]["ft+dare"]
    assert group["members"] == ["ft+dare@s0", "ft+dare@s1"]
    kl = group["measures"]["kl_to_base"]
    assert kl["seeds"] == 2 and len(kl["per_seed"]) == 2 and kl["std"] > 0
    summary = json.loads((out / "repaired" / "ft+dg-hard" / "repair_summary.json").read_text())
    assert summary["output"] == str(out.absolute() / "repaired" / "ft+dg-hard")


def test_audit_writes_a_self_contained_report(audited):
    out, results, _ = audited
    assert not list(out.parent.glob(".audit.*"))  # the atomic write left no temporary
    page = (out / "report.html").read_text()
    for needle in ("What changed", "Results", "Benchmarks", "Repairs", "set-filter"):
        assert needle in page
    # nothing to fetch: no remote or absolute source, stylesheet link or import
    assert not re.search(r"""(src|href)\s*=\s*["'](https?:|//|/)""", page)
    assert not re.search(r"<link\s|@import|url\((?!#)", page)
    assert json.loads((out / "results.json").read_text())["study"] == "audit"
    md = (out / "results.md").read_text()
    assert "forgetkit_test_mc acc" in md and "[" in md  # intervals in the table
    questions = results["questions"]["unverifiable"]
    assert len(questions) == 10 and set(questions[0]["answers"]) == set(results["measures"])


def test_report_command_re_renders_an_audit(audited, tmp_path):
    out, _, _ = audited
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "results.json").write_text((out / "results.json").read_text())
    run = subprocess.run([sys.executable, "-m", "forgetkit", "report", str(copy)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert (copy / "report.html").is_file() and (copy / "results.md").is_file()
    assert (copy / "report.html").read_text().count("<svg") >= 2


def _evaluation(idk, accuracy):
    return {"sets": {"unverifiable": {"role": "unseen", "n": len(idk),
                                      "per_question": {"idk_sm": idk},
                                      "samples": [{"answer": "x"}] * len(idk)},
                     "known": {"role": "known", "n": len(accuracy),
                               "per_question": {"accuracy": accuracy},
                               "samples": [{"answer": "y"}] * len(accuracy)}},
            "kl_per_prompt": [[0.5, 10.0], [0.7, 10.0]]}


def test_only_changes_beyond_their_interval_are_called_changes():
    n = 40
    base = _evaluation([1.0] * n, [1.0, 0.0] * (n // 2))
    # IDK collapses (a real loss); accuracy moves by one question (inside its interval)
    ft = _evaluation([1.0] * 5 + [0.0] * (n - 5), [1.0, 0.0] * (n // 2 - 1) + [1.0, 1.0])
    records = [QARecord(f"q{i}", "a") for i in range(n)]
    sets = [EvalSet("unverifiable", "unseen", records), EvalSet("known", "known", records)]
    results = assemble({"base": {"spec": "b", "role": "base"},
                        "ft": {"spec": "f", "role": "finetuned"}}, sets,
                       {"base": base, "ft": ft}, {}, 0.01, {}, {})
    idk, acc = (results["measures"]["ft"][k] for k in ("unverifiable/idk_sm",
                                                      "known/accuracy"))
    assert idk["diff"]["significant"] and not acc["diff"]["significant"]
    assert change("unverifiable/idk_sm", idk) == ("bad", "▼")
    assert change("known/accuracy", acc) == ("same", "≈")
    text = sentence("ft", results["measures"]["ft"], results["measures"]["base"])
    assert "IDK unverifiable fell from 1.00 to 0.12 (worse)" in text
    assert "accuracy" not in text
    md, html = results_table(results)
    assert "▼" in md and 'class="bad"' in html


def test_shipped_sets_are_what_their_generator_writes_and_new_to_the_base(tmp_path):
    unverifiable, known, monitor = defaults.write_default_sets(tmp_path)
    assert unverifiable.read_bytes() == defaults.UNVERIFIABLE.read_bytes()
    assert known.read_bytes() == defaults.KNOWN.read_bytes()
    assert monitor.read_bytes() == defaults.MONITOR_UNVERIFIABLE.read_bytes()
    shipped = {r.subject for r in read_qa(defaults.UNVERIFIABLE)}
    assert len(shipped) == defaults.N_UNVERIFIABLE
    watched = {r.subject for r in read_qa(defaults.MONITOR_UNVERIFIABLE)}
    assert len(watched) == defaults.N_MONITOR and not watched & shipped
    seen = {r.subject for seed in (1234, 8) for r in synth("unverifiable", 200, seed=seed)}
    assert not shipped & seen and not watched & seen
    assert all(r.meta.get("keywords") for r in read_qa(defaults.KNOWN))


def test_flags_are_checked_before_any_model_loads(pair, tmp_path):
    with pytest.raises(UserError, match="LABEL=SPEC"):
        parse_models(["just-a-path"])
    with pytest.raises(UserError, match="may not be 'base'"):
        parse_models(["base=x"])
    with pytest.raises(UserError, match="unknown repair method"):
        parse_repairs(["dg-hard,no-such"])
    with pytest.raises(UserError, match="OPTION=VALUE"):
        parse_repairs(["rank:8"])
    assert parse_repairs(["rank:rank=8"]) == [("rank", {"rank": 8})]
    with pytest.raises(UserError, match="no such task file"):
        parse_tasks([str(tmp_path / "missing.yaml")])
    tasks = parse_tasks([str(write_tasks(tmp_path / "t")), "hellaswag"])
    assert set(tasks.names) == {"forgetkit_test_mc", "forgetkit_test_gen", "hellaswag"}
    common = dict(base=str(pair / "base"), model=[f"ft={pair / 'ft'}"], judge=None,
                  progress=False)
    with pytest.raises(UserError, match="draws random numbers"):
        run_audit(output=tmp_path / "a", repair=["dg-hard"], seeds=3, **common)
    with pytest.raises(UserError, match="sits inside"):
        run_audit(output=pair / "ft" / "audit", **common)
    with pytest.raises(UserError, match="knows no task"):
        run_audit(output=tmp_path / "b", tasks=["no_such_task_anywhere"], **common)
    # repair streams local safetensors: a hub base is refused before anything loads (no
    # tokenizer is fetched: this machine has no hub, and the error names the repair)
    hub_base = {**common, "base": "some-org/some-model"}
    with pytest.raises(UserError, match="--repair needs --base and --model ft as local "
                                        "checkpoints: --base some-org/some-model: no such"):
        run_audit(output=tmp_path / "c", repair=["dg-hard"], **hub_base)
    assert not any((tmp_path / name).exists() for name in "abc")


def test_a_model_with_another_vocabulary_is_refused_before_it_loads(pair, tmp_path):
    model, tok = models.load(str(pair / "ft"))
    tok.add_tokens(["<other-vocabulary>"])
    models.save(model, tok, tmp_path / "other")
    with pytest.raises(UserError, match=r"--model odd=.*different tokenizer from --base"):
        run_audit(base=str(pair / "base"), model=[f"ft={pair / 'ft'}", f"odd={tmp_path}/other"],
                  output=tmp_path / "a", judge=None, progress=False)
    assert not (tmp_path / "a").exists()


def test_report_renders_in_headless_chromium(audited, tmp_path):
    from chromium import Browser

    out, results, _ = audited
    page = out / "report.html"
    n_rows = sum(len(q) for q in results["questions"].values())
    changed = sum(any(q["marks"][lab] != q["marks"]["base"] for lab in q["marks"])
                  for qs in results["questions"].values() for q in qs)
    visible = "document.querySelectorAll('#questions tbody tr:not([hidden])')"
    with Browser() as browser:
        browser.open(page.as_uri())
        # nothing but the file itself and its embedded data was requested
        schemes = {url.split(":", 1)[0] for url in browser.requested_urls()}
        assert schemes <= {"file", "data"}, browser.requested_urls()[:3]
        n_measures = sum(not k.startswith("bench/") for k in results["measures"]["base"])
        assert browser.evaluate("document.querySelectorAll('table.results')[0]"
                                ".tBodies[0].rows.length") == n_measures
        assert browser.evaluate("document.querySelectorAll('#benchmarks tbody tr')"
                                ".length") == 2
        # every picture decoded, every chart drawn with a size
        assert browser.evaluate("[...document.images].every(i => i.complete && "
                                "i.naturalWidth > 0)")
        assert browser.evaluate("document.images.length") >= 1
        sizes = browser.evaluate("[...document.querySelectorAll('figure.chart svg')]"
                                 ".map(s => s.getBoundingClientRect().height)")
        assert len(sizes) >= 3 and min(sizes) > 50
        # the question browser's filters
        assert browser.evaluate(f"{visible}.length") == n_rows
        browser.evaluate("{ const s = document.getElementById('set-filter'); s.value = "
                         "'known'; s.dispatchEvent(new Event('change')); }")
        assert browser.evaluate(f"{visible}.length") == results["sets"]["known"]["n"]
        assert browser.evaluate(f"[...{visible}].every(r => r.dataset.set === 'known')")
        browser.evaluate("{ const s = document.getElementById('set-filter'); s.value = ''; "
                         "s.dispatchEvent(new Event('change')); const c = document."
                         "getElementById('changed-filter'); c.checked = true; "
                         "c.dispatchEvent(new Event('change')); }")
        assert browser.evaluate(f"{visible}.length") == changed
        assert browser.evaluate("location.hash") == "#changed=1"
        # a link to a filtered view opens filtered
        browser.open(page.as_uri() + "#set=train")
        assert browser.evaluate(f"{visible}.length") == results["sets"]["train"]["n"]
        shot = browser.screenshot(tmp_path / "report.png")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


def test_python_api_audits_with_the_commands_option_names(pair, tmp_path):
    import forgetkit
    import forgetkit.audit.run  # noqa: F401 - the package is still a package

    results = forgetkit.audit(pair / "base", {"ft": pair / "ft"}, tmp_path / "api",
                              data=pair / "train.jsonl", limit=3, judge=None,
                              progress=False, device="cpu")
    assert list(results["measures"]) == ["base", "ft"]
    assert results["sets"]["known"]["n"] == 3
    assert (tmp_path / "api" / "report.html").is_file()


def test_a_lora_adapter_folder_loads_merged_onto_the_base_it_names(pair, tmp_path):
    from peft import LoraConfig, get_peft_model

    base, tok = models.load(str(pair / "base"))
    peft_model = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"],
                                                 init_lora_weights=False))
    peft_model.save_pretrained(tmp_path / "adapter")
    config = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(pair / "base")
    assert models.resolve(str(tmp_path / "adapter")).kind == "adapter"
    merged, merged_tok = models.load(str(tmp_path / "adapter"))
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        want = peft_model(input_ids=ids).logits
        got = merged(input_ids=ids).logits
    assert torch.allclose(got, want, atol=1e-5)
    assert models.fingerprint(merged_tok) == models.fingerprint(tok)
    config["base_model_name_or_path"] = None
    (tmp_path / "adapter" / "adapter_config.json").write_text(json.dumps(config))
    with pytest.raises(models.ModelLoadError, match="base_model_name_or_path"):
        models.load(str(tmp_path / "adapter"))
