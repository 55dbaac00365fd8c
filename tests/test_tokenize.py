import warnings

from forgetkit.data.records import QARecord
from forgetkit.lm.tokenize import (
    IGNORE_INDEX,
    AnswerCutWarning,
    QACollator,
    encode_qa,
    encode_records,
    left_padded,
    prompt_ids,
)


def test_labels_mask_exactly_the_prompt(tiny):
    _, tok = tiny
    q, a = "Where is the Quorvex depot?", "In Drellmoor, 12 Ash Lane."
    enc = encode_qa(tok, q, a)
    prompt = prompt_ids(tok, q)
    n = len(prompt)
    assert enc["input_ids"][:n] == prompt
    assert enc["labels"][:n] == [IGNORE_INDEX] * n
    # Every answer token and the end-of-turn token are learned.
    assert enc["labels"][n:] == enc["input_ids"][n:]
    assert enc["input_ids"][-1] == tok.eos_token_id
    assert tok.decode(enc["input_ids"][n:-1]) == a


def test_long_answers_are_cut_to_max_length(tiny):
    _, tok = tiny
    enc = encode_qa(tok, "Q?", "word " * 200, max_length=40)
    assert len(enc["input_ids"]) == 40 == len(enc["labels"])


def test_collator_pads_right_with_ignored_labels(tiny):
    _, tok = tiny
    feats = encode_records(tok, [QARecord("Q?", "A"), QARecord("A longer question here?",
                                                                "A longer answer here.")])
    batch = QACollator(tok.pad_token_id)(feats)
    short, long = (len(f["input_ids"]) for f in feats)
    assert batch["input_ids"].shape == (2, long)
    assert batch["attention_mask"][0].tolist() == [1] * short + [0] * (long - short)
    assert batch["labels"][0, short:].tolist() == [IGNORE_INDEX] * (long - short)
    assert batch["input_ids"][0, short:].tolist() == [tok.pad_token_id] * (long - short)


def test_collator_pads_extra_prefixed_inputs(tiny):
    _, tok = tiny
    feats = []
    for q in ("Q?", "Another question?"):
        enc = encode_qa(tok, q, "A")
        pert = encode_qa(tok, q + " with more words", "A")
        feats.append({**enc, "perturbed_input_ids": pert["input_ids"],
                      "perturbed_labels": pert["labels"]})
    batch = QACollator(tok.pad_token_id)(feats)
    assert {"perturbed_input_ids", "perturbed_attention_mask", "perturbed_labels"} <= set(batch)
    assert batch["perturbed_input_ids"].shape == batch["perturbed_labels"].shape


def test_instruction_labels_cover_the_question_but_not_the_template(tiny):
    _, tok = tiny
    q = "Where is the Quorvex depot?"
    plain = encode_qa(tok, q, "In Drellmoor.")
    im = encode_qa(tok, q, "In Drellmoor.", instruction_labels=True)
    assert im["input_ids"] == plain["input_ids"]
    labelled = [i for i, (a, b) in enumerate(zip(plain["labels"], im["labels"], strict=True))
                if a != b]
    assert tok.decode([im["input_ids"][i] for i in labelled]).strip() == q
    assert im["labels"][0] == IGNORE_INDEX  # the template's first token stays unlabelled


def test_left_padding_puts_padding_first_and_counts_positions_over_real_tokens():
    batch = left_padded([[5, 6, 7], [8]], pad_token_id=0)
    assert batch["input_ids"].tolist() == [[5, 6, 7], [0, 0, 8]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [0, 0, 1]]
    assert batch["position_ids"].tolist() == [[0, 1, 2], [0, 0, 0]]


def test_answers_cut_to_max_length_are_announced_and_keep_no_end_token(tiny):
    _, tok = tiny
    records = [QARecord("What is it?", "Short."), QARecord("What is it?", "word " * 400)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        short, long = encode_records(tok, records, max_length=64)
    cut = [w for w in caught if issubclass(w.category, AnswerCutWarning)]
    assert len(cut) == 1
    assert "1 of 2 answers do not fit in max_length=64" in str(cut[0].message)
    assert "first: record 2" in str(cut[0].message)
    assert len(long["input_ids"]) == 64 and tok.eos_token_id not in long["labels"]
    assert short["labels"][-1] == tok.eos_token_id
