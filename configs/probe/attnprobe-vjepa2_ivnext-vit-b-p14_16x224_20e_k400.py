# V-JEPA 2's frozen-video classifier protocol on a frozen InternVideo-Next ViT-B/14 encoder, K400: patch tokens
# only (the 4 CLS tokens dropped), width / 64 = 12 heads, three self-attention blocks over the tokens before the
# cross-attention pooling block (V-JEPA 2's 4-block AttentiveClassifier), no LayerNorm before the classifier.
# Sampling, schedule and augmentation as attnprobe_ivnext-vit-b-p14_16x224_20e_k400.py (sparse uniform sampling).
_base_ = ['./attnprobe_ivnext-vit-b-p14_16x224_20e_k400.py']

model = dict(cls_head=dict(num_heads=None, num_cls_tokens=4, depth=4, fc_norm=False))
