# InternVideo-Next Stage 1, ViT-B/14, SigLIP2-1B teacher, 16 frames x 224 px, 50 epochs on K-Mash.
# Paper (Table 1, ViT-B Stage 1, attentive probe 16x224): K400 84.8 / SSv2 58.6 / COIN 89.9.
# Recipe: paper Table 13 / Sec. 4.1 (see the _base_ files for each value and its source).
# Train on 128 GPUs (16 clips each = 2048, lr scaled from 1e-3 per 256):
#   bash tools/dist_train.sh configs/pretrain/ivnext-stage1_vit-b-p14_siglip2_16x224_50e_kmash.py 8 \
#     --cfg-options model.teacher.pretrained=/ckpt/siglip2-giant-opt-patch16-256 \
#                   model.neck.pretrained=/ckpt/ModernBERT-large
_base_ = [
    '../_base_/models/ivnext_stage1_vit-b.py', '../_base_/datasets/kmash_pretrain.py',
    '../_base_/schedules/pretrain_stage1_adamw-cosine_50e.py', '../_base_/default_runtime.py'
]

# KMashVideoDataset / TemporalWindow live in ivnext.datasets.
custom_imports = dict(imports=['ivnext', 'ivnext.datasets'], allow_failed_imports=False)

default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(type='SafeCheckpointHook', interval=1, max_keep_ckpts=3, save_best=None))
log_processor = dict(by_epoch=True, window_size=50)
