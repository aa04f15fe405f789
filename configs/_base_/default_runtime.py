# Runtime shared by every ivnext config: mmaction2 registries, ivnext modules, MMEngine hooks and logging.
default_scope = 'mmaction'
custom_imports = dict(imports=['ivnext'], allow_failed_imports=False)

default_hooks = dict(
    # Like MMEngine's RuntimeInfoHook, but log values are read back from the GPU once per logging interval.
    runtime_info=dict(type='LazyRuntimeInfoHook'),
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=20, ignore_last=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # CheckpointHook with atomic saves, resume from the newest complete checkpoint, random states in the checkpoint,
    # weights-only loading and a refusal of checkpoints that do not fit the model (ivnext.hooks).
    checkpoint=dict(type='SafeCheckpointHook', interval=1, max_keep_ckpts=3, save_best='auto'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    sync_buffers=dict(type='SyncBuffersHook'),
    # Counts the clips SkipBadClips replaced (log: `bad_clips`), stops a split with more than 1% bad files.
    bad_clips=dict(type='BadClipHook', max_bad_fraction=0.01))

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # On machines without CUDA, ivnext.compat switches 'nccl' to 'gloo'.
    # A rank that waits longer than `timeout` seconds in a collective (a peer froze or died) ends the job.
    dist_cfg=dict(backend='nccl', timeout=600))

log_processor = dict(type='LogProcessor', window_size=20, by_epoch=True)

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='ActionVisualizer', vis_backends=vis_backends)

log_level = 'INFO'
load_from = None
resume = False
# Checkpoints load weights-only (tensors, plain values and the MMEngine message hub). True (--trust-checkpoint)
# unpickles `load_from` / the resumed file in full: only for files you trust.
trust_checkpoint = False
# A checkpoint whose weights do not fit the model (missing / unexpected / other shapes) stops the run; True
# (--partial-load) loads the keys that fit and warns.
allow_partial_load = False
