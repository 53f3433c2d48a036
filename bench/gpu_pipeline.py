"""The LTX-2 fast path at full size, timed stage by stage, with random weights.

Real weights cannot be downloaded here, but a full-size model with random weights does exactly the same
arithmetic, so its time is the real time. Every component is built from its published config (see
bench/ltx2_configs.py) directly on the GPU in bf16, assembled by the engine's own `assemble_model`, and
driven through `Engine.generate`: the code path a served request takes, MP4 encode included.

For each request it prints seconds per stage (text encoding, stage 1 denoising, latent upsampling,
stage 2 refinement, audio decode + vocoder, video decode, MP4 encode, total), peak GPU memory, the FLOPs
of the denoising stages and the TFLOP/s they achieved, against the matmul rate measured on the same
device at the start. FLOPs are counted by PyTorch's FlopCounterMode on the meta device, so the
full-size counts (and their floor at the matmul rate) are printed even without a GPU.

    python -m bench.gpu_pipeline                                  # H100: plain bf16, the three requests
    python -m bench.gpu_pipeline --variant plain --variant fast   # before and after, one process
    python -m bench.gpu_pipeline --small                          # CPU, reduced sizes (tested in CI)

A variant is a named set of the engine's speed options: `plain` (full-size refinement everywhere, encode
after decode), `fast` (every option but FP8), `fast-fp8`, or one option alone (`overlap`, `cudnn`,
`flash`, `compile`, `fp8`, `offload`, `tiling`, `refine-half`). `cudnn`, `flash`, `offload` and the
`fast` ones need a GPU. With `--check`, each variant's stage-2 latents for the first request are compared
with the first variant's, on the same seed.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import json
import math
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from ltxserve.engine.sampling import MAX_SEQUENCE_LENGTH as PROMPT_TOKENS  # every prompt is padded to it

from . import ltx2_configs

# Requests as the API names them; the default request (8 s, 2k, audio) first.
REQUESTS = {
    "2k-8s": ("2k", 8),
    "1080p-6s": ("1080p", 6),
    "4k-10s": ("4k", 10),
}
HOSTED_DEFAULT_S = 46.54  # the hosted ltx-2-fast answer time for the default request
STAGES = (
    ("encode_prompt", "text encoding"),
    ("stage1", "stage 1: 8 steps, half size"),
    ("upsample", "latent upsample x2"),
    ("stage2", "stage 2: 3 refinement steps"),
    ("upsample_final", "latent upsample x2 after stage 2"),
    ("decode_audio", "audio decode + vocoder"),
    ("decode_video", "video decode"),
    ("encode", "MP4 encode (not hidden)"),
)
# Relative L2 error of the stage-2 latents that still counts as "equal within bf16 rounding": bf16 keeps 8
# significant bits (unit roundoff 2^-8 = 0.4%), and a kernel that sums in another order moves 11 steps of
# 48 blocks by a few of those.
BF16_TOLERANCE = 1e-2
PROMPT = "a red fox running through fresh snow at dawn, its breath steaming, birdsong and crunching snow"


@dataclasses.dataclass(frozen=True)
class Variant:
    attention_backend: str | None = None
    compile: bool = False
    fp8: bool = False
    offload_text_encoder: bool = False
    overlap_encode: bool = True
    vae_spatial_tiling: bool = False
    refine_max_pixels: int | None = None  # None: stage 2 refines at full size, 4k included


VARIANTS = {
    "plain": Variant(overlap_encode=False),
    "overlap": Variant(),
    "cudnn": Variant(attention_backend="_native_cudnn"),
    "flash": Variant(attention_backend="_native_flash"),
    "compile": Variant(compile=True),
    "fp8": Variant(fp8=True),
    "offload": Variant(offload_text_encoder=True),
    "tiling": Variant(vae_spatial_tiling=True),
    # 4k as the hosted tiers likely make it: refine at 1920x1088, then one more x2 latent upsample.
    "refine-half": Variant(refine_max_pixels=2560 * 1440),
    # The GPU configurations: everything that keeps 1080p and 2k within bf16 rounding, with and without fp8.
    "fast": Variant(
        attention_backend="_native_cudnn", compile=True, offload_text_encoder=True, refine_max_pixels=2560 * 1440
    ),
    "fast-fp8": Variant(
        attention_backend="_native_cudnn",
        compile=True,
        fp8=True,
        offload_text_encoder=True,
        refine_max_pixels=2560 * 1440,
    ),
}


# ---------------------------------------------------------------------------------------------- build


@contextlib.contextmanager
def _allocate_on(device: torch.device, dtype: torch.dtype):
    """Parameters are created, and initialised, where they will live and in their final dtype: a 19 B
    transformer initialised on the CPU in float32 would take minutes and 76 GB."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with device:
            yield
    finally:
        torch.set_default_dtype(previous)


def build_model(version: str, small: bool, device: torch.device, dtype: torch.dtype, seed: int = 0):
    """Every fast-path component from its config, with random weights, assembled as the engine loads them."""
    from diffusers import (
        AutoencoderKLLTX2Audio,
        AutoencoderKLLTX2Video,
        FlowMatchEulerDiscreteScheduler,
        LTX2Pipeline,
        LTX2VideoTransformer3DModel,
    )
    from diffusers.pipelines.ltx2 import LTX2LatentUpsamplerModel, LTX2TextConnectors
    from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder, LTX2VocoderWithBWE
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration

    from ltxserve.engine.loader import assemble_model
    from ltxserve.engine.profile import ModelProfile
    from ltxserve.engine.tiny import build_tokenizer

    configs = ltx2_configs.small(version) if small else ltx2_configs.full(version)
    vocoder_class = LTX2VocoderWithBWE if "bwe_hidden_channels" in configs["vocoder"] else LTX2Vocoder
    torch.manual_seed(seed)
    with _allocate_on(device, dtype):
        components = {
            "transformer": LTX2VideoTransformer3DModel(**configs["transformer"]),
            "connectors": LTX2TextConnectors(**configs["connectors"]),
            "vae": AutoencoderKLLTX2Video(**configs["vae"]),
            "audio_vae": AutoencoderKLLTX2Audio(**configs["audio_vae"]),
            "vocoder": vocoder_class(**configs["vocoder"]),
            "text_encoder": Gemma3ForConditionalGeneration(Gemma3Config(**configs["text_encoder"])),
        }
        upsampler = LTX2LatentUpsamplerModel(**configs["latent_upsampler"])
    for module in (*components.values(), upsampler):
        module.eval().requires_grad_(False)
    pipe = LTX2Pipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        tokenizer=build_tokenizer(),
        processor=None,
        prompt_enhancer=None,
        duration_head=None,
        **components,
    )
    # Full size renders on the grid just above the request; the small model at 1/8 of it, like the tiny
    # model's 1/16, so CPU runs stay in seconds while every stage still runs.
    profile = ModelProfile.detect(
        configs["transformer"],
        components["text_encoder"].config.model_type,
        name=f"ltx-{version}-random{'-small' if small else ''}",
        render_scale=1 / 8 if small else 1.0,
    )
    model = assemble_model(pipe, upsampler, profile, source=Path(f"<random {profile.name}>"), device=device)
    sizes = {name: sum(p.numel() for p in module.parameters()) for name, module in components.items()}
    sizes["latent_upsampler"] = sum(p.numel() for p in upsampler.parameters())
    return model, sizes


# ------------------------------------------------------------------------------------------- measure


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_rate(device: torch.device, dtype: torch.dtype, small: bool) -> float:
    """Dense matmul FLOP/s on this device and dtype: the denoising stages' ceiling."""
    n = 1024 if small else 8192
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    _sync(device)
    repeats = 5 if small else 50
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    _sync(device)
    return 2 * n**3 * repeats / (time.perf_counter() - started)


# Audio latents: 16 kHz mel, hop 160, 4x temporal compression in the audio VAE: 25 a second.
AUDIO_LATENTS_PER_S = 16000 / 160 / 4


def stage_shapes(spec, geometry) -> dict[str, dict]:
    """The transformer's input sizes at each denoising stage, as the pipeline derives them."""
    from ltxserve.engine.sampling import STAGE1_SIGMAS, STAGE2_SIGMAS
    from ltxserve.engine.spec import SPATIAL_GRID, TEMPORAL_RATIO

    latent = SPATIAL_GRID // 2  # 32 pixels a latent
    frames = (geometry.gen_frames - 1) // TEMPORAL_RATIO + 1
    audio = round(geometry.gen_frames / spec.fps * AUDIO_LATENTS_PER_S)
    return {
        "stage1": {"frames": frames, "height": geometry.stage1_height // latent,
                   "width": geometry.stage1_width // latent, "audio": audio, "steps": len(STAGE1_SIGMAS)},
        "stage2": {"frames": frames, "height": geometry.refine_height // latent,
                   "width": geometry.refine_width // latent, "audio": audio, "steps": len(STAGE2_SIGMAS)},
    }  # fmt: skip


def transformer_flops(transformer, frames: int, height: int, width: int, audio: int, fps: float) -> dict[str, int]:
    """FLOPs of one transformer call, counted by PyTorch's FlopCounterMode: in all, and in attention (the
    part FP8 matmuls do not speed up). On the meta device nothing is computed: a full-size count takes
    seconds on a CPU and equals the count of a real call (tested)."""
    from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

    def cpu_sdpa(query, key, value, *args, out_shape=None, **kwargs) -> int:
        return sdpa_flop_count(query, key, value)

    # The counter knows the CUDA attention kernels; the CPU kernel is counted by the same formula.
    mapping = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: cpu_sdpa}
    config = transformer.config
    video_width = config.num_attention_heads * config.attention_head_dim
    audio_width = config.audio_num_attention_heads * config.audio_attention_head_dim
    # The text connectors hand each stream prompt states of its own width (2.3) or the shared one (2.0).
    video_text = video_width if not config.use_prompt_embeddings else config.caption_channels
    audio_text = audio_width if not config.use_prompt_embeddings else config.caption_channels
    tensor = {"device": transformer.device, "dtype": transformer.dtype}
    mask = torch.ones(1, PROMPT_TOKENS, dtype=torch.int64, device=transformer.device)
    inputs = {
        "hidden_states": torch.randn(1, frames * height * width, config.in_channels, **tensor),
        "audio_hidden_states": torch.randn(1, audio, config.audio_in_channels, **tensor),
        "encoder_hidden_states": torch.randn(1, PROMPT_TOKENS, video_text, **tensor),
        "audio_encoder_hidden_states": torch.randn(1, PROMPT_TOKENS, audio_text, **tensor),
        "timestep": torch.full((1,), 500.0, **tensor),
        "sigma": torch.full((1,), 0.5, **tensor),
        "encoder_attention_mask": mask,
        "audio_encoder_attention_mask": mask,
        "num_frames": frames,
        "height": height,
        "width": width,
        "fps": fps,
        "audio_num_frames": audio,
        "use_cross_timestep": True,
        "return_dict": False,
    }
    # Attention is tallied where diffusers calls it: on the meta device SDPA decomposes into plain matmuls,
    # which the counter cannot tell from the linear layers'.
    sdpa = torch.nn.functional.scaled_dot_product_attention
    attention = 0

    def tallied_sdpa(query, key, value, *args, **kwargs):
        nonlocal attention
        attention += sdpa_flop_count(query.shape, key.shape, value.shape)
        return sdpa(query, key, value, *args, **kwargs)

    torch.nn.functional.scaled_dot_product_attention = tallied_sdpa
    try:
        with torch.inference_mode(), FlopCounterMode(display=False, custom_mapping=mapping) as counter:
            transformer(**inputs)
    finally:
        torch.nn.functional.scaled_dot_product_attention = sdpa
    return {"total": counter.get_total_flops(), "attention": attention}


def meta_transformer(version: str, small: bool, dtype: torch.dtype):
    from diffusers import LTX2VideoTransformer3DModel

    configs = ltx2_configs.small(version) if small else ltx2_configs.full(version)
    with _allocate_on(torch.device("meta"), dtype):
        return LTX2VideoTransformer3DModel(**configs["transformer"]).eval()


def denoise_flops(transformer, spec, geometry) -> dict[str, dict]:
    counted = {}
    for stage, shape in stage_shapes(spec, geometry).items():
        step = transformer_flops(
            transformer, shape["frames"], shape["height"], shape["width"], shape["audio"], float(spec.fps)
        )
        counted[stage] = {
            **shape,
            "video_tokens": shape["frames"] * shape["height"] * shape["width"],
            "per_step": step["total"],
            "total": step["total"] * shape["steps"],
            "attention": step["attention"] * shape["steps"],
        }
    return counted


def request_spec(name: str, seed: int):
    from ltxserve.api.schemas import GenerationRequest

    resolution, duration = REQUESTS[name]
    return GenerationRequest(prompt=PROMPT, resolution=resolution, duration=duration, seed=seed).to_order(
        price=0
    )


def run_request(engine, name: str, seed: int, out_dir: Path) -> dict:
    spec = request_spec(name, seed)
    device = engine.model.device
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    row: dict = {"request": name, "width": spec.width, "height": spec.height, "frames": spec.num_frames}
    started = time.perf_counter()
    try:
        result = engine.generate(spec, out_dir / f"{name}.mp4")
    except torch.OutOfMemoryError as error:
        row["error"] = f"out of memory: {str(error).splitlines()[0]}"
        return row
    row["total"] = time.perf_counter() - started
    row["stages"] = {stage: result.timings.get(stage, 0.0) for stage, _ in STAGES}
    row["peak_gpu_gib"] = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    row["mp4_bytes"] = (out_dir / f"{name}.mp4").stat().st_size
    return row


def denoise_latents(engine, name: str, seed: int):
    """The stage-2 latents of a request: what the decoders see, compared across variants by `--check`."""
    from ltxserve.engine.sampling import denoise
    from ltxserve.engine.spec import Geometry

    spec = request_spec(name, seed)
    geometry = Geometry.plan(spec, engine.model.profile.render_scale, engine.settings.refine_max_pixels)
    latents = denoise(engine.model, spec, geometry)
    return latents.video.float().cpu(), latents.audio.float().cpu()


def relative_error(reference: torch.Tensor, other: torch.Tensor) -> float:
    return float((other - reference).norm() / reference.norm().clamp(min=1e-12))


def compare(reference: tuple[str, torch.Tensor, torch.Tensor], video: torch.Tensor, audio: torch.Tensor) -> dict:
    name, ref_video, ref_audio = reference
    if ref_video.shape != video.shape:
        # Another geometry (refine-half renders on a coarser grid): a different computation, not comparable.
        return {"against": name, "comparable": False}
    errors = {
        "video_relative_error": relative_error(ref_video, video),
        "audio_relative_error": relative_error(ref_audio, audio),
    }
    return {
        "against": name,
        "comparable": True,
        **errors,
        "within_bf16_rounding": max(errors.values()) <= BF16_TOLERANCE,
    }


# --------------------------------------------------------------------------------------------- report


def _fmt(value, digits=2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def print_table(variant: str, rows: list[dict], rate: float) -> None:
    names = [row["request"] for row in rows]
    width = max(28, *(len(label) for _, label in STAGES))
    print(f"\n## {variant}   (seconds; matmul rate {rate / 1e12:.1f} TFLOP/s)")
    print(f"| {'stage':<{width}} | " + " | ".join(f"{n:>10}" for n in names) + " |")
    print(f"|{'-' * (width + 2)}|" + "|".join("-" * 12 for _ in names) + "|")

    def line(label, values):
        print(f"| {label:<{width}} | " + " | ".join(f"{v:>10}" for v in values) + " |")

    for stage, label in STAGES:
        line(label, [_fmt(row.get("stages", {}).get(stage)) if "error" not in row else "-" for row in rows])
    line("total", [_fmt(row.get("total")) if "error" not in row else "OOM" for row in rows])
    line("total / hosted 46.54 s", [_fmt(row.get("total_vs_hosted"), 3) for row in rows])
    line("peak GPU memory (GiB)", [_fmt(row.get("peak_gpu_gib"), 1) for row in rows])
    line(
        "denoise FLOPs", [f"{row['denoise_flops_total']:.3g}" if "denoise_flops_total" in row else "-" for row in rows]
    )
    line(
        "denoise achieved TFLOP/s",
        [f"{row['achieved_tflops']:.3g}" if "achieved_tflops" in row else "-" for row in rows],
    )
    line("denoise floor at matmul rate", [_fmt(row.get("floor_s")) for row in rows])


def summarise(row: dict, rate: float, flops: dict) -> None:
    if "error" in row:
        return
    total = sum(stage["total"] for stage in flops.values())
    row["total_vs_hosted"] = row["total"] / HOSTED_DEFAULT_S
    row["denoise_flops"] = flops
    row["denoise_flops_total"] = total
    row["achieved_tflops"] = total / (row["stages"]["stage1"] + row["stages"]["stage2"]) / 1e12
    row["floor_s"] = total / rate


def full_size_floor(version: str, rate: float, seed: int, requests: list[str]) -> list[dict]:
    """FLOPs of the full-size denoising stages for each request, and the seconds they need at `rate` (bf16):
    all in bf16; with FP8 matmuls in the linear layers (dense FP8 runs at twice the bf16 rate on Hopper)
    and attention still in bf16; and with attention in FP8 too."""
    from ltxserve.engine.spec import Geometry

    transformer = meta_transformer(version, small=False, dtype=torch.bfloat16)
    rows = []
    for name in requests:
        spec = request_spec(name, seed)
        geometries = {"full size": None}
        if spec.width * spec.height > 2560 * 1440:
            geometries["half size + x2"] = 2560 * 1440
        for label, refine_max in geometries.items():
            flops = denoise_flops(transformer, spec, Geometry.plan(spec, 1.0, refine_max))
            total = sum(stage["total"] for stage in flops.values())
            attention = sum(stage["attention"] for stage in flops.values())
            rows.append(
                {
                    "request": name,
                    "stage2_at": label,
                    "stages": flops,
                    "total": total,
                    "attention_share": attention / total,
                    "bf16_floor_s": total / rate,
                    "fp8_linear_floor_s": (total - attention) / (2 * rate) + attention / rate,
                    "fp8_all_floor_s": total / (2 * rate),
                }
            )
    return rows


def print_floor(rows: list[dict], rate: float) -> None:
    print(f"\n## full-size denoising FLOPs, and their floor in seconds at {rate / 1e12:.0f} TFLOP/s bf16 (FP8: 2x)")
    print(
        "| request | stage 2 at | stage 1 tokens | stage 2 tokens | FLOPs | attention | bf16 | FP8 linear | FP8 all |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        one, two = row["stages"]["stage1"], row["stages"]["stage2"]
        print(f"| {row['request']} | {row['stage2_at']} | {one['video_tokens']} | {two['video_tokens']} | "
              f"{row['total']:.3g} | {row['attention_share']:.0%} | {row['bf16_floor_s']:.1f} | "
              f"{row['fp8_linear_floor_s']:.1f} | {row['fp8_all_floor_s']:.1f} |")  # fmt: skip


# ----------------------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="reduced sizes on the CPU (float32)")
    parser.add_argument("--version", choices=ltx2_configs.VERSIONS, default="2.3")
    parser.add_argument("--variant", action="append", choices=sorted(VARIANTS), help="repeatable; default plain")
    parser.add_argument("--request", action="append", choices=list(REQUESTS), help="repeatable; default all three")
    parser.add_argument("--repeats", type=int, default=2, help="runs per request; the first is warm-up")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--check", action="store_true", help="compare stage-2 latents with the first variant")
    parser.add_argument("--device", default=None, help="default: cuda, or cpu with --small")
    parser.add_argument(
        "--matmul-tflops",
        type=float,
        default=800.0,
        help="bf16 rate for the full-size floor when no GPU is used (measured on these H100s)",
    )
    parser.add_argument("--x264-preset", default="veryfast", help="the MP4 encoder's speed (the server's default)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/gpu_pipeline.json"))
    return parser.parse_args(argv)


def engine_settings(variant: Variant, small: bool, x264_preset: str):
    from ltxserve.engine import EncodeSettings, EngineSettings, SpeedSettings

    return EngineSettings(
        refine_max_pixels=variant.refine_max_pixels,
        overlap_encode=variant.overlap_encode,
        vae_spatial_tiling=variant.vae_spatial_tiling,
        encode=EncodeSettings(preset=x264_preset),
        speed=SpeedSettings(
            attention_backend=variant.attention_backend,
            compile=variant.compile,
            fp8=variant.fp8,
            # The small transformer has two blocks: keeping the edge ones would quantize none.
            fp8_keep_edge_blocks=0 if small else 1,
            offload_text_encoder=variant.offload_text_encoder,
        ),
    )


def run_variant(
    args, name: str, device: torch.device, dtype: torch.dtype, rate: float, out_dir: Path, entry: dict,
    save: Callable[[], None],
) -> tuple | None:
    """Fill `entry` as the variant runs, calling `save` after each step; the check's latents, if asked for."""
    from ltxserve.engine import Engine
    from ltxserve.engine.spec import Geometry

    variant = VARIANTS[name]
    built = time.perf_counter()
    model, sizes = build_model(args.version, args.small, device, dtype)
    engine = Engine(model, engine_settings(variant, args.small, args.x264_preset))
    build_s = time.perf_counter() - built
    print(f"{name}: built in {build_s:.1f} s; parameters (B): "
          + ", ".join(f"{k} {v / 1e9:.3f}" for k, v in sizes.items()), flush=True)  # fmt: skip
    entry.update(settings=dataclasses.asdict(variant), build_s=build_s, parameters=sizes, rows=[])
    save()
    counter = meta_transformer(args.version, args.small, dtype)
    for request in args.request:
        runs = []
        for repeat in range(args.repeats):
            runs.append(run_request(engine, request, args.seed, out_dir))
            print(
                f"  {request} run {repeat + 1}: " + (runs[-1].get("error") or f"{runs[-1]['total']:.2f} s"), flush=True
            )
            if "error" in runs[-1]:
                break
        # The first run is warm-up (compilation, autotuning, allocator growth) unless it is the only one.
        timed = [run for run in runs[1:] if "error" not in run] or runs[:1]
        row = min(timed, key=lambda run: run.get("total", math.inf))
        row["runs_total_s"] = [run.get("total") for run in runs]
        spec = request_spec(request, args.seed)
        geometry = Geometry.plan(spec, model.profile.render_scale, engine.settings.refine_max_pixels)
        summarise(row, rate, denoise_flops(counter, spec, geometry))
        entry["rows"].append(row)
        save()
    return denoise_latents(engine, args.request[0], args.seed) if args.check else None


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    args.variant = args.variant or ["plain"]
    args.request = args.request or list(REQUESTS)
    args.repeats = max(1, args.repeats)
    device = torch.device(args.device or ("cpu" if args.small else "cuda"))
    dtype = torch.float32 if device.type == "cpu" else torch.bfloat16
    rate = matmul_rate(device, dtype, args.small)
    # Without a GPU the full-size floor is given at the bf16 matmul rate measured on these H100s.
    floor_rate = rate if device.type == "cuda" else args.matmul_tflops * 1e12
    report: dict = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__,
        "version": args.version,
        "small": args.small,
        "dtype": str(dtype),
        "matmul_tflops": rate / 1e12,
        "hosted_default_s": HOSTED_DEFAULT_S,
        "full_size_floor": {
            "matmul_tflops": floor_rate / 1e12,
            "rows": full_size_floor(args.version, floor_rate, args.seed, args.request),
        },
        "variants": {},
    }
    print_floor(report["full_size_floor"]["rows"], floor_rate)

    # Written after every step, so that a run stopped by its time limit still leaves what it finished.
    def save() -> None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")

    save()
    reference = None
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.variant:
            entry = report["variants"][name] = {}
            latents = run_variant(args, name, device, dtype, rate, Path(tmp), entry, save)
            if latents is not None:
                if reference is None:
                    reference = (name, *latents)
                else:
                    entry["check"] = {"request": args.request[0], **compare(reference, *latents)}
                    print(f"  check vs {reference[0]}: " + json.dumps(entry["check"]), flush=True)
                    save()
            print_table(name, entry["rows"], rate)
            gc.collect()
            if device.type == "cuda":
                torch.cuda.empty_cache()
    print(f"\nwrote {args.out}")
    return report


if __name__ == "__main__":
    main()
