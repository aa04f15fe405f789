"""Engine components: optimizer wrapper constructors."""
from .optimizers import LayerDecayOptimWrapperConstructor, TrainableOptimWrapperConstructor, get_vit_layer_id

__all__ = ['LayerDecayOptimWrapperConstructor', 'TrainableOptimWrapperConstructor', 'get_vit_layer_id']
