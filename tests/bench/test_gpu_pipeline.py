"""bench/gpu_pipeline.py: the full-size configs, its FLOP counts, and a whole `--small` run on the CPU, so the
GPU benchmark cannot rot between the sessions that have a GPU."""

from __future__ import annotations

import json

import pytest
import torch

from bench import gpu_pipeline, ltx2_configs

# Parameter counts of the published checkpoints (diffusers' classes with the conversion script's configs),
# in millions: transformer, connectors, video VAE, audio VAE, vocoder, latent upsampler.
PUBLISHED_M = {
    "2.0": {"transformer": 18876, "connectors": 1431, "vae": 1222, "audio_vae": 53, "vocoder": 56, "upsampler": 498},
    "2.3": {"transformer": 18989, "connectors": 3172, "vae": 726, "audio_vae": 53, "vocoder": 129, "upsampler": 498},
}


def _millions(module) -> int:
    return round(sum(p.numel() for p in module.parameters()) / 1e6)


@pytest.mark.parametrize("version", ltx2_configs.VERSIONS)
def test_full_configs_build_the_published_model_sizes(version):
    from diffusers import AutoencoderKLLTX2Audio, AutoencoderKLLTX2Video, LTX2VideoTransformer3DModel
    from diffusers.pipelines.ltx2 import LTX2LatentUpsamplerModel, LTX2TextConnectors
    from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder, LTX2VocoderWithBWE
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration

    configs = ltx2_configs.full(version)
    vocoder = LTX2VocoderWithBWE if version == "2.3" else LTX2Vocoder
    with torch.device("meta"):
        sizes = {
            "transformer": _millions(LTX2VideoTransformer3DModel(**configs["transformer"])),
            "connectors": _millions(LTX2TextConnectors(**configs["connectors"])),
            "vae": _millions(AutoencoderKLLTX2Video(**configs["vae"])),
            "audio_vae": _millions(AutoencoderKLLTX2Audio(**configs["audio_vae"])),
            "vocoder": _millions(vocoder(**configs["vocoder"])),
            "upsampler": _millions(LTX2LatentUpsamplerModel(**configs["latent_upsampler"])),
        }
        gemma = Gemma3ForConditionalGeneration(Gemma3Config(**configs["text_encoder"]))
    assert sizes == pytest.approx(PUBLISHED_M[version], abs=1)
    # Gemma 3 12B: 11.77 B in the text tower that LTX-2 runs, 12.19 B with the vision tower.
    assert _millions(gemma.model.language_model) == pytest.approx(11766, abs=5)
    assert _millions(gemma) == pytest.approx(12187, abs=5)


def test_a_flop_count_on_the_meta_device_equals_the_count_of_a_real_call():
    torch.manual_seed(0)
    real = gpu_pipeline.build_model("2.3", small=True, device=torch.device("cpu"), dtype=torch.float32)[0]
    assert (real.profile.version, real.profile.use_cross_timestep) == ("2.3", True)
    meta = gpu_pipeline.meta_transformer("2.3", small=True, dtype=torch.float32)
    shape = {"frames": 3, "height": 4, "width": 6, "audio": 10, "fps": 25.0}
    counted = gpu_pipeline.transformer_flops(real.text_to_video.transformer, **shape)
    assert counted["total"] > counted["attention"] > 0
    assert gpu_pipeline.transformer_flops(meta, **shape) == counted


def test_the_default_request_needs_about_3_9e16_flops_and_4k_at_half_size_a_quarter_of_the_tokens():
    from ltxserve.engine.spec import Geometry

    transformer = gpu_pipeline.meta_transformer("2.3", small=False, dtype=torch.bfloat16)
    spec = gpu_pipeline.request_spec("2k-8s", seed=0)
    flops = gpu_pipeline.denoise_flops(transformer, spec, Geometry.plan(spec))
    # The estimate: 23.9 k and 95.7 k tokens, ~1.1e15 a step x 8 and ~9.9e15 x 3, ~3.9e16 in all.
    assert (flops["stage1"]["video_tokens"], flops["stage2"]["video_tokens"]) == (23920, 95680)
    assert flops["stage1"]["per_step"] == pytest.approx(1.1e15, rel=0.05)
    assert flops["stage2"]["per_step"] == pytest.approx(9.9e15, rel=0.05)
    assert sum(stage["total"] for stage in flops.values()) == pytest.approx(3.9e16, rel=0.05)
    # Of which attention, 4 T^2 d per layer: about 7.0e15 a stage-2 step, most of the work.
    assert flops["stage2"]["attention"] / flops["stage2"]["total"] == pytest.approx(0.7, abs=0.1)

    # 4k refined at half size: a quarter of the tokens in both stages (the FLOPs: bench/gpu-speed-notes.md).
    spec_4k = gpu_pipeline.request_spec("4k-10s", seed=0)
    full = gpu_pipeline.stage_shapes(spec_4k, Geometry.plan(spec_4k))
    half = gpu_pipeline.stage_shapes(spec_4k, Geometry.plan(spec_4k, 1.0, 2560 * 1440))
    assert (full["stage2"]["frames"], full["stage2"]["height"], full["stage2"]["width"]) == (33, 68, 120)
    assert (half["stage2"]["frames"], half["stage2"]["height"], half["stage2"]["width"]) == (33, 34, 60)
    assert (half["stage1"]["height"], half["stage1"]["width"]) == (17, 30)


def test_small_run_on_the_cpu_times_every_stage_counts_flops_and_checks_fp8(tmp_path):
    out = tmp_path / "gpu_pipeline.json"
    argv = ["--small", "--variant", "plain", "--variant", "fp8", "--request", "1080p-6s", "--repeats", "1"]
    report = gpu_pipeline.main([*argv, "--check", "--x264-preset", "ultrafast", "--out", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(report))

    assert report["small"] and report["matmul_tflops"] > 0
    (floor,) = report["full_size_floor"]["rows"]
    assert floor["request"] == "1080p-6s" and floor["total"] > 1e15
    assert floor["bf16_floor_s"] == pytest.approx(floor["total"] / 800e12)
    assert floor["bf16_floor_s"] > floor["fp8_linear_floor_s"] > floor["fp8_all_floor_s"]

    for name in ("plain", "fp8"):
        (row,) = report["variants"][name]["rows"]
        assert (row["width"], row["height"], row["frames"]) == (1920, 1080, 150)
        stages = row["stages"]
        for stage in ("encode_prompt", "stage1", "upsample", "stage2", "decode_audio", "decode_video", "encode"):
            assert stages[stage] > 0, stage
        assert stages["upsample_final"] == 0  # 1080p refines at full size
        assert sum(stages.values()) <= row["total"]
        assert row["mp4_bytes"] > 10_000
        flops = row["denoise_flops"]
        assert flops["stage2"]["video_tokens"] == 4 * flops["stage1"]["video_tokens"]
        assert flops["stage2"]["per_step"] > 3 * flops["stage1"]["per_step"]
        assert row["achieved_tflops"] == pytest.approx(
            row["denoise_flops_total"] / (stages["stage1"] + stages["stage2"]) / 1e12
        )

    check = report["variants"]["fp8"]["check"]
    assert check["against"] == "plain" and check["comparable"]
    assert 0 < check["video_relative_error"] < 0.05
    assert "check" not in report["variants"]["plain"]


def test_a_run_stopped_mid_way_leaves_what_it_finished_in_the_json(tmp_path, monkeypatch):
    """A GPU run ends at its time limit: the rows finished by then must already be on disk."""
    out = tmp_path / "gpu_pipeline.json"
    run_request = gpu_pipeline.run_request
    calls = []

    def stopped_at_the_second(*args, **kwargs):
        calls.append(args[1])
        if len(calls) == 2:
            raise KeyboardInterrupt  # as the run's time limit would stop it
        return run_request(*args, **kwargs)

    monkeypatch.setattr(gpu_pipeline, "run_request", stopped_at_the_second)
    argv = ["--small", "--request", "1080p-6s", "--request", "2k-8s", "--repeats", "1", "--x264-preset", "ultrafast"]
    with pytest.raises(KeyboardInterrupt):
        gpu_pipeline.main([*argv, "--out", str(out)])
    saved = json.loads(out.read_text())
    assert [row["request"] for row in saved["full_size_floor"]["rows"]] == ["1080p-6s", "2k-8s"]
    (row,) = saved["variants"]["plain"]["rows"]
    assert row["request"] == "1080p-6s" and row["total"] > 0 and row["stages"]["stage2"] > 0
