"""Engine components: optimizer wrappers and constructors, sync-free logging, the FSDP wrap policy."""
from .bf16_optim_wrapper import BFloat16OptimWrapper
from .fsdp_wrap_policy import block_wrap_policy
from .optimizers import LayerDecayOptimWrapperConstructor, TrainableOptimWrapperConstructor, get_vit_layer_id

__all__ = ['BFloat16OptimWrapper', 'block_wrap_policy', 'LayerDecayOptimWrapperConstructor', 'TrainableOptimWrapperConstructor', 'get_vit_layer_id']
