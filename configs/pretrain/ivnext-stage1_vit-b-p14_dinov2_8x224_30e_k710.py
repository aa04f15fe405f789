# Ablation: DINOv2 ViT-L/14 teacher instead of SigLIP2-1B, ViT-B/14, 8x224, 30 e K710.
# DINOv2 at 224 px gives 16x16 patches (the student's grid); 24 layers, 1024 wide; hidden states entering its
# last 6 layers; pooled target = its CLS token.
# Paper: SigLIP2 is the chosen prior; no number for this row is quoted here, compare with the full
# Stage-1 ablation baseline (K400 75.8 / SSv2 36.9).
# Weights: a local Hugging Face folder of facebook/dinov2-large (model.teacher.pretrained).
_base_ = ['./ivnext-stage1_vit-b-p14_siglip2_8x224_30e_k710.py']

dinov2_l14_path = 'checkpoints/dinov2-large'
model = dict(
    teacher=dict(
        _delete_=True,
        type='DINOv2Teacher',
        pretrained=dinov2_l14_path,
        num_return_layers=6,
        return_interval=1.0,
        dtype='bfloat16'),
    align_head=dict(target_dims=1024),
    pooled_align_head=dict(target_dims=1024))
