"""Published LTX-2 component configs, and a reduced copy of each that a 2-core CPU runs in seconds.

The full configs are diffusers' `scripts/convert_ltx2_to_diffusers.py` (versions "2.0" and "2.3") and
Gemma 3 12B's published config for the text encoder. The small ones keep every structural switch of the
full ones (gated attention, cross-attention modulation, per-modality connector projections, the
bandwidth-extending vocoder, the latent and mel channel counts) and shrink only widths and depths.
"""

from __future__ import annotations

VERSIONS = ("2.0", "2.3")

_TRANSFORMER_COMMON = {
    "in_channels": 128,
    "out_channels": 128,
    "patch_size": 1,
    "patch_size_t": 1,
    "num_attention_heads": 32,
    "attention_head_dim": 128,
    "cross_attention_dim": 4096,
    "vae_scale_factors": (8, 32, 32),
    "pos_embed_max_pos": 20,
    "base_height": 2048,
    "base_width": 2048,
    "audio_in_channels": 128,
    "audio_out_channels": 128,
    "audio_patch_size": 1,
    "audio_patch_size_t": 1,
    "audio_num_attention_heads": 32,
    "audio_attention_head_dim": 64,
    "audio_cross_attention_dim": 2048,
    "audio_scale_factor": 4,
    "audio_pos_embed_max_pos": 20,
    "audio_sampling_rate": 16000,
    "audio_hop_length": 160,
    "num_layers": 48,
    "activation_fn": "gelu-approximate",
    "qk_norm": "rms_norm_across_heads",
    "norm_elementwise_affine": False,
    "norm_eps": 1e-6,
    "caption_channels": 3840,
    "attention_bias": True,
    "attention_out_bias": True,
    "rope_theta": 10000.0,
    "rope_double_precision": True,
    "causal_offset": 1,
    "timestep_scale_multiplier": 1000,
    "cross_attn_timestep_scale_multiplier": 1000,
    "rope_type": "split",
}

_TRANSFORMER = {
    "2.0": {
        **_TRANSFORMER_COMMON,
        "gated_attn": False,
        "cross_attn_mod": False,
        "audio_gated_attn": False,
        "audio_cross_attn_mod": False,
        "use_prompt_embeddings": True,
        "perturbed_attn": False,
    },
    "2.3": {
        **_TRANSFORMER_COMMON,
        "gated_attn": True,
        "cross_attn_mod": True,
        "audio_gated_attn": True,
        "audio_cross_attn_mod": True,
        "use_prompt_embeddings": False,
        "perturbed_attn": True,
    },
}

_CONNECTORS = {
    "2.0": {
        "caption_channels": 3840,
        "text_proj_in_factor": 49,
        "video_connector_num_attention_heads": 30,
        "video_connector_attention_head_dim": 128,
        "video_connector_num_layers": 2,
        "video_connector_num_learnable_registers": 128,
        "video_gated_attn": False,
        "audio_connector_num_attention_heads": 30,
        "audio_connector_attention_head_dim": 128,
        "audio_connector_num_layers": 2,
        "audio_connector_num_learnable_registers": 128,
        "audio_gated_attn": False,
        "connector_rope_base_seq_len": 4096,
        "rope_theta": 10000.0,
        "rope_double_precision": True,
        "causal_temporal_positioning": False,
        "rope_type": "split",
        "per_modality_projections": False,
        "proj_bias": False,
    },
    "2.3": {
        "caption_channels": 3840,
        "text_proj_in_factor": 49,
        "video_connector_num_attention_heads": 32,
        "video_connector_attention_head_dim": 128,
        "video_connector_num_layers": 8,
        "video_connector_num_learnable_registers": 128,
        "video_gated_attn": True,
        "audio_connector_num_attention_heads": 32,
        "audio_connector_attention_head_dim": 64,
        "audio_connector_num_layers": 8,
        "audio_connector_num_learnable_registers": 128,
        "audio_gated_attn": True,
        "connector_rope_base_seq_len": 4096,
        "rope_theta": 10000.0,
        "rope_double_precision": True,
        "causal_temporal_positioning": False,
        "rope_type": "split",
        "per_modality_projections": True,
        "video_hidden_dim": 4096,
        "audio_hidden_dim": 2048,
        "proj_bias": True,
    },
}

_VAE_COMMON = {
    "in_channels": 3,
    "out_channels": 3,
    "latent_channels": 128,
    "down_block_types": ("LTX2VideoDownBlock3D",) * 4,
    "spatio_temporal_scaling": (True, True, True, True),
    "downsample_type": ("spatial", "temporal", "spatiotemporal", "spatiotemporal"),
    "timestep_conditioning": False,
    "patch_size": 4,
    "patch_size_t": 1,
    "resnet_norm_eps": 1e-6,
    "encoder_causal": True,
    "decoder_causal": False,
    "encoder_spatial_padding_mode": "zeros",
    "spatial_compression_ratio": 32,
    "temporal_compression_ratio": 8,
}

_VAE = {
    "2.0": {
        **_VAE_COMMON,
        "block_out_channels": (256, 512, 1024, 2048),
        "decoder_block_out_channels": (256, 512, 1024),
        "layers_per_block": (4, 6, 6, 2, 2),
        "decoder_layers_per_block": (5, 5, 5, 5),
        "decoder_spatio_temporal_scaling": (True, True, True),
        "decoder_inject_noise": (False, False, False, False),
        "upsample_type": ("spatiotemporal", "spatiotemporal", "spatiotemporal"),
        "upsample_residual": (True, True, True),
        "upsample_factor": (2, 2, 2),
        "decoder_spatial_padding_mode": "reflect",
    },
    "2.3": {
        **_VAE_COMMON,
        "block_out_channels": (256, 512, 1024, 1024),
        "decoder_block_out_channels": (256, 512, 512, 1024),
        "layers_per_block": (4, 6, 4, 2, 2),
        "decoder_layers_per_block": (4, 6, 4, 2, 2),
        "decoder_spatio_temporal_scaling": (True, True, True, True),
        "decoder_inject_noise": (False, False, False, False, False),
        "upsample_type": ("spatiotemporal", "spatiotemporal", "temporal", "spatial"),
        "upsample_residual": (False, False, False, False),
        "upsample_factor": (2, 2, 1, 2),
        "decoder_spatial_padding_mode": "zeros",
    },
}

_AUDIO_VAE = {
    "base_channels": 128,
    "output_channels": 2,
    "ch_mult": (1, 2, 4),
    "num_res_blocks": 2,
    "attn_resolutions": None,
    "in_channels": 2,
    "resolution": 256,
    "latent_channels": 8,
    "norm_type": "pixel",
    "causality_axis": "height",
    "dropout": 0.0,
    "mid_block_add_attention": False,
    "sample_rate": 16000,
    "mel_hop_length": 160,
    "is_causal": True,
    "mel_bins": 64,
    "double_z": True,
}

_VOCODER = {
    "2.0": {
        "in_channels": 128,
        "hidden_channels": 1024,
        "out_channels": 2,
        "upsample_kernel_sizes": [16, 15, 8, 4, 4],
        "upsample_factors": [6, 5, 2, 2, 2],
        "resnet_kernel_sizes": [3, 7, 11],
        "resnet_dilations": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
        "act_fn": "leaky_relu",
        "leaky_relu_negative_slope": 0.1,
        "antialias": False,
        "final_act_fn": "tanh",
        "final_bias": True,
        "output_sampling_rate": 24000,
    },
    "2.3": {
        "in_channels": 128,
        "hidden_channels": 1536,
        "out_channels": 2,
        "upsample_kernel_sizes": [11, 4, 4, 4, 4, 4],
        "upsample_factors": [5, 2, 2, 2, 2, 2],
        "resnet_kernel_sizes": [3, 7, 11],
        "resnet_dilations": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
        "act_fn": "snakebeta",
        "leaky_relu_negative_slope": 0.1,
        "antialias": True,
        "antialias_ratio": 2,
        "antialias_kernel_size": 12,
        "final_act_fn": None,
        "final_bias": False,
        "bwe_in_channels": 128,
        "bwe_hidden_channels": 512,
        "bwe_out_channels": 2,
        "bwe_upsample_kernel_sizes": [12, 11, 4, 4, 4],
        "bwe_upsample_factors": [6, 5, 2, 2, 2],
        "bwe_resnet_kernel_sizes": [3, 7, 11],
        "bwe_resnet_dilations": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
        "bwe_act_fn": "snakebeta",
        "bwe_leaky_relu_negative_slope": 0.1,
        "bwe_antialias": True,
        "bwe_antialias_ratio": 2,
        "bwe_antialias_kernel_size": 12,
        "bwe_final_act_fn": None,
        "bwe_final_bias": False,
        "filter_length": 512,
        "hop_length": 80,
        "window_length": 512,
        "num_mel_channels": 64,
        "input_sampling_rate": 16000,
        "output_sampling_rate": 48000,
    },
}

_UPSAMPLER = {
    "2.0": {
        "in_channels": 128,
        "mid_channels": 1024,
        "num_blocks_per_stage": 4,
        "dims": 3,
        "spatial_upsample": True,
        "temporal_upsample": False,
        "rational_spatial_scale": 2.0,
        "use_rational_resampler": True,
    },
    "2.3": {
        "in_channels": 128,
        "mid_channels": 1024,
        "num_blocks_per_stage": 4,
        "dims": 3,
        "spatial_upsample": True,
        "temporal_upsample": False,
        "rational_spatial_scale": 2.0,
        "use_rational_resampler": False,
    },
}

# google/gemma-3-12b-pt: the text tower is what LTX-2 runs (all 49 hidden states are used); the SigLIP
# vision tower is part of the published model class and its memory, though a text prompt never runs it.
GEMMA3_12B = {
    "text_config": {
        "vocab_size": 262_208,
        "hidden_size": 3840,
        "intermediate_size": 15_360,
        "num_hidden_layers": 48,
        "num_attention_heads": 16,
        "num_key_value_heads": 8,
        "head_dim": 256,
        "query_pre_attn_scalar": 256,
        "sliding_window": 1024,
        "max_position_embeddings": 131_072,
        "rope_parameters": {
            "full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 1_000_000.0},
            "sliding_attention": {"rope_type": "default", "rope_theta": 10_000.0},
        },
        "pad_token_id": 0,
        "eos_token_id": 1,
        "bos_token_id": 2,
    },
    "vision_config": {
        "hidden_size": 1152,
        "intermediate_size": 4304,
        "num_hidden_layers": 27,
        "num_attention_heads": 16,
        "image_size": 896,
        "patch_size": 14,
        "vision_use_head": False,
    },
    "mm_tokens_per_image": 256,
    "boi_token_index": 255_999,
    "eoi_token_index": 256_000,
    "image_token_index": 262_144,
}

# The reduced sizes: width 64 video / 32 audio, 2 layers, a 3-layer text encoder of width 64.
_SMALL_TEXT = {"hidden_size": 64, "num_hidden_layers": 3}


def full(version: str) -> dict[str, dict]:
    if version not in VERSIONS:
        raise ValueError(f"unknown LTX-2 version {version!r}; one of {VERSIONS}")
    return {
        "transformer": dict(_TRANSFORMER[version]),
        "connectors": dict(_CONNECTORS[version]),
        "vae": dict(_VAE[version]),
        "audio_vae": dict(_AUDIO_VAE),
        "vocoder": dict(_VOCODER[version]),
        "latent_upsampler": dict(_UPSAMPLER[version]),
        "text_encoder": {key: dict(value) if isinstance(value, dict) else value for key, value in GEMMA3_12B.items()},
    }


def small(version: str) -> dict[str, dict]:
    configs = full(version)
    text = configs["text_encoder"]
    text["text_config"].update(
        vocab_size=512,
        hidden_size=_SMALL_TEXT["hidden_size"],
        intermediate_size=128,
        num_hidden_layers=_SMALL_TEXT["num_hidden_layers"],
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=32,
        query_pre_attn_scalar=32,
        sliding_window=64,
        max_position_embeddings=4096,
    )
    text["vision_config"].update(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2)
    text["vision_config"].update(image_size=28, patch_size=14)
    text.update(mm_tokens_per_image=4, boi_token_index=509, eoi_token_index=510, image_token_index=511)

    configs["transformer"].update(
        num_attention_heads=2,
        attention_head_dim=32,
        cross_attention_dim=64,
        audio_num_attention_heads=2,
        audio_attention_head_dim=16,
        audio_cross_attention_dim=32,
        num_layers=2,
        caption_channels=_SMALL_TEXT["hidden_size"],
    )
    connectors = configs["connectors"]
    connectors.update(
        caption_channels=_SMALL_TEXT["hidden_size"],
        text_proj_in_factor=_SMALL_TEXT["num_hidden_layers"] + 1,
        video_connector_num_layers=1,
        audio_connector_num_layers=1,
        video_connector_num_learnable_registers=8,
        audio_connector_num_learnable_registers=8,
        connector_rope_base_seq_len=256,
    )
    if connectors["per_modality_projections"]:
        # Each modality's connector is as wide as that stream of the transformer.
        connectors.update(
            video_connector_num_attention_heads=2,
            video_connector_attention_head_dim=32,
            audio_connector_num_attention_heads=2,
            audio_connector_attention_head_dim=16,
            video_hidden_dim=64,
            audio_hidden_dim=32,
        )
    else:
        # One connector width, the text encoder's, feeds both streams.
        connectors.update(
            video_connector_num_attention_heads=2,
            video_connector_attention_head_dim=32,
            audio_connector_num_attention_heads=2,
            audio_connector_attention_head_dim=32,
        )

    vae = configs["vae"]
    vae["block_out_channels"] = (16, 32, 64, 64)
    vae["layers_per_block"] = (1, 1, 1, 1, 1)
    vae["decoder_block_out_channels"] = tuple(min(c // 16, 64) for c in vae["decoder_block_out_channels"])
    vae["decoder_layers_per_block"] = tuple(1 for _ in vae["decoder_layers_per_block"])

    # base_channels stays: the audio latents' normalisation statistics are sized by it (8 channels x 16 mel
    # bins); three levels of ch_mult keep the 4x mel and time compression.
    configs["audio_vae"].update(ch_mult=(1, 1, 1), num_res_blocks=1)
    vocoder = configs["vocoder"]
    # Each upsampling stage halves the channels: 2 are left after the last of 6 (5 in the BWE stage).
    vocoder.update(hidden_channels=128, resnet_kernel_sizes=[3], resnet_dilations=[[1, 3]])
    if "bwe_hidden_channels" in vocoder:
        vocoder.update(bwe_hidden_channels=64, bwe_resnet_kernel_sizes=[3], bwe_resnet_dilations=[[1, 3]])
    configs["latent_upsampler"].update(mid_channels=32, num_blocks_per_stage=1)
    return configs
