# Full fine-tuning of an InternVideo-Next ViT-L/14 encoder as ft_ivnext-vit-b.py, with drop-path 0.2.
_base_ = ['./ft_ivnext-vit-b.py']

model = dict(
    backbone=dict(arch='large', drop_path_rate=0.2,
                  pretrained='checkpoints/internvideo_next_large_p14_res224_f16'))
