"""The speed options of the fast path, applied to a loaded model once, before its first generation.

Each is off by default and measured one at a time in bench/gpu_pipeline.py; bench/gpu-speed-notes.md
says what each was predicted to give and what it gave.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from .fp8 import quantize_linears, transformer_block_filter
from .loader import LoadedModel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SpeedSettings:
    # One of diffusers' attention backends ("native", "_native_cudnn", "_native_flash", "flash", ...);
    # None leaves diffusers' default (PyTorch's SDPA, which picks a kernel per call).
    attention_backend: str | None = None
    # FP8 (e4m3, row-wise scales) matmuls in the transformer blocks' linear layers.
    fp8: bool = False
    # Blocks at each end of the stack that stay in full precision under fp8.
    fp8_keep_edge_blocks: int = 1
    # torch.compile of each transformer block (regional: one compiled block serves all 48 layers).
    compile: bool = False
    # Keep the text encoder's weights in pinned host memory and copy them to the GPU only to encode a
    # prompt: frees its ~24 GB (Gemma 3 12B in bf16) for the denoiser and the VAE while they run.
    offload_text_encoder: bool = False


def apply_speedups(model: LoadedModel, settings: SpeedSettings) -> None:
    transformer = model.text_to_video.transformer
    if settings.attention_backend:
        transformer.set_attention_backend(settings.attention_backend)
    if settings.fp8:
        wanted = transformer_block_filter(transformer.config.num_layers, settings.fp8_keep_edge_blocks)
        count = quantize_linears(transformer, wanted)
        log.info("fp8: %d linear layers of the transformer quantized", count)
    if settings.compile:
        transformer.compile_repeated_blocks(fullgraph=True, dynamic=True)
    if settings.offload_text_encoder:
        model.text_encoder_home = PinnedWeights(model.text_to_video.text_encoder, model.device)


class PinnedWeights:
    """A module's weights kept in host memory (pinned where a GPU is the target, for full-speed copies);
    `on_device()` lends it a device copy that is freed on exit. The host copy never changes."""

    def __init__(self, module: torch.nn.Module, device: torch.device) -> None:
        if device.type == "cpu":
            raise ValueError("offload_text_encoder needs a GPU: on the CPU there is nothing to offload to")
        self.module, self.device = module, device
        self._host = {}
        for name, tensor in self._tensors():
            self._host[name] = tensor.data.to("cpu").pin_memory()
            tensor.data = self._host[name]

    def _tensors(self) -> Iterator[tuple[str, torch.Tensor]]:
        # Each tensor once: Gemma ties its output head to its embedding.
        yield from self.module.named_parameters()
        yield from self.module.named_buffers()

    @contextlib.contextmanager
    def on_device(self) -> Iterator[None]:
        for name, tensor in self._tensors():
            tensor.data = self._host[name].to(self.device, non_blocking=True)
        try:
            yield
        finally:
            for name, tensor in self._tensors():
                tensor.data = self._host[name]
