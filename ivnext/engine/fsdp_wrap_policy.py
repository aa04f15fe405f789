"""FSDP auto-wrap policy that makes every residual block its own FSDP unit."""
from typing import Sequence

from mmengine.registry import FUNCTIONS
from torch import nn

#: Blocks of the encoder and the ViT predictor, the diffusion decoder's residual blocks and ModernBERT layers.
DEFAULT_BLOCK_CLASSES = ('TransformerBlock', 'AdaLNResBlock', 'ModernBertEncoderLayer')


@FUNCTIONS.register_module()
def block_wrap_policy(module: nn.Module, recurse: bool, nonwrapped_numel: int,
                      block_classes: Sequence[str] = DEFAULT_BLOCK_CLASSES) -> bool:
    """Wrap exactly the residual blocks (by class name); everything else stays in the root unit.

    Why not ``size_based_auto_wrap_policy``: the algorithms call methods other than ``forward`` on the encoder
    (``forward_tokens``, ``pool``) and the heads (``loss``, ``sample``). FSDP gathers a unit's parameters only in
    that unit's ``forward``, so a wrapped encoder or head would be used sharded. Blocks are always called through
    ``forward``; patch embedding, position tables, tokens and small projections live in the root unit, which
    FSDP gathers for the whole step. Keep frozen teachers out with ``ignored_modules=['teacher']``.

    Args:
        module: Candidate module (FSDP's policy protocol).
        recurse: True while FSDP asks whether to descend into ``module``.
        nonwrapped_numel: Parameters of ``module`` not yet wrapped (unused).
        block_classes: Class names to wrap.

    Returns:
        bool: whether to descend (``recurse``) or wrap ``module``.
    """
    if recurse:
        return True
    return type(module).__name__ in tuple(block_classes)
