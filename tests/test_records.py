import json

import pytest

from forgetkit.data.records import DataError, QARecord, read_qa, write_qa


def test_reads_jsonl_pistol_and_tofu_shapes(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(
        json.dumps({"question": "Q1?", "answer": "A1", "edge": ["Acme", "Borx"]}) + "\n"
        + "\n"  # blank lines are allowed
        + json.dumps({"question": "Q2?", "answer": "A2"}) + "\n"
        + json.dumps({"question": "Q3?", "answer": "A3", "subject": "Zed", "meta": {"k": 1}})
        + "\n")
    recs = read_qa(path)
    assert [r.subject for r in recs] == ["Acme", None, "Zed"]
    assert recs[0].meta["edge"] == ["Acme", "Borx"]
    assert recs[2].meta == {"k": 1}


def test_reads_json_list(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps([{"question": "Q?", "answer": "A"}]))
    assert read_qa(path) == [QARecord("Q?", "A")]


def test_malformed_line_names_file_and_line(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"question": "Q?", "answer": "A"}\n{"question": oops}\n')
    with pytest.raises(DataError, match=r"d\.jsonl:2: not valid JSON"):
        read_qa(path)


def test_missing_field_is_an_error(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"question": "Q?"}\n')
    with pytest.raises(DataError, match=r"d\.jsonl:1: missing field\(s\) \['answer'\]"):
        read_qa(path)


def test_empty_answer_is_an_error(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"question": "Q?", "answer": "  "}\n')
    with pytest.raises(DataError, match="'answer' must be a non-empty string"):
        read_qa(path)


def test_empty_dataset_is_an_error(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text("\n\n")
    with pytest.raises(DataError, match="empty"):
        read_qa(path)


def test_missing_file_is_an_error(tmp_path):
    with pytest.raises(DataError, match="no such data file"):
        read_qa(tmp_path / "nope.jsonl")


def test_write_then_read_round_trips(tmp_path):
    recs = [QARecord("Q?", "A", "S", {"x": [1, 2]}), QARecord("Q2?", "A2")]
    path = write_qa(recs, tmp_path / "sub" / "out.jsonl")
    assert read_qa(path) == recs
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temp left


def test_json_lines_or_array_is_decided_by_content_not_name(tmp_path):
    lines = tmp_path / "lines.json"  # JSON Lines under a .json name
    lines.write_text('{"question": "Q1?", "answer": "A1"}\n{"question": "Q2?", "answer": "A2"}\n')
    assert [r.question for r in read_qa(lines)] == ["Q1?", "Q2?"]
    array = tmp_path / "array.jsonl"  # a JSON array under a .jsonl name
    array.write_text('[{"question": "Q1?", "answer": "A1"},\n {"question": "Q2?", "answer": "A2"}]')
    assert [r.answer for r in read_qa(array)] == ["A1", "A2"]
    broken = tmp_path / "broken.jsonl"
    broken.write_text('[{"question": "Q1?", "answer": "A1"},\n {"question": "Q2?" "answer"}]')
    with pytest.raises(DataError, match=r"broken\.jsonl:2: not valid JSON .*one JSON array"):
        read_qa(broken)


def test_non_utf8_data_names_the_line(tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"question": "Q?", "answer": "A"}\n'
                     b'{"question": "Caf\xe9?", "answer": "A"}\n')
    with pytest.raises(DataError, match=r"latin1\.jsonl:2: not UTF-8 text .*save the file as"):
        read_qa(path)


def test_meta_must_be_an_object(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('{"question": "Q?", "answer": "A", "meta": ["not", "an", "object"]}\n')
    with pytest.raises(DataError, match=r"m\.jsonl:1: 'meta' must be a JSON object"):
        read_qa(path)
