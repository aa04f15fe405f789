"""Runner hooks."""
from .compile_blocks_hook import CompileBlocksHook
from .lazy_runtime_info_hook import LazyRuntimeInfoHook
from .teacher_ema_hook import TeacherEMAHook

__all__ = ['CompileBlocksHook', 'LazyRuntimeInfoHook', 'TeacherEMAHook']
