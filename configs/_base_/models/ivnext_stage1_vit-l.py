# InternVideo-Next Stage 1, ViT-L/14 encoder, 16 frames x 224 px (paper Table 13; release
# exp/large/pretrain/stage1.sh): as ViT-B but 1024 wide / 24 blocks, drop path 0.2, and the SigLIP2-1B teacher's
# hidden states taken every 1.67 layers (return_interval=1.67 -> layers [31, 33, 34, 36, 38, 39]).
_base_ = ['./ivnext_stage1_vit-b.py']

encoder_dims = 1024

model = dict(
    backbone=dict(arch='large', drop_path_rate=0.2),
    teacher=dict(return_interval=1.67),
    neck=dict(in_dims=encoder_dims),
    align_head=dict(in_dims=encoder_dims))
