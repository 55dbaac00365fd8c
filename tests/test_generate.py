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
