"""Optimizer wrapper constructor that hands only trainable parameters to the optimizer."""
import inspect
from typing import List

from mmaction.registry import OPTIM_WRAPPER_CONSTRUCTORS, OPTIM_WRAPPERS, OPTIMIZERS
from mmengine.logging import MMLogger
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapper
from torch import nn


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class TrainableOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """MMEngine's default constructor, minus every parameter with ``requires_grad=False``.

    ``paramwise_cfg`` (``custom_keys``, ``norm_decay_mult``, ...) works as in
    :class:`mmengine.optim.DefaultOptimWrapperConstructor`. Frozen parameters (a probe's backbone) never
    reach the optimizer, so no optimizer state is kept for them and weight decay cannot touch them.
    """

    def add_params(self, params: List[dict], module: nn.Module, prefix: str = '', is_dcn_module=None) -> None:
        """Add the param groups of ``module`` to ``params``, skipping frozen parameters."""
        if not any(p.requires_grad for p in module.parameters()):
            return  # a wholly frozen subtree (e.g. a probe's backbone)
        groups: List[dict] = []
        super().add_params(groups, module, prefix=prefix, is_dcn_module=is_dcn_module)
        params.extend(g for g in groups if all(p.requires_grad for p in g['params']))

    def build_optimizer_from_groups(self, params: List[dict]) -> OptimWrapper:
        """Build the optimizer on ``params`` and wrap it as ``optim_wrapper_cfg`` asks."""
        if not params:
            raise ValueError('the model has no trainable parameters; check that the head is not frozen')
        optim_wrapper_cfg = self.optim_wrapper_cfg.copy()
        optim_wrapper_cfg.setdefault('type', 'OptimWrapper')
        optimizer_cfg = self.optimizer_cfg.copy()
        optimizer_cls = optimizer_cfg['type']
        if isinstance(optimizer_cls, str):
            with OPTIMIZERS.switch_scope_and_registry(None) as registry:
                optimizer_cls = registry.get(optimizer_cls)
        first_arg = next(iter(inspect.signature(optimizer_cls).parameters))
        optimizer_cfg[first_arg] = params
        optimizer = OPTIMIZERS.build(optimizer_cfg)
        return OPTIM_WRAPPERS.build(optim_wrapper_cfg, default_args=dict(optimizer=optimizer))

    def __call__(self, model: nn.Module) -> OptimWrapper:
        if hasattr(model, 'module'):
            model = model.module
        params: List[dict] = []
        self.add_params(params, model)
        num_trainable = sum(p.numel() for g in params for p in g['params'])
        num_total = sum(p.numel() for p in model.parameters())
        MMLogger.get_current_instance().info(
            f'optimizer gets {num_trainable} of {num_total} parameters ({num_total - num_trainable} frozen)')
        return self.build_optimizer_from_groups(params)
