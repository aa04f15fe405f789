"""Optimizer wrapper constructor that hands only trainable parameters to the optimizer, with the release's
weight-decay exemptions."""
import inspect
from typing import List, Sequence

from mmaction.registry import OPTIM_WRAPPER_CONSTRUCTORS, OPTIM_WRAPPERS, OPTIMIZERS
from mmengine.logging import MMLogger
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapper
from torch import nn


# Names (last component) that never get weight decay, besides every parameter with at most one dimension.
NO_DECAY_NAMES = ('pos_embed', 'cls_token', 'mask_token', 'query_tokens', 'clip_pos_embed')
# The release's pretraining exemptions (``InternVideo2.no_weight_decay()`` of models/InternVideo_next_s{1,2}.py,
# matched by exact name by optim_factory.get_parameter_groups), in ivnext's names: the encoder's position table and
# CLS tokens and the alignment decoders' position table. The predictor's position table and mask token
# (``diff_pos_embed``, ``bert_mask_token``) are not on the list: the release decays them.
RELEASE_PRETRAIN_NO_DECAY_NAMES = ('backbone.pos_embed', 'backbone.cls_token', 'align_head.clip_pos_embed')
_WRAPPER_COMPONENTS = ('_fsdp_wrapped_module.', '_checkpoint_wrapped_module.', '_orig_mod.')


def exempt_from_weight_decay(name: str, param: nn.Parameter, names: Sequence[str] = NO_DECAY_NAMES) -> bool:
    """The release's rule: no weight decay on 1-D parameters (norm weights incl. RMSNorm and q/k norms, LayerScale
    gammas, biases) nor on the named tables (position tables, CLS tokens, mask tokens, probe queries by default).

    Args:
        name: Full parameter name, e.g. ``backbone.blocks.0.attn.q_norm.weight``.
        param: The parameter.
        names: Tables exempt whatever their shape: a name without a dot matches the last name component
            (``'pos_embed'``: every position table), a dotted name the full name (``'backbone.pos_embed'``: the
            encoder's only), ignoring FSDP / checkpoint / compile wrapper components.
    """
    if param.ndim <= 1 or name.endswith('.bias'):
        return True
    for wrapper in _WRAPPER_COMPONENTS:
        name = name.replace(wrapper, '')
    leaf = name.rsplit('.', 1)[-1]
    return any(name == n if '.' in n else leaf == n for n in names)


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class TrainableOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """MMEngine's default constructor, minus every parameter with ``requires_grad=False``, and with the release's
    weight-decay exemptions (:func:`exempt_from_weight_decay`).

    ``paramwise_cfg`` (``custom_keys``, ``norm_decay_mult``, ...) works as in
    :class:`mmengine.optim.DefaultOptimWrapperConstructor`; on top, every exempt parameter gets weight decay 0
    (MMEngine's own norm detection misses ``RMSNorm``, q/k norms and LayerScale). ``paramwise_cfg.
    release_no_decay=False`` switches the exemptions off; ``paramwise_cfg.no_decay_names`` replaces the exempt
    tables (default :data:`NO_DECAY_NAMES`; the pretraining schedules set :data:`RELEASE_PRETRAIN_NO_DECAY_NAMES`,
    the release's list, so that the predictor's position table and mask token are decayed as released). Frozen
    parameters (a probe's backbone) never reach the optimizer, so no optimizer state is kept for them and weight
    decay cannot touch them.
    """

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: dict = None):
        paramwise_cfg = dict(paramwise_cfg or {})
        self.release_no_decay = bool(paramwise_cfg.pop('release_no_decay', True))
        names = paramwise_cfg.pop('no_decay_names', NO_DECAY_NAMES)
        if isinstance(names, str) or not all(isinstance(n, str) for n in names):
            raise TypeError(f'paramwise_cfg.no_decay_names must be a list of parameter names, got {names!r}')
        self.no_decay_names = tuple(names)
        super().__init__(optim_wrapper_cfg, paramwise_cfg or None)

    def add_params(self, params: List[dict], module: nn.Module, prefix: str = '', is_dcn_module=None) -> None:
        """Add the param groups of ``module`` to ``params``, skipping frozen parameters."""
        if not any(p.requires_grad for p in module.parameters()):
            return  # a wholly frozen subtree (e.g. a probe's backbone)
        groups: List[dict] = []
        super().add_params(groups, module, prefix=prefix, is_dcn_module=is_dcn_module)
        params.extend(g for g in groups if all(p.requires_grad for p in g['params']))

    @staticmethod
    def apply_no_decay(params: List[dict], model: nn.Module, no_decay_names: Sequence[str] = NO_DECAY_NAMES) -> None:
        """Set ``weight_decay=0`` on the groups of exempt parameters (splitting mixed groups)."""
        names = {id(p): n for n, p in model.named_parameters()}

        def exempt_param(p) -> bool:
            return exempt_from_weight_decay(names.get(id(p), ''), p, no_decay_names)

        out: List[dict] = []
        for group in params:
            exempt = [p for p in group['params'] if exempt_param(p)]
            rest = [p for p in group['params'] if not exempt_param(p)]
            if exempt and rest:
                out.append(dict(group, params=rest))
                out.append(dict(group, params=exempt, weight_decay=0.0))
            elif exempt:
                out.append(dict(group, weight_decay=0.0))
            else:
                out.append(group)
        params[:] = out

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
        if self.release_no_decay:
            self.apply_no_decay(params, model, self.no_decay_names)
        num_trainable = sum(p.numel() for g in params for p in g['params'])
        num_total = sum(p.numel() for p in model.parameters())
        MMLogger.get_current_instance().info(
            f'optimizer gets {num_trainable} of {num_total} parameters ({num_total - num_trainable} frozen)')
        return self.build_optimizer_from_groups(params)
