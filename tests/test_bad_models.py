"""A model folder that cannot be loaded safely is refused with what is wrong and what to do,
never a traceback: pickle weights, safetensors cut short."""

import pytest
from typer.testing import CliRunner

from forgetkit.cli import app
from forgetkit.data.records import write_qa
from forgetkit.data.synth import synth
from forgetkit.lm import models
from forgetkit.lm.models import ModelLoadError

runner = CliRunner()


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("m") / "model"
    model, tok = models.load(models.TINY)
    models.save(model, tok, folder)
    return folder


def _copy(saved, tmp_path):
    import shutil

    return shutil.copytree(saved, tmp_path / "copy")


def test_truncated_safetensors_is_refused_before_loading(saved, tmp_path):
    folder = _copy(saved, tmp_path)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(ModelLoadError, match=r"model\.safetensors: not a complete safetensors "
                       r"file .*cut short"):
        models.load(str(folder))
    data = write_qa(synth("known", 4, seed=0), tmp_path / "k.jsonl")
    res = runner.invoke(app, ["eval", "--model", str(folder), "--known", str(data),
                              "--output", str(tmp_path / "r.json")])
    assert res.exit_code == 2 and "not a complete safetensors file" in res.output


def test_pickle_weights_are_refused_with_the_way_to_convert(saved, tmp_path):
    folder = _copy(saved, tmp_path)
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    with pytest.raises(ModelLoadError, match=r"only pickle weights \(pytorch_model\.bin\); "
                       r"forgetkit loads safetensors only.*save_pretrained"):
        models.load(str(folder))


def test_a_missing_path_that_looks_local_is_not_taken_for_a_hub_id(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "out").mkdir()
    for spec in ("out/model", "./model/x", str(tmp_path / "nowhere" / "model")):
        with pytest.raises(ModelLoadError, match="no such folder or file"):
            models.resolve(spec)
    assert models.resolve("meta-llama/Llama-3.1-8B-Instruct").kind == "hub"


def test_a_hub_that_accepts_but_never_answers_times_out_with_a_clear_error(monkeypatch):
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held = []
    threading.Thread(target=lambda: held.extend(server.accept() for _ in range(8)),
                     daemon=True).start()
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.getsockname()[1]}")
    monkeypatch.setenv("FORGETKIT_HUB_TIMEOUT", "1")
    try:
        with pytest.raises(ModelLoadError, match=r"did not answer within 1 s .*"
                           r"FORGETKIT_HUB_TIMEOUT"):
            models.load("someorg/somemodel")
        with pytest.raises(ModelLoadError, match=r"did not answer within 1 s"):
            models.load_tokenizer("someorg/somemodel")  # the tokenizer alone too
    finally:
        server.close()


def test_the_hub_probe_sends_the_saved_login_token_and_names_a_refusal(tmp_path, monkeypatch):
    """A user logged in with ``hf auth login`` (a token file, no HF_TOKEN) reaches a gated
    model; without a token the refusal says how to give one."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    import huggingface_hub.constants

    from forgetkit.lm import hub

    class Gated(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the http.server name)
            ok = self.headers.get("Authorization") == "Bearer hf_saved"
            self.send_response(200 if ok else 401)
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Gated)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    token_file = tmp_path / "token"
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(token_file))
    try:
        with pytest.raises(ModelLoadError, match=r"HTTP 401.*set HF_TOKEN .*hf auth login"):
            hub.probe_hub("someorg/gated")
        token_file.write_text("hf_saved\n")
        hub.probe_hub("someorg/gated")  # the saved login is sent: no error
    finally:
        server.shutdown()
