# Ablation: full Stage 1 with a linear pixel decoder instead of the conditional diffusion MLP, ViT-B/14, 8x224,
# 30 e K710.
# Paper (decoder ablation, linear probe): linear decoder = K400 69.4 / SSv2 31.3 vs diffusion MLP 75.8 / 36.9.
_base_ = ['./ivnext-stage1_vit-b-p14_siglip2_8x224_30e_k710.py']

model = dict(head=dict(_delete_=True, type='LinearPixelHead', in_dims=1024, target_dims=588, loss_weight=1.0))
