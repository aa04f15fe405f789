# Attentive probe on a frozen InternVideo-Next ViT-L/14 encoder, 16 frames x 224 px, 30 epochs, ssv2.
# Paper (Stage-2 ViT-L, attentive probe, 16x224, 1 clip x 3 crops): 73.0 top-1.
# lr 0.001 (paper Table 15); label smoothing 0.1, RandAugment, CutMix (paper Table 15).
_base_ = [
    '../_base_/models/attnprobe_ivnext-vit-l.py',
    '../_base_/datasets/ssv2.py',
    '../_base_/schedules/probe_adamw-cosine_30e.py',
    '../_base_/default_runtime.py'
]

model = dict(
    cls_head=dict(num_classes={{_base_.num_classes}}),
    data_preprocessor=dict(blending=dict(num_classes={{_base_.num_classes}})))

optim_wrapper = dict(optimizer=dict(lr=0.001))
