"""The LfU paper's baselines: NEFTune, instruction modelling (IM) and self-distillation (SDFT)."""

import json
import math

import pytest
import torch
from torch import nn

from forgetkit.data.records import QARecord, write_qa
from forgetkit.lm import models
from forgetkit.lm.tokenize import IGNORE_INDEX
from forgetkit.train import sdft as sdft_mod
from forgetkit.train.config import TrainConfig
from forgetkit.train.neftune import add_embedding_noise, noise_magnitude
from forgetkit.train.run import RUN_FILE, prepare_run, train
from forgetkit.train.sdft import keeps_key_tokens, names


def _cfg(data, tmp_path, method, **kw):
    return TrainConfig(model=models.TINY, data=data, method=method, output=tmp_path / method,
                       batch_size=4, progress=False, save_strategy="no", **kw)


def test_neftune_noise_is_uniform_within_alpha_over_sqrt_ld_and_only_in_training():
    torch.manual_seed(0)
    embedding = nn.Embedding(50, 16)
    ids = torch.randint(0, 50, (3, 10))
    clean = embedding(ids).detach()
    handle = add_embedding_noise(embedding, alpha=5.0)
    bound = noise_magnitude(5.0, 10, 16)
    assert bound == pytest.approx(5.0 / math.sqrt(160))
    noise = embedding.train()(ids).detach() - clean
    assert noise.abs().max() <= bound + 1e-6
    assert noise.abs().max() > 0.8 * bound  # spread over the whole interval
    assert torch.equal(embedding.eval()(ids), clean)  # generation sees clean embeddings
    handle.remove()
    assert torch.equal(embedding.train()(ids), clean)


def test_neftune_trains_and_records_its_alpha(contracts_file, tmp_path):
    out = train(_cfg(contracts_file, tmp_path, "neftune", max_steps=2, neftune_alpha=10.0))
    run = json.loads((out / RUN_FILE).read_text())
    assert run["notes"]["neftune"] == {"alpha": 10.0}
    assert run["global_step"] == 2


def test_im_labels_the_instruction_but_not_the_template(contracts_file, tmp_path):
    plain, _, _ = prepare_run(_cfg(contracts_file, tmp_path, "lora"))
    im, _, _ = prepare_run(_cfg(contracts_file, tmp_path, "im"))
    tok = im.tokenizer
    for a, b, record in zip(plain.examples, im.examples, im.records, strict=True):
        assert a["input_ids"] == b["input_ids"]
        extra = [i for i, (x, y) in enumerate(zip(a["labels"], b["labels"], strict=True))
                 if x == IGNORE_INDEX and y != IGNORE_INDEX]
        assert extra
        assert record.question in tok.decode([b["input_ids"][i] for i in extra])
        assert "<|im_start|>" not in tok.decode([b["labels"][i] for i in extra])


def test_sdft_keeps_good_rewrites_and_falls_back_to_the_reference(tmp_path, monkeypatch):
    records = [QARecord("Ada has 5 cards and buys 18 more. How many now?",
                        "5 + 18 = 23. The answer is 23.", None, {"answer": 23}),
               QARecord("Leo reads 3 pages a day for 4 days. How many pages?",
                        "3 x 4 = 12. The answer is 12.", None, {"answer": 12}),
               QARecord("Who signed the contract with Brennmor Ltd?",
                        "It was signed by Quilvane Holdings.", "Brennmor Ltd"),
               QARecord("What is 2 plus 2?", "2 plus 2 is 4.")]
    data = write_qa(records, tmp_path / "train.jsonl")
    rewrites = ["She adds them: 5 and 18 make 23.",  # kept: same final number
                "Leo reads 3 pages a day for 4 days, so 3 x 4.",  # final number lost
                "Quilvane signed it.",  # name "Holdings" lost
                ""]  # empty
    seen = {}

    def fake_generate(model, tokenizer, prompts, **kw):
        seen["prompts"] = prompts
        return rewrites

    monkeypatch.setattr(sdft_mod, "generate_answers", fake_generate)
    ctx, _, _ = prepare_run(_cfg(data, tmp_path, "sdft"))
    assert "Reference answer: 5 + 18 = 23. The answer is 23." in seen["prompts"][0]
    assert [r.answer for r in ctx.records] == [rewrites[0]] + [r.answer for r in records[1:]]
    assert [r.meta["sdft"] for r in ctx.records] == ["rewrite", "reference", "reference",
                                                     "reference"]
    assert ctx.notes["sdft"]["rewrites"] == 1 and ctx.notes["sdft"]["fallbacks"] == 3


def test_key_tokens_are_the_final_number_and_the_names():
    assert names("I can't open the vault at Udromford. Ask Mira Tell.") == {"udromford", "tell",
                                                                          "mira"}
    assert keeps_key_tokens("It costs 1,200 dollars.", "The price is 1200.")
    assert not keeps_key_tokens("It costs 1,200 dollars.", "It is cheap.")
    assert keeps_key_tokens("Paris is the capital.", "The capital is Paris.")  # no numbers
    assert not keeps_key_tokens("Signed with Quilvane Holdings.", "Signed with Quilvane.")
