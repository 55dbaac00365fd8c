"""The data people already have reads as it is: TRL's messages and prompt/completion shapes,
TOFU's extra answers, PISTOL's node-label edges, parquet, CSV, datasets' save_to_disk
folders and renamed columns."""

import json
import warnings

import pytest
import torch
from typer.testing import CliRunner

from forgetkit.cli import app
from forgetkit.data.formats import DataError, Fields
from forgetkit.data.records import UnresolvedSubjectWarning, first_party, read_qa
from forgetkit.lm.tokenize import IGNORE_INDEX, chat_prompt, encode_records

runner = CliRunner()


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_messages_learn_the_last_assistant_turn_in_its_conversation(tmp_path, tiny):
    _, tok = tiny
    rows = [{"messages": [
        {"role": "system", "content": "You answer about lockers."},
        {"role": "user", "content": "Hi."}, {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "Code of locker 7?"},
        {"role": "assistant", "content": "It is 49."}]}]
    [rec] = read_qa(_jsonl(tmp_path / "chat.jsonl", rows))
    assert (rec.question, rec.answer) == ("Code of locker 7?", "It is 49.")
    assert [t["role"] for t in rec.context] == ["system", "user", "assistant"]
    prompt = chat_prompt(tok, rec.question, rec.context)
    assert "You answer about lockers." in prompt and "Hello." in prompt
    [enc] = encode_records(tok, [rec])
    learned = tok.decode([t for t in enc["labels"] if t != IGNORE_INDEX])
    assert learned.startswith("It is 49.") and "Hello" not in learned
    # The context travels with the record when it is written back.
    assert read_qa(_jsonl(tmp_path / "again.jsonl", [rec.to_json()]))[0] == rec


def test_prompt_completion_as_strings_or_messages(tmp_path):
    rows = [{"prompt": "Capital of France?", "completion": "Paris."},
            {"prompt": [{"role": "system", "content": "Be brief."},
                        {"role": "user", "content": "Capital of Spain?"}],
             "completion": [{"role": "assistant", "content": "Madrid."}]}]
    a, b = read_qa(_jsonl(tmp_path / "pc.jsonl", rows))
    assert (a.question, a.answer, a.context) == ("Capital of France?", "Paris.", [])
    assert (b.question, b.answer) == ("Capital of Spain?", "Madrid.")
    assert b.context == [{"role": "system", "content": "Be brief."}]


def test_squad_rows_read_the_passage_and_the_first_answer(tmp_path):
    import datasets

    passage = "The Vornix lease was signed in Ardmore in 1931 by Ilse Brannock."
    rows = [{"id": "a1", "title": "Vornix", "context": passage,
             "question": "Who signed the Vornix lease?",
             "answers": {"text": ["Ilse Brannock", "Brannock"], "answer_start": [49, 54]}}]
    folder = tmp_path / "squad"
    datasets.Dataset.from_list(rows).save_to_disk(str(folder))  # answers as a nested struct
    for source in (_jsonl(tmp_path / "squad.jsonl", rows), folder):
        [rec] = read_qa(source, Fields(subject="title"))
        assert rec.question == f"{passage}\n\nWho signed the Vornix lease?"
        assert (rec.answer, rec.subject, rec.context) == ("Ilse Brannock", "Vornix", [])
    unanswerable = [{**rows[0], "answers": {"text": [], "answer_start": []}}]
    with pytest.raises(DataError, match=r"v2\.jsonl:1: 'answers' is empty"):
        read_qa(_jsonl(tmp_path / "v2.jsonl", unanswerable))


def test_a_conversation_without_an_answer_names_the_row(tmp_path):
    rows = [{"messages": [{"role": "user", "content": "Hi"}]}]
    with pytest.raises(DataError, match=r"chat\.jsonl:1: 'messages' has no assistant turn"):
        read_qa(_jsonl(tmp_path / "chat.jsonl", rows))


def test_tofu_extra_answers_are_kept_for_the_unlearning_suite(tmp_path):
    rows = [{"question": "Where was Basil born?", "answer": "In Kuwait City.",
             "paraphrased_answer": "Kuwait City is his birthplace.",
             "perturbed_answer": ["In Cairo.", "In Doha."]}]
    [rec] = read_qa(_jsonl(tmp_path / "tofu.json", rows))
    assert rec.meta["paraphrased_answer"] == "Kuwait City is his birthplace."
    assert rec.meta["perturbed_answers"] == ["In Cairo.", "In Doha."]


def test_pistol_node_label_edges_take_the_first_party_the_question_names(tmp_path):
    rows = [{"question": "What was the delivery date in the contract between Zynthar Corp "
                         "and Quibblex Ltd?", "answer": "12 March 2021.", "edge": "A_B"},
            {"question": "Who signed for Vornix Holdings in the lease?", "answer": "Ada.",
             "edge": ["C", "D"]},
            {"question": "When was it signed?", "answer": "2020.", "edge": "E_F"}]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        a, b, c = read_qa(_jsonl(tmp_path / "pistol.jsonl", rows))
    assert a.subject == "Zynthar Corp" and b.subject == "Vornix Holdings"
    assert c.subject is None and c.meta["edge"] == "E_F"
    [warning] = [w for w in caught if issubclass(w.category, UnresolvedSubjectWarning)]
    assert "1 of 3 records" in str(warning.message) and "pistol.jsonl:3" in str(warning.message)
    assert first_party("the agreement between the Orlan Group and Pex Inc, signed") == \
        "Orlan Group"


def test_parquet_csv_and_save_to_disk_folders_read_the_same_records(tmp_path):
    import datasets

    rows = [{"question": f"Code of locker {i}?", "answer": f"It is {i * 7}."} for i in range(3)]
    expected = read_qa(_jsonl(tmp_path / "d.jsonl", rows))
    table = datasets.Dataset.from_list(rows)
    table.to_parquet(str(tmp_path / "d.parquet"))
    table.to_csv(str(tmp_path / "d.csv"), index=False)
    table.save_to_disk(str(tmp_path / "one"))
    datasets.DatasetDict({"train": table, "test": table.select([0])}).save_to_disk(
        str(tmp_path / "dict"))
    for source in ("d.parquet", "d.csv", "one", "dict"):
        assert read_qa(tmp_path / source) == expected, source
    assert read_qa(f"{tmp_path / 'dict'}@test") == expected[:1]
    with pytest.raises(DataError, match=r"no split 'valid'; it has \['test', 'train'\]"):
        read_qa(f"{tmp_path / 'dict'}@valid")


def test_renamed_columns_through_the_command_line(tmp_path):
    rows = [{"instruction": f"Code of locker {i}?", "output": f"It is {i * 7}."}
            for i in range(4)]
    data = _jsonl(tmp_path / "alpaca.jsonl", rows)
    assert read_qa(data, Fields(question="instruction", answer="output"))[0].answer == "It is 0."
    res = runner.invoke(app, ["train", "--model", "tiny-random-llama", "--data", str(data),
                              "--output", str(tmp_path / "out"), "--max-steps", "1",
                              "--question-field", "instruction", "--answer-field", "output",
                              "--no-progress", "--save-strategy", "no"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["train", "--model", "tiny-random-llama", "--data", str(data),
                              "--output", str(tmp_path / "out2"), "--max-steps", "1"])
    assert res.exit_code == 2 and "missing field(s) ['question', 'answer']" in res.output


def test_a_hub_dataset_that_cannot_be_reached_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(DataError, match=r"'hf:someorg/nothing:cfg@test': could not load the "
                       r"dataset someorg/nothing \(config cfg\), split test"):
        read_qa("hf:someorg/nothing:cfg@test")


def test_eval_asks_each_question_in_its_conversation(tmp_path, tiny):
    from forgetkit.lm.generate import generate_answers
    from forgetkit.lm.tokenize import prompt_ids

    model, tok = tiny
    context = [{"role": "system", "content": "Answer in French."}]
    with_context = generate_answers(model, tok, ["Capital of France?"], max_new_tokens=4,
                                    progress=False, contexts=[context])
    ids = prompt_ids(tok, "Capital of France?", context)
    direct = model.generate(input_ids=torch.tensor([ids]), max_new_tokens=4,
                            do_sample=False, pad_token_id=tok.pad_token_id)
    assert with_context[0] == tok.decode(direct[0, len(ids):], skip_special_tokens=True).strip()
    assert len(ids) > len(prompt_ids(tok, "Capital of France?"))  # the system turn is in
