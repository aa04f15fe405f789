"""Optimizer wrapper constructors registered in mmaction2's OPTIM_WRAPPER_CONSTRUCTORS."""
from .layer_decay_constructor import LayerDecayOptimWrapperConstructor, get_vit_layer_id
from .probe_sweep_constructor import ProbeSweepOptimWrapperConstructor
from .trainable_constructor import TrainableOptimWrapperConstructor

__all__ = ['LayerDecayOptimWrapperConstructor', 'ProbeSweepOptimWrapperConstructor',
           'TrainableOptimWrapperConstructor', 'get_vit_layer_id']
