"""Activation checkpointing of a stack of blocks (the ``with_cp`` flag of every module that has one)."""
from typing import Callable, Iterable, Optional

import torch
from torch.utils.checkpoint import checkpoint


def run_blocks(blocks: Iterable[Callable[..., torch.Tensor]], x: torch.Tensor, *args, with_cp: bool = False,
               on_output: Optional[Callable[[int, torch.Tensor], None]] = None) -> torch.Tensor:
    """Run ``x = block(x, *args)`` through ``blocks``, recomputing each block in the backward pass if asked.

    A block is checkpointed (``torch.utils.checkpoint``, non-reentrant) when ``with_cp`` is true and ``x`` needs a
    gradient; otherwise it runs plainly. Outputs and gradients are the same either way.

    Args:
        blocks: Callables taking the running tensor (and ``args``) and returning it, e.g. an ``nn.ModuleList``.
        x: Input of the first block, e.g. (B, L, C) tokens.
        *args: Extra inputs passed unchanged to every block (e.g. a (B, C) condition).
        with_cp: Checkpoint each block; pass ``self.with_cp and self.training``.
        on_output: Called as ``on_output(i, x)`` with the output of block ``i`` (to collect hidden states).

    Returns:
        torch.Tensor: Output of the last block, shaped like ``x``.
    """
    for i, block in enumerate(blocks):
        if with_cp and x.requires_grad:
            x = checkpoint(block, x, *args, use_reentrant=False)
        else:
            x = block(x, *args)
        if on_output is not None:
            on_output(i, x)
    return x
