"""Runner hooks."""
from .bad_clip_hook import BadClipHook
from .compile_blocks_hook import CompileBlocksHook
from .lazy_runtime_info_hook import LazyRuntimeInfoHook
from .probe_sweep_hook import ProbeSweepHook
from .reconstruction_vis_hook import ReconstructionVisHook
from .safe_checkpoint_hook import SafeCheckpointHook
from .save_aligner_hook import SaveAlignerHook
from .teacher_ema_hook import TeacherEMAHook

__all__ = ['BadClipHook', 'CompileBlocksHook', 'LazyRuntimeInfoHook', 'ProbeSweepHook', 'ReconstructionVisHook',
           'SafeCheckpointHook', 'SaveAlignerHook', 'TeacherEMAHook']
