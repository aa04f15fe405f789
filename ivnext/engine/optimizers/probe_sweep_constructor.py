"""Optimizer of a probe sweep: one parameter group per probe head, each with the head's lr and weight decay."""
from typing import List

from mmaction.registry import OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.logging import MMLogger
from mmengine.optim import OptimWrapper
from torch import nn

from .trainable_constructor import TrainableOptimWrapperConstructor, exempt_from_weight_decay


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class ProbeSweepOptimWrapperConstructor(TrainableOptimWrapperConstructor):
    """:class:`TrainableOptimWrapperConstructor` whose ``ProbeSweepHead`` gets one parameter group per head.

    Head ``i``'s parameters get ``lr`` / ``weight_decay`` from the head's ``settings[i]`` (a value missing there is
    the optimizer's), and weight decay 0 on the release's exempt parameters (norms, biases, probe queries; see
    :func:`exempt_from_weight_decay`). Other trainable parameters (a neck) are grouped as by the parent class with
    the optimizer's values. Schedulers scale every group from its own initial lr, so each head follows the schedule
    from its own lr.

    ``clip_grad`` is refused: a global gradient norm couples the heads (one head's large gradient would shrink every
    other head's update), and the heads are meant to be independent runs.
    """

    def __call__(self, model: nn.Module) -> OptimWrapper:
        from ivnext.models.heads.probe_sweep_head import ProbeSweepHead
        if hasattr(model, 'module'):
            model = model.module
        found = [(name, m) for name, m in model.named_modules() if isinstance(m, ProbeSweepHead)]
        if len(found) != 1:
            raise ValueError(f'ProbeSweepOptimWrapperConstructor needs exactly one ProbeSweepHead in the model, found '
                             f'{len(found)}; use TrainableOptimWrapperConstructor for single-head probes')
        if self.optim_wrapper_cfg.get('clip_grad'):
            raise ValueError('optim_wrapper.clip_grad couples the heads of a probe sweep through the global gradient '
                             'norm; set optim_wrapper.clip_grad=None')
        name, head = found[0]
        sweep_ids = {id(p) for p in head.parameters()}
        params: List[dict] = []
        self.add_params(params, model)
        params = [g for g in params if not any(id(p) in sweep_ids for p in g['params'])]
        if self.release_no_decay:
            self.apply_no_decay(params, model)
        exempt = exempt_from_weight_decay if self.release_no_decay else None
        params += head.param_groups(prefix=f'{name}.' if name else '', exempt=exempt)
        logger = MMLogger.get_current_instance()
        base = self.optimizer_cfg
        for i, setting in enumerate(head.settings):
            logger.info(f"probe head {i:02d}: lr {setting.get('lr', base.get('lr'))}, weight_decay "
                        f"{setting.get('weight_decay', base.get('weight_decay', 0.0))}")
        return self.build_optimizer_from_groups(params)
