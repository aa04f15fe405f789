# Attentive probe on a frozen InternVideo-Next ViT-B/14 encoder, 16 frames x 224 px, 20 epochs, k400.
# Paper (Stage-2 ViT-B, attentive probe, 16x224, 1 clip x 3 crops): 85.9 top-1.
# lr 0.0003 (paper Table 15); label smoothing 0.1, RandAugment, CutMix (paper Table 15).
_base_ = [
    '../_base_/models/attnprobe_ivnext-vit-b.py',
    '../_base_/datasets/k400_sparse_uniform.py',
    '../_base_/schedules/probe_adamw-cosine_20e.py',
    '../_base_/default_runtime.py'
]

model = dict(
    cls_head=dict(num_classes={{_base_.num_classes}}),
    data_preprocessor=dict(blending=dict(num_classes={{_base_.num_classes}})))

optim_wrapper = dict(optimizer=dict(lr=0.0003))
