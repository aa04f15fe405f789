# Ablation baseline: full InternVideo-Next Stage 1, ViT-B/14, SigLIP2-1B teacher, 8 frames x 224 px, 30 epochs
# on K710 (paper ablation setting, Tables 2-4, linear probe).
# Paper: full Stage 1 = K400 75.8 / SSv2 36.9 (diffusion MLP decoder; vs linear decoder 69.4 / 31.3).
_base_ = [
    '../_base_/models/ivnext_stage1_vit-b.py', '../_base_/datasets/k710_pretrain.py',
    '../_base_/schedules/pretrain_stage1_adamw-cosine_30e.py', '../_base_/default_runtime.py'
]

# KMashVideoDataset / TemporalWindow live in ivnext.datasets.
custom_imports = dict(imports=['ivnext', 'ivnext.datasets'], allow_failed_imports=False)

# 8 frames, as the K710 pipelines sample (clip_len in ../_base_/datasets/k710_pretrain.py); the predictor's grid
# follows from the backbone.
num_frames = 8
model = dict(backbone=dict(num_frames=num_frames))

default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(type='SafeCheckpointHook', interval=1, max_keep_ckpts=3, save_best=None))
log_processor = dict(by_epoch=True, window_size=50)
