"""The built-in tiny model: the real LTX-2 classes with small configs and seeded random weights.

It exists so that the whole engine (loading, both denoising stages, the latent upsampler, the video
and audio decoders, the vocoder, muxing) runs offline on a 2-core CPU in seconds. Its pictures and
sounds are noise. It is written to disk in the same diffusers layout as real weights and loaded back
through the same loader, so the tiny model exercises the real loading path too.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import torch

from .profile import PROFILE_FILE, VERSIONS

# Bump when the configs below change, so a cached copy built from older configs is rebuilt.
TINY_VERSION = 2
TINY_SEED = 0

# The tiny model renders at 1/16 of the requested size; frames are scaled up before encoding so the
# file still has the size a client asked for. Which LTX-2 release it is shaped like is read from its
# configs, as for real weights.
TINY_PROFILE = {"name": "tiny", "render_scale": 1 / 16}
# The built-in tiny model has LTX-2.3's structure (the current open release); 2.0 and 2.5 shapes exist so
# that the tests can check how each release is recognised and sampled.
TINY_RELEASE = "2.3"

_TEXT_HIDDEN = 32  # LTX-2.0's connectors run at the text encoder's width: 4 heads x 8
_TEXT_LAYERS = 2
_LATENT_CHANNELS = 8
_SPECIAL_TOKENS = ["<pad>", "<eos>", "<bos>", "<unk>"]


def build_tokenizer():
    """A byte-level tokenizer: every prompt in any script maps to known tokens, with no download."""
    from tokenizers import Tokenizer, decoders, models
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import GemmaTokenizerFast

    alphabet = sorted(ByteLevel.alphabet())
    vocab = {token: index for index, token in enumerate(_SPECIAL_TOKENS + alphabet)}
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    tokenizer.pre_tokenizer = ByteLevel(add_prefix_space=False, use_regex=False)
    tokenizer.decoder = decoders.ByteLevel()
    return GemmaTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="<pad>",
        eos_token="<eos>",
        bos_token="<bos>",
        unk_token="<unk>",
        padding_side="left",
    )


def _vocab_size() -> int:
    return len(_SPECIAL_TOKENS) + 256 + 16  # room for Gemma 3's image marker tokens


def build_text_encoder():
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration

    vocab = _vocab_size()
    config = Gemma3Config(
        text_config={
            "vocab_size": vocab,
            "hidden_size": _TEXT_HIDDEN,
            "intermediate_size": 64,
            "num_hidden_layers": _TEXT_LAYERS,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "head_dim": 16,
            "max_position_embeddings": 4096,
            "sliding_window": 64,
            "pad_token_id": 0,
            "eos_token_id": 1,
            "bos_token_id": 2,
        },
        vision_config={
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": 28,
            "patch_size": 14,
        },
        mm_tokens_per_image=4,
        boi_token_index=vocab - 3,
        eoi_token_index=vocab - 2,
        image_token_index=vocab - 1,
    )
    return Gemma3ForConditionalGeneration(config).eval()


def build_components(release: str = TINY_RELEASE) -> dict:
    """Every component of the fast path, seeded so that each build is bit-identical.

    `release` switches what differs between LTX-2 releases in diffusers' conversion script: 2.3 adds gated
    attention, cross-attention modulation, per-modality text projections and the 48 kHz vocoder with
    bandwidth extension to 2.0's structure; 2.5 drops the video feed-forward bias.
    """
    if release not in VERSIONS:
        raise ValueError(f"unknown LTX-2 release {release!r}; one of {', '.join(VERSIONS)}")
    modern = release != "2.0"
    from diffusers import (
        AutoencoderKLLTX2Audio,
        AutoencoderKLLTX2Video,
        FlowMatchEulerDiscreteScheduler,
        LTX2VideoTransformer3DModel,
    )
    from diffusers.pipelines.ltx2 import LTX2LatentUpsamplerModel, LTX2TextConnectors

    torch.manual_seed(TINY_SEED)
    text_encoder = build_text_encoder()

    # 2.0 projects the text once, at the text encoder's width, for both streams; 2.3 and later project it
    # to each stream's own width (video 2 heads x 8, audio 2 heads x 4).
    torch.manual_seed(TINY_SEED)
    widths = (
        {"per_modality_projections": True, "proj_bias": True, "video_hidden_dim": 16, "audio_hidden_dim": 8}
        if modern
        else {}
    )
    connectors = LTX2TextConnectors(
        caption_channels=_TEXT_HIDDEN,
        text_proj_in_factor=_TEXT_LAYERS + 1,
        video_connector_num_attention_heads=2 if modern else 4,
        video_connector_attention_head_dim=8,
        video_connector_num_layers=1,
        video_connector_num_learnable_registers=None,
        video_gated_attn=modern,
        audio_connector_num_attention_heads=2 if modern else 4,
        audio_connector_attention_head_dim=4 if modern else 8,
        audio_connector_num_layers=1,
        audio_connector_num_learnable_registers=None,
        audio_gated_attn=modern,
        connector_rope_base_seq_len=32,
        rope_theta=10000.0,
        rope_double_precision=False,
        causal_temporal_positioning=False,
        rope_type="split",
        **widths,
    )

    torch.manual_seed(TINY_SEED)
    transformer = LTX2VideoTransformer3DModel(
        in_channels=_LATENT_CHANNELS,
        out_channels=_LATENT_CHANNELS,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=2,
        attention_head_dim=8,
        cross_attention_dim=16,
        audio_in_channels=4,
        audio_out_channels=4,
        audio_num_attention_heads=2,
        audio_attention_head_dim=4,
        audio_cross_attention_dim=8,
        num_layers=2,
        qk_norm="rms_norm_across_heads",
        caption_channels=_TEXT_HIDDEN,
        rope_double_precision=False,
        rope_type="split",
        gated_attn=modern,
        cross_attn_mod=modern,
        audio_gated_attn=modern,
        audio_cross_attn_mod=modern,
        use_prompt_embeddings=not modern,
        perturbed_attn=modern,
        ff_bias=release != "2.5",
    )

    # The real video VAE's ratios (32x spatial, 8x temporal) with very few channels, so latent shapes
    # and frame counts follow the same rules as the full model's.
    torch.manual_seed(TINY_SEED)
    vae = AutoencoderKLLTX2Video(
        latent_channels=_LATENT_CHANNELS,
        block_out_channels=(8, 16, 32, 32),
        decoder_block_out_channels=(8, 16, 32),
        layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1),
        spatio_temporal_scaling=(True, True, True, True),
        decoder_spatio_temporal_scaling=(True, True, True),
        decoder_inject_noise=(False, False, False, False),
        upsample_residual=(True, True, True),
        upsample_factor=(2, 2, 2),
        patch_size=4,
        patch_size_t=1,
        decoder_causal=False,
        spatial_compression_ratio=32,
        temporal_compression_ratio=8,
    )

    torch.manual_seed(TINY_SEED)
    audio_vae = AutoencoderKLLTX2Audio(
        base_channels=4,
        output_channels=2,
        ch_mult=(1,),
        num_res_blocks=1,
        attn_resolutions=None,
        in_channels=2,
        resolution=32,
        latent_channels=2,
        norm_type="pixel",
        causality_axis="height",
        dropout=0.0,
        mid_block_add_attention=False,
        sample_rate=16000,
        mel_hop_length=160,
        is_causal=True,
        mel_bins=8,
    )

    torch.manual_seed(TINY_SEED)
    vocoder = _build_vocoder(modern)

    torch.manual_seed(TINY_SEED)
    latent_upsampler = LTX2LatentUpsamplerModel(
        in_channels=_LATENT_CHANNELS,
        mid_channels=32,
        num_blocks_per_stage=1,
        dims=3,
        spatial_upsample=True,
        temporal_upsample=False,
        use_rational_resampler=False,
    )

    return {
        "transformer": transformer,
        "vae": vae,
        "audio_vae": audio_vae,
        "scheduler": FlowMatchEulerDiscreteScheduler(),
        "text_encoder": text_encoder,
        "tokenizer": build_tokenizer(),
        "connectors": connectors,
        "vocoder": vocoder,
        "latent_upsampler": latent_upsampler,
    }


def _build_vocoder(bandwidth_extension: bool):
    """100 mel frames a second (16 kHz, hop 160) in. LTX-2.0's vocoder upsamples them x240 to 24 kHz; 2.3's
    makes 16 kHz (x160), takes a 200-a-second mel of that (hop 80) and extends it x240 to 48 kHz."""
    from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder, LTX2VocoderWithBWE

    if not bandwidth_extension:
        return LTX2Vocoder(
            in_channels=2 * 8,
            hidden_channels=32,
            out_channels=2,
            upsample_kernel_sizes=[8, 12, 20],
            upsample_factors=[4, 6, 10],
            resnet_kernel_sizes=[3],
            resnet_dilations=[[1, 3, 5]],
            leaky_relu_negative_slope=0.1,
            output_sampling_rate=24000,
        )
    return LTX2VocoderWithBWE(
        in_channels=2 * 8,
        hidden_channels=32,
        upsample_kernel_sizes=[8, 8, 20],
        upsample_factors=[4, 4, 10],
        resnet_kernel_sizes=[3],
        resnet_dilations=[[1, 3, 5]],
        bwe_in_channels=2 * 16,
        bwe_hidden_channels=32,
        bwe_upsample_kernel_sizes=[8, 12, 20],
        bwe_upsample_factors=[4, 6, 10],
        bwe_resnet_kernel_sizes=[3],
        bwe_resnet_dilations=[[1, 3, 5]],
        num_mel_channels=16,
    )


def save_tiny_model(directory: Path, release: str = TINY_RELEASE) -> Path:
    """Write the tiny model in the diffusers layout of the real LTX-2 repository."""
    from diffusers import LTX2Pipeline

    components = build_components(release)
    latent_upsampler = components.pop("latent_upsampler")
    pipe = LTX2Pipeline(**components, processor=None, prompt_enhancer=None, duration_head=None)
    pipe.save_pretrained(directory)
    latent_upsampler.save_pretrained(directory / "latent_upsampler")
    (directory / PROFILE_FILE).write_text(json.dumps(TINY_PROFILE, indent=2) + "\n")
    return directory


def ensure_tiny_model(cache_dir: Path) -> Path:
    """The tiny model's directory, built on first use. Concurrent builders cannot see a half-written copy."""
    target = cache_dir / f"tiny-v{TINY_VERSION}"
    if (target / PROFILE_FILE).exists():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".tiny-", dir=cache_dir))
    try:
        save_tiny_model(staging)
        try:
            staging.rename(target)
        except OSError:
            if not (target / PROFILE_FILE).exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
