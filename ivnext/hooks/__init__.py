"""Runner hooks."""
from .lazy_runtime_info_hook import LazyRuntimeInfoHook
from .teacher_ema_hook import TeacherEMAHook

__all__ = ['LazyRuntimeInfoHook', 'TeacherEMAHook']
