# Ablation: Stage 2 (frozen Stage-1 teacher, multi-block masks) after the ablation Stage 1, ViT-B/14, 8x224,
# 30 e K710. Paper (ablation table, linear probe): Stage 2 = K400 76.9 / SSv2 56.9 (from Stage 1 75.8 / 36.9).
#   --cfg-options model.stage1_checkpoint=work_dirs/ivnext-stage1_vit-b-p14_siglip2_8x224_30e_k710/epoch_30.pth
_base_ = [
    '../_base_/models/ivnext_stage2_vit-b.py', '../_base_/datasets/k710_pretrain.py',
    '../_base_/schedules/pretrain_stage2_adamw-cosine_30e.py', '../_base_/default_runtime.py'
]

# KMashVideoDataset / TemporalWindow live in ivnext.datasets.
custom_imports = dict(imports=['ivnext', 'ivnext.datasets'], allow_failed_imports=False)

# 8 frames, as the K710 pipelines sample (clip_len in ../_base_/datasets/k710_pretrain.py); the predictor's grid
# follows from the backbone.
num_frames = 8
model = dict(backbone=dict(num_frames=num_frames))

model_wrapper_cfg = dict(type='MMDistributedDataParallel', find_unused_parameters=True)
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(type='SafeCheckpointHook', interval=1, max_keep_ckpts=3, save_best=None))
log_processor = dict(by_epoch=True, window_size=50)
