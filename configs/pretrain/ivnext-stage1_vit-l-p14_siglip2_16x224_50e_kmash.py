# InternVideo-Next Stage 1, ViT-L/14, SigLIP2-1B teacher, 16 frames x 224 px, 50 epochs on K-Mash.
# Paper: only the Stage-2 ViT-L is reported (K400 88.4 / SSv2 73.0 / COIN 93.6 after Stage 2).
# Recipe: paper Table 13; ViT-L differences from ViT-B (release exp/large/pretrain/stage1.sh): drop path 0.2,
# teacher layers every 1.67 instead of 3.33.
_base_ = [
    '../_base_/models/ivnext_stage1_vit-l.py', '../_base_/datasets/kmash_pretrain.py',
    '../_base_/schedules/pretrain_stage1_adamw-cosine_50e.py', '../_base_/default_runtime.py'
]

# KMashVideoDataset / TemporalWindow live in ivnext.datasets.
custom_imports = dict(imports=['ivnext', 'ivnext.datasets'], allow_failed_imports=False)

default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(type='SafeCheckpointHook', interval=1, max_keep_ckpts=3, save_best=None))
log_processor = dict(by_epoch=True, window_size=50)
