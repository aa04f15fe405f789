"""Runner hooks."""
from .compile_blocks_hook import CompileBlocksHook
from .lazy_runtime_info_hook import LazyRuntimeInfoHook
from .safe_checkpoint_hook import SafeCheckpointHook
from .teacher_ema_hook import TeacherEMAHook

__all__ = ['CompileBlocksHook', 'LazyRuntimeInfoHook', 'SafeCheckpointHook', 'TeacherEMAHook']
