"""Linear learning-rate ramp in closed form, so that it may start at 0 (the release's warm-up)."""
from typing import List

from mmaction.registry import PARAM_SCHEDULERS
from mmengine.optim import LinearLR


@PARAM_SCHEDULERS.register_module()
class ClosedFormLinearLR(LinearLR):
    """MMEngine's ``LinearLR`` computed from the initial learning rate instead of from the previous step.

    Step ``i`` of ``[begin, end)`` sets ``lr = initial_lr * (start + (end_factor - start) * i / (n - 1))`` with
    ``n = end - begin``: ``numpy.linspace(start * lr, end_factor * lr, n)``, the last step reaching
    ``end_factor``, as MMEngine's ``LinearLR``. The release's warm-up (``utils.cosine_scheduler``:
    ``np.linspace(0, lr, warmup_iters)``) starts at 0, which MMEngine's chainable form cannot do: it multiplies
    the previous value, so ``start_factor=0`` divides by zero at the second step. The closed form reads
    ``initial_lr`` only, so it must not overlap in time with another learning-rate scheduler (warm-up then cosine,
    as the pretraining schedules, is fine).

    Args: as :class:`mmengine.optim.LinearLR` (``start_factor`` may be 0).
    """

    def _get_value(self) -> List[float]:
        steps = max(self.total_iters, 1)  # MMEngine's total_iters = end - begin - 1
        fraction = min(self.last_step, steps) / steps
        factor = self.start_factor + (self.end_factor - self.start_factor) * fraction
        return [base * factor for base in self.base_values]
