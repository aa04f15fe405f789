# InternVideo-Next Stage 2, ViT-L/14, 32 frames x 224 px, 100 epochs on K-Mash, from a Stage-1 ViT-L checkpoint.
# Paper (Table 1, ViT-L Stage 2, attentive probe 16x224): K400 88.4 / SSv2 73.0 / COIN 93.6.
# Recipe: paper Table 13; release exp/large/pretrain/stage2.sh (8 clips x 128 GPUs = 1024, drop path 0.2).
_base_ = ['./ivnext-stage2_vit-b-p14_32x224_100e_kmash.py']

encoder_dims = 1024

model = dict(
    backbone=dict(arch='large', drop_path_rate=0.2),
    neck=dict(in_dims=encoder_dims),
    head=dict(target_dims=encoder_dims))
train_dataloader = dict(batch_size=8)
