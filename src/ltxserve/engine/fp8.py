"""FP8 matmuls for the transformer's big linear layers: weights stored as float8_e4m3fn with one scale per
output row, activations quantized per token at run time, multiplied by `torch._scaled_mm`.

Written on PyTorch's own kernel rather than torchao because torchao refuses to quantize unless it sees a
compute-capability 8.9 GPU, while `_scaled_mm` also runs on the CPU: the exact code that runs on a
Hopper GPU is tested in CI. Row-wise scales keep one outlier channel from flattening a whole tensor.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

FP8 = torch.float8_e4m3fn
FP8_MAX = torch.finfo(FP8).max
# _scaled_mm on CUDA needs both matrix dimensions to be multiples of 16.
_ALIGN = 16


def _rowwise_quantize(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x [rows, k] -> (float8 values, float32 scale [rows, 1]) with x ≈ values * scale."""
    scale = x.abs().amax(dim=1, keepdim=True).float().clamp(min=1e-12) / FP8_MAX
    values = (x / scale.to(x.dtype)).clamp(-FP8_MAX, FP8_MAX).to(FP8)
    return values, scale


class Fp8Linear(nn.Module):
    """A drop-in for an nn.Linear whose output stays in the original dtype."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.out_dtype = linear.weight.dtype
        weight, scale = _rowwise_quantize(linear.weight.detach())
        self.register_buffer("weight", weight)
        self.register_buffer("weight_scale", scale.t().contiguous())  # [1, out], as _scaled_mm wants it
        self.bias = linear.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        leading = x.shape[:-1]
        values, scale = _rowwise_quantize(x.reshape(-1, self.in_features).to(self.out_dtype))
        out = torch._scaled_mm(
            values,
            self.weight.t(),  # column-major view of the row-major weight: the layout the kernel needs
            scale_a=scale,
            scale_b=self.weight_scale,
            bias=None if self.bias is None else self.bias.to(self.out_dtype),
            out_dtype=self.out_dtype,
        )
        return out.reshape(*leading, self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


def transformer_block_filter(num_layers: int, keep_edge_blocks: int = 1) -> Callable[[str, nn.Linear], bool]:
    """Linear layers inside the transformer blocks, except the first and last `keep_edge_blocks`: the
    blocks next to the latent input and output are where quantization error shows most (a common choice
    for diffusion transformers), and embeddings, projections and the AdaLN layers see few tokens anyway."""

    def wanted(name: str, linear: nn.Linear) -> bool:
        parts = name.split(".")
        if len(parts) < 3 or parts[0] != "transformer_blocks":
            return False
        index = int(parts[1])
        if index < keep_edge_blocks or index >= num_layers - keep_edge_blocks:
            return False
        return linear.in_features % _ALIGN == 0 and linear.out_features % _ALIGN == 0

    return wanted


def quantize_linears(module: nn.Module, wanted: Callable[[str, nn.Linear], bool]) -> int:
    """Replace every nn.Linear that `wanted` picks by an Fp8Linear, in place. Returns how many."""
    chosen = [
        (name, child) for name, child in module.named_modules() if type(child) is nn.Linear and wanted(name, child)
    ]
    for name, linear in chosen:
        parent_name, _, attr = name.rpartition(".")
        parent = module.get_submodule(parent_name) if parent_name else module
        setattr(parent, attr, Fp8Linear(linear))
    return len(chosen)
