# Ablation: SigLIP2 alignment alone (layer + pooled alignment on the visible tokens, no predictor, no pixel
# decoder), semantic-aware masks, ViT-B/14, 8x224, 30 e K710.
# Paper (ablation table, linear probe): SigLIP alignment alone = K400 70.7 / SSv2 32.1;
# + diffusion decoder = 74.2 / 35.4; full Stage 1 = 75.8 / 36.9.
_base_ = ['./ivnext-stage1_vit-b-p14_siglip2_8x224_30e_k710.py']

model = dict(neck=None, head=None)
