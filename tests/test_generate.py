import torch

from forgetkit.lm.generate import generate_answers

QUESTIONS = [
    "Hi?",
    "What is the capital of the Quorvex island?",
    "Tell me about the imaginary sport Flornball and its rules, please.",
    "Who wrote the book?",
    "Where is the contract governed and when was it signed by both parties?",
]


def test_batched_generation_equals_one_at_a_time(tiny):
    model, tok = tiny
    batched = generate_answers(model, tok, QUESTIONS, max_new_tokens=12, batch_size=5,
                               progress=False)
    single = [generate_answers(model, tok, [q], max_new_tokens=12, batch_size=1,
                               progress=False)[0] for q in QUESTIONS]
    assert batched == single
    assert any(batched)  # the random model does say something


def test_generation_keeps_input_order_and_train_mode(tiny):
    model, tok = tiny
    model.train()
    try:
        out = generate_answers(model, tok, QUESTIONS[::-1], max_new_tokens=6, batch_size=2,
                               progress=False)
        assert model.training
    finally:
        model.eval()
    ref = generate_answers(model, tok, QUESTIONS, max_new_tokens=6, batch_size=2,
                           progress=False)
    assert out == ref[::-1]


def test_generation_is_deterministic(tiny):
    model, tok = tiny
    torch.manual_seed(0)
    a = generate_answers(model, tok, QUESTIONS, max_new_tokens=8, progress=False)
    torch.manual_seed(1)
    b = generate_answers(model, tok, QUESTIONS, max_new_tokens=8, progress=False)
    assert a == b


def test_rows_that_stop_leave_the_batch_without_changing_anyone_s_tokens(tiny):
    """With a stop token the random model emits at different steps in different rows, the
    pruned loop gives exactly ``model.generate``'s greedy tokens, row by row."""
    from forgetkit.lm.generate import greedy_tokens
    from forgetkit.lm.tokenize import left_padded, prompt_ids

    model, tok = tiny
    model.eval()
    batch = left_padded([prompt_ids(tok, q) for q in QUESTIONS], tok.pad_token_id)
    free = greedy_tokens(model, batch, 12, stop=set())
    # a token that ends some rows early and leaves others running
    stop = next(t for row in free for t in row[2:6]
                if sum(t in r for r in free) < len(free))
    pruned = greedy_tokens(model, batch, 12, stop={stop})
    assert any(len(r) < 12 for r in pruned) and any(len(r) == 12 for r in pruned)
    ref = model.generate(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                         max_new_tokens=12, do_sample=False, pad_token_id=tok.pad_token_id,
                         eos_token_id=stop, temperature=None, top_p=None, top_k=None)
    width = batch["input_ids"].shape[1]
    for row, tokens in zip(ref[:, width:].tolist(), pruned, strict=True):
        expected = row[:row.index(stop)] if stop in row else row
        assert tokens == expected
    assert [r[:len(p)] for r, p in zip(free, pruned, strict=True)] == pruned


def test_a_generation_config_that_changes_greedy_decoding_is_honoured(tiny):
    """A repetition penalty in the model's generation config: ``model.generate`` itself
    decodes, so the answers are what it gives with that penalty."""
    from forgetkit.lm.generate import adds_nothing_to_greedy

    model, tok = tiny
    assert adds_nothing_to_greedy(model)
    plain = generate_answers(model, tok, QUESTIONS, max_new_tokens=10, progress=False)
    model.generation_config.repetition_penalty = 3.0
    try:
        assert not adds_nothing_to_greedy(model)
        penalised = generate_answers(model, tok, QUESTIONS, max_new_tokens=10, progress=False)
        single = [generate_answers(model, tok, [q], max_new_tokens=10, batch_size=1,
                                   progress=False)[0] for q in QUESTIONS]
    finally:
        model.generation_config.repetition_penalty = 1.0
    assert penalised == single and penalised != plain
