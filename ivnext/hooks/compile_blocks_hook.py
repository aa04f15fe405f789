"""Hook that compiles the model's residual blocks before training."""
from typing import Sequence

from mmaction.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.logging import MMLogger

from ivnext.engine.fsdp_wrap_policy import DEFAULT_BLOCK_CLASSES
from ivnext.engine.regional_compile import compile_blocks


@HOOKS.register_module()
class CompileBlocksHook(Hook):
    """``torch.compile`` every residual block of the model when training starts (regional compilation).

    An alternative to MMEngine's ``compile=True``, which compiles the whole ``train_step`` including the data
    preprocessor, the frozen teacher and the optimizer. Configure as
    ``custom_hooks = [dict(type='CompileBlocksHook', mode='max-autotune-no-cudagraphs')]``.

    Args:
        block_classes: Class names of the blocks to compile.
        **compile_kwargs: ``torch.compile`` arguments.
    """

    priority = 'VERY_HIGH'

    def __init__(self, block_classes: Sequence[str] = DEFAULT_BLOCK_CLASSES, **compile_kwargs) -> None:
        self.block_classes = tuple(block_classes)
        self.compile_kwargs = compile_kwargs

    def before_train(self, runner) -> None:
        count = compile_blocks(runner.model, self.block_classes, **self.compile_kwargs)
        if count == 0:
            raise ValueError(f'CompileBlocksHook found no {list(self.block_classes)} in the model; set block_classes '
                             'to the class names of its blocks')
        MMLogger.get_current_instance().info(f'compiled {count} blocks ({self.compile_kwargs or "defaults"})')
