"""`ltxserve models list|pull` against the stand-in Hub: the terms come before any request, what is here."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

from typer.testing import CliRunner

from ltxserve.cli.main import app

from .conftest import MODEL, UPSAMPLER


def ltxserve(data_dir, *args: str, answer: str | None = None):
    return CliRunner().invoke(app, list(args), input=answer, env={"LTXSERVE_DATA_DIR": str(data_dir)})


def words(text: str) -> str:
    """The output with line wrapping undone."""
    return " ".join(text.split())


def test_the_terms_are_shown_and_declining_downloads_nothing(on_hub, catalog_file, tmp_path):
    target = tmp_path / "weights"
    pull = ("models", "pull", MODEL, "--catalog", str(catalog_file), "--dir", str(target))
    done = ltxserve(tmp_path, *pull, answer="n\n")

    said = words(done.output)
    assert done.exit_code == 1, said
    assert "LTX-2 Community License: https://huggingface.co/Lightricks/LTX-2" in said
    assert "Gemma Terms of Use: https://ai.google.dev/gemma/terms" in said
    assert "for text_encoder, tokenizer (from ltxserve-test/ltx-base)" in said
    assert f"{UPSAMPLER} is gated: accept its terms at {on_hub.url}/{UPSAMPLER}" in said
    assert said.endswith("Declined: nothing downloaded.")
    assert on_hub.requests == []
    assert not target.exists()


def test_without_an_answer_the_terms_must_be_accepted_with_a_flag(on_hub, catalog_file, tmp_path):
    done = ltxserve(tmp_path, "models", "pull", MODEL, "--catalog", str(catalog_file), answer="")

    assert done.exit_code == 1
    assert "pass --accept-license to accept in a script. Nothing downloaded." in words(done.output)
    assert on_hub.requests == []


def test_a_gated_repository_without_hf_token_is_explained(on_hub, catalog_file, tmp_path):
    on_hub.repos[UPSAMPLER].token = "hf_test_token"
    done = ltxserve(tmp_path, "models", "pull", MODEL, "--catalog", str(catalog_file), "--yes")

    assert done.exit_code == 1
    assert f"{UPSAMPLER} is gated and no valid token was sent" in words(done.output)
    assert "then set HF_TOKEN to an access token of that account" in words(done.output)


def test_list_shows_what_is_missing_present_or_partial(on_hub, catalog_file, tmp_path):
    directory = tmp_path / "models" / MODEL
    listed = ltxserve(tmp_path, "models", "list", "--catalog", str(catalog_file))
    assert listed.exit_code == 0, listed.output
    assert f"ltxserve models pull {MODEL}` puts it in {directory}" in listed.output
    for name in ("ltx-2-19b-distilled", "ltx-2.3-22b-distilled (recommended)", "ltx-2.5-22b-distilled"):
        assert f"{name}, LTX-" in listed.output
    assert "diffusers/LTX-2.3-Distilled-Diffusers@432e0d3c2d17" in listed.output

    pulled = ltxserve(tmp_path, "models", "pull", MODEL, "--catalog", str(catalog_file), "--accept-license")
    assert pulled.exit_code == 0, pulled.output
    assert f"Done. Use it with `ltxserve generate --model {directory}" in words(pulled.output)

    listed = ltxserve(tmp_path, "models", "list", "--catalog", str(catalog_file), "--remote")
    assert f"present in {directory}" in listed.output
    ours = listed.output[listed.output.index(f"{MODEL}, LTX-2.3") :]
    part_lines = [line.split() for line in ours.splitlines()[2:12]]
    assert [line[0] for line in part_lines] == [
        "model_index.json,", "transformer", "connectors", "vae", "audio_vae", "vocoder", "scheduler",
        "text_encoder", "tokenizer", "latent_upsampler",
    ]
    assert all("present" in line for line in part_lines)
    assert "MB in all on the Hub" in ours

    for path in (directory / "latent_upsampler").iterdir():
        path.unlink()
    listed = ltxserve(tmp_path, "models", "list", "--catalog", str(catalog_file))
    assert f"partial: 9 of 10 parts in {directory}" in listed.output


class _Drain:
    """Everything a pipe says, read on a thread, so that a test can wait for a line with a deadline."""

    def __init__(self, pipe) -> None:
        self.text = b""
        self._closed = False
        self._changed = threading.Condition()
        self._pipe = pipe
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while chunk := os.read(self._pipe.fileno(), 4096):
            with self._changed:
                self.text += chunk
                self._changed.notify_all()
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def wait_for(self, marker: bytes, timeout: float) -> bytes:
        with self._changed:
            self._changed.wait_for(lambda: marker in self.text or self._closed, timeout)
            assert marker in self.text, self.text.decode(errors="replace")
            return self.text


def test_the_terms_are_shown_before_any_request_reaches_the_hub(hub, catalog_file, tmp_path):
    # A real `ltxserve` process, which runs with HF_HUB_OFFLINE=1 unless told otherwise: pull goes online anyway.
    env = {key: value for key, value in os.environ.items() if not key.startswith(("LTXSERVE_", "HF_"))}
    env |= {"HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path / "hf"), "LTXSERVE_DATA_DIR": str(tmp_path)}
    target = tmp_path / "weights"
    command = [sys.executable, "-m", "ltxserve", "models", "pull", MODEL, "--catalog", str(catalog_file)]
    process = subprocess.Popen(
        [*command, "--dir", str(target)], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env=env,
    )
    try:
        stderr = _Drain(process.stderr)
        shown = stderr.wait_for(b"Do you accept these terms?", timeout=60)
        assert b"LTX-2 Community License" in shown and b"Gemma Terms of Use" in shown
        assert hub.requests == []

        assert process.stdin is not None
        process.stdin.write(b"y\n")
        process.stdin.close()
        assert process.wait(timeout=120) == 0, stderr.text.decode(errors="replace")
    finally:
        process.kill()
        process.wait()
    assert hub.requests
    assert (target / "latent_upsampler" / "config.json").is_file()
