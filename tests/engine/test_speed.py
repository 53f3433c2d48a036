"""The engine's speed options on the tiny model: each one runs the real code path, and its output is
checked against the plain engine on the same seed."""

from __future__ import annotations

import hashlib

import pytest
import torch

from ltxserve.engine import Engine, EngineSettings, Progress, SpeedSettings
from ltxserve.engine.fp8 import FP8, Fp8Linear, quantize_linears, transformer_block_filter
from ltxserve.engine.mux import Mp4Writer
from ltxserve.engine.sampling import denoise
from ltxserve.engine.spec import Geometry
from ltxserve.order import Order

from ..conftest import TEST_ENGINE_SETTINGS, probe

SPEC = Order(prompt="a lighthouse in a storm", width=1920, height=1080, fps=25, num_frames=150, seed=11)


def _engine(data_dir, **settings) -> Engine:
    speed = settings.pop("speed", SpeedSettings())
    base = EngineSettings(encode=TEST_ENGINE_SETTINGS.encode, speed=speed, **settings)
    return Engine.load("tiny", cache_dir=data_dir / "models", device="cpu", settings=base)


def _latents(engine: Engine, spec: Order = SPEC):
    geometry = Geometry.plan(spec, engine.model.profile.render_scale, engine.settings.refine_max_pixels)
    return denoise(engine.model, spec, geometry)


def _relative_error(reference: torch.Tensor, other: torch.Tensor) -> float:
    return float((other - reference).norm() / reference.norm())


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_fp8_linear_matches_the_linear_it_replaces_within_e4m3_precision(dtype):
    torch.manual_seed(0)
    linear = torch.nn.Linear(256, 512).to(dtype)
    x = torch.randn(3, 70, 256, dtype=dtype)
    linear.requires_grad_(False)
    quantized = Fp8Linear(linear)
    out = quantized(x)
    assert out.shape == (3, 70, 512) and out.dtype == dtype
    assert quantized.weight.dtype == FP8 and quantized.weight.element_size() == 1
    # e4m3 keeps 3 mantissa bits: a few percent of relative error on Gaussian data, never tens.
    error = _relative_error(linear(x).float(), out.float())
    assert 0.005 < error < 0.06


def test_the_block_filter_keeps_edge_blocks_and_everything_outside_the_blocks():
    wanted = transformer_block_filter(num_layers=4, keep_edge_blocks=1)
    linear = torch.nn.Linear(64, 64)
    assert wanted("transformer_blocks.1.attn1.to_q", linear)
    assert wanted("transformer_blocks.2.ff.net.2", linear)
    assert not wanted("transformer_blocks.0.attn1.to_q", linear)
    assert not wanted("transformer_blocks.3.attn1.to_q", linear)
    assert not wanted("proj_out", linear)
    assert not wanted("transformer_blocks.1.attn1.to_q", torch.nn.Linear(64, 40))  # not a multiple of 16


def test_quantize_linears_replaces_exactly_the_chosen_layers(data_dir):
    transformer = _engine(data_dir).model.text_to_video.transformer

    def block_linears(aligned: bool) -> set[str]:
        return {
            name
            for name, m in transformer.named_modules()
            if type(m) is torch.nn.Linear
            and name.startswith("transformer_blocks.")
            and (m.in_features % 16 == 0 and m.out_features % 16 == 0) == aligned
        }

    # The tiny model's video stream is 16 wide (kernel-aligned), its audio stream 8 (left alone).
    aligned, unaligned = block_linears(True), block_linears(False)
    count = quantize_linears(transformer, transformer_block_filter(transformer.config.num_layers, 0))
    assert count == len(aligned) > 0
    assert block_linears(True) == set() and block_linears(False) == unaligned
    assert all(type(transformer.get_submodule(name)) is Fp8Linear for name in aligned)


def test_fp8_engine_stays_close_to_the_plain_one_on_the_same_seed(data_dir):
    plain = _latents(_engine(data_dir))
    fp8 = _latents(_engine(data_dir, speed=SpeedSettings(fp8=True, fp8_keep_edge_blocks=0)))
    video_error = _relative_error(plain.video, fp8.video)
    assert 0 < video_error < 0.05
    assert _relative_error(plain.audio, fp8.audio) < 0.05


def test_an_explicit_attention_backend_gives_the_same_latents(data_dir):
    plain = _latents(_engine(data_dir))
    native = _latents(_engine(data_dir, speed=SpeedSettings(attention_backend="native")))
    assert _relative_error(plain.video, native.video) < 1e-5


def test_an_unknown_attention_backend_is_refused_when_the_engine_loads(data_dir):
    with pytest.raises(ValueError, match="no-such-kernel"):
        _engine(data_dir, speed=SpeedSettings(attention_backend="no-such-kernel"))


def test_offloading_the_text_encoder_needs_a_gpu(data_dir):
    with pytest.raises(ValueError, match="needs a GPU"):
        _engine(data_dir, speed=SpeedSettings(offload_text_encoder=True))


def test_overlapped_encoding_writes_the_same_file_as_encoding_in_turn(data_dir, tmp_path):
    serial = _engine(data_dir, overlap_encode=False)
    overlapped = _engine(data_dir, overlap_encode=True)
    serial_result = serial.generate(SPEC, tmp_path / "serial.mp4")
    overlapped.generate(SPEC, tmp_path / "overlapped.mp4")
    digests = {hashlib.sha256((tmp_path / name).read_bytes()).hexdigest() for name in ("serial.mp4", "overlapped.mp4")}
    assert len(digests) == 1
    assert probe(tmp_path / "overlapped.mp4").frames == 150
    assert serial_result.timings["encode"] > 0


def test_an_encoder_error_in_the_encoding_thread_fails_the_generation_and_leaves_no_file(
    data_dir, tmp_path, monkeypatch
):
    original = Mp4Writer.write

    def fail_on_second_chunk(self, frames):
        if self.frames_written:
            raise OSError("disk full")
        original(self, frames)

    monkeypatch.setattr(Mp4Writer, "write", fail_on_second_chunk)
    with pytest.raises(OSError, match="disk full"):
        _engine(data_dir, overlap_encode=True).generate(SPEC, tmp_path / "clip.mp4")
    assert list(tmp_path.iterdir()) == []


def test_4k_refines_at_half_size_and_upsamples_once_more(data_dir, tmp_path):
    spec = Order(prompt="x", width=3840, height=2160, fps=25, num_frames=150, seed=2)
    events: list[Progress] = []
    engine = _engine(data_dir)  # the default threshold: above 2k
    result = engine.generate(spec, tmp_path / "4k.mp4", progress=events.append)
    stages = list(dict.fromkeys(event.stage for event in events))
    assert stages == ["encode_prompt", "stage1", "upsample", "stage2", "upsample_final", "decode_audio", "decode_video"]
    assert "upsample_final" in result.timings
    info = probe(tmp_path / "4k.mp4")
    assert (info.width, info.height, info.frames) == (3840, 2160, 150)
    # At the tiny model's 1/16 scale: refined at full size on the 64 grid, 256x192 (8x6 latents); at half
    # size on the 128 grid, 256x256, stage 2 at 128x128 (4x4) and upsampled to 8x8 for the decoder.
    assert _latents(_engine(data_dir, refine_max_pixels=None), spec).video.shape[-2:] == (6, 8)
    assert _latents(engine, spec).video.shape[-2:] == (8, 8)


def test_2k_and_below_still_refine_at_full_size_by_default(data_dir):
    for width, height in ((1920, 1080), (2560, 1440)):
        spec = Order(prompt="x", width=width, height=height, fps=25, num_frames=200, seed=0)
        assert Geometry.plan(spec, 1.0, EngineSettings().refine_max_pixels).refine_scale == 1


def test_compiled_transformer_blocks_give_the_same_latents(data_dir):
    plain = _latents(_engine(data_dir))
    compiled = _latents(_engine(data_dir, speed=SpeedSettings(compile=True)))
    # Inductor fuses and reorders float32 sums: equal to rounding, not bit for bit.
    assert _relative_error(plain.video, compiled.video) < 1e-4
    assert _relative_error(plain.audio, compiled.audio) < 1e-4
