# InternVideo-Next Stage 2, ViT-L/14, 32 frames x 224 px (paper Table 13; release exp/large/pretrain/stage2.sh):
# as ViT-B but 1024 wide / 24 blocks and drop path 0.2.
_base_ = ['./ivnext_stage2_vit-b.py']

encoder_dims = 1024

model = dict(
    backbone=dict(arch='large', drop_path_rate=0.2),
    neck=dict(in_dims=encoder_dims),
    head=dict(target_dims=encoder_dims))
