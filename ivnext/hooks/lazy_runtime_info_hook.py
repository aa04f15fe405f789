"""RuntimeInfoHook that reads the step's log values back once per logging interval, not every iteration."""
from typing import Optional, Set

from mmaction.registry import HOOKS
from mmengine.hooks import CheckpointHook, LoggerHook, RuntimeInfoHook

from ivnext.engine.deferred_scalars import defer_scalar, flush_scalars, set_deferred_logging


@HOOKS.register_module()
class LazyRuntimeInfoHook(RuntimeInfoHook):
    """Drop-in replacement for MMEngine's ``RuntimeInfoHook`` without a host-device sync per iteration.

    The stock hook turns every loss value of every step into a Python float, which waits for the GPU to finish
    the step. This one queues the detached tensors (and ``BFloat16OptimWrapper``'s gradient norm) and hands them
    to the message hub in one transfer at the iterations where something reads them: every ``LoggerHook``
    interval (counted both per epoch and overall), every iteration-based ``CheckpointHook`` interval (checkpoints
    store the log history), the end of each epoch and of training, and before validation. The message hub's
    history is the same as with the stock hook; only its update is late between those points. Hooks that read
    ``train/*`` scalars at other iterations (e.g. a plateau scheduler on the train loss) need the stock hook.

    Use it as ``default_hooks = dict(runtime_info=dict(type='LazyRuntimeInfoHook'))``.

    Args:
        interval: Extra flush interval in iterations (default: only the points above).
    """

    def __init__(self, interval: Optional[int] = None) -> None:
        super().__init__()
        if interval is not None and int(interval) < 1:
            raise ValueError(f'interval must be a positive number of iterations, got {interval}')
        self.interval = interval
        self._intervals: Set[int] = set()
        self._inner_intervals: Set[int] = set()

    def before_train(self, runner) -> None:
        super().before_train(runner)
        self._intervals = {int(self.interval)} if self.interval else set()
        self._inner_intervals = set()
        for hook in runner.hooks:
            if isinstance(hook, LoggerHook):
                self._intervals.add(int(hook.interval))
                self._inner_intervals.add(int(hook.interval))
            elif isinstance(hook, CheckpointHook) and not hook.by_epoch and hook.interval > 0:
                self._intervals.add(int(hook.interval))
        set_deferred_logging(True)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs: Optional[dict] = None) -> None:
        if outputs is not None:
            for key, value in outputs.items():
                if hasattr(value, 'detach'):
                    defer_scalar(runner.message_hub, f'train/{key}', value)
                else:
                    runner.message_hub.update_scalar(f'train/{key}', value)
        step = runner.iter + 1
        flush = (any(step % k == 0 for k in self._intervals)
                 or any((batch_idx + 1) % k == 0 for k in self._inner_intervals)
                 or step >= runner.max_iters)
        try:
            flush = flush or batch_idx + 1 >= len(runner.train_dataloader)
        except TypeError:  # a dataloader without a length (infinite sampler)
            pass
        if flush:
            flush_scalars(runner.message_hub)

    def before_val(self, runner) -> None:
        flush_scalars(runner.message_hub)
        super().before_val(runner)

    def after_train(self, runner) -> None:
        flush_scalars(runner.message_hub)
        set_deferred_logging(False)
        super().after_train(runner)
