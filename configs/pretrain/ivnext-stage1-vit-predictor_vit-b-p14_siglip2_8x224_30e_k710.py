# Ablation: a plain ViT predictor (5 pre-norm blocks, 1024 wide, 16 heads, random init) instead of the last 5
# ModernBERT-Large layers initialised from text, ViT-B/14, 8x224, 30 e K710.
# Paper: the text-initialised ModernBERT predictor is the chosen design; no number for this row is quoted in
# here; compare with the full Stage-1 ablation baseline (K400 75.8 / SSv2 36.9).
_base_ = ['./ivnext-stage1_vit-b-p14_siglip2_8x224_30e_k710.py']

model = dict(
    neck=dict(
        _delete_=True,
        type='TransformerPredictor',
        in_dims=768,
        embed_dims=1024,
        depth=5,
        num_heads=16,
        mlp_ratio=4.0,
        num_cls_tokens=4))
