"""Regional compilation: ``torch.compile`` each residual block instead of the whole training step."""
from typing import Sequence

from torch import nn

from .fsdp_wrap_policy import DEFAULT_BLOCK_CLASSES


def compile_blocks(model: nn.Module, block_classes: Sequence[str] = DEFAULT_BLOCK_CLASSES, **compile_kwargs) -> int:
    """Compile every block of ``model`` in place (``nn.Module.compile``).

    Why blocks: every block of a stack has the same graph, so the compiler traces it once and reuses the code for
    all of them; compile time stays seconds instead of minutes, and the parts with data-dependent control flow
    (maskers, teachers from transformers, the optimizer step) stay eager. The blocks fuse norms, residual adds,
    LayerScale and GELU into few kernels around the attention and matmuls. Works inside FSDP units (the wrapped
    block is compiled) and with activation checkpointing.

    Args:
        model: Any module; blocks are found by class name among its submodules.
        block_classes: Class names to compile (default: encoder / ViT-predictor blocks, diffusion-decoder
            residual blocks, ModernBERT layers).
        **compile_kwargs: ``torch.compile`` arguments (``mode``, ``backend``, ``fullgraph``, ``dynamic``...).

    Returns:
        int: Number of blocks compiled.
    """
    names = tuple(block_classes)
    count = 0
    for module in model.modules():
        if type(module).__name__ in names:
            module.compile(**compile_kwargs)
            count += 1
    return count
