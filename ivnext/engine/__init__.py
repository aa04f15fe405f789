"""Engine components: optimizer wrappers and constructors, parameter schedulers, sync-free logging, FSDP wrapping,
regional compilation."""
from .bf16_optim_wrapper import BFloat16OptimWrapper
from .fsdp_wrap_policy import block_wrap_policy
from .optimizers import LayerDecayOptimWrapperConstructor, TrainableOptimWrapperConstructor, get_vit_layer_id
from .regional_compile import compile_blocks
from .schedulers import ClosedFormLinearLR

__all__ = [
    'BFloat16OptimWrapper', 'block_wrap_policy', 'ClosedFormLinearLR', 'compile_blocks',
    'LayerDecayOptimWrapperConstructor', 'TrainableOptimWrapperConstructor', 'get_vit_layer_id'
]
