"""EMA update of a Stage-2 teacher after every optimizer step (the paper's EMA ablation)."""
from mmaction.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper


@HOOKS.register_module()
class TeacherEMAHook(Hook):
    """Call ``model.update_teacher()`` after each training iteration.

    The algorithm decides what the update is (:meth:`InternVideoNextStage2.update_teacher` is a no-op for the
    default frozen teacher and an EMA with ``ema_momentum`` otherwise), so the hook works the same under DDP,
    FSDP or a single process.
    """

    priority = 'ABOVE_NORMAL'

    def before_train(self, runner) -> None:
        try:
            from torch.distributed.fsdp import FullyShardedDataParallel
        except ImportError:  # pragma: no cover - builds without distributed
            return
        if isinstance(runner.model, FullyShardedDataParallel):
            raise RuntimeError('TeacherEMAHook needs the whole student on every rank; FSDP shards it. Train the '
                               'EMA ablation with DDP (the default Runner) or DeepSpeed ZeRO-1/2.')

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        model.update_teacher()
