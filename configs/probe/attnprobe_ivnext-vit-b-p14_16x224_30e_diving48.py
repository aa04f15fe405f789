# Attentive probe on a frozen InternVideo-Next ViT-B/14 encoder, 16 frames x 224 px, 30 epochs, diving48.
# lr 0.001 (not in the paper; the SSv2 (motion) setting); label smoothing 0.1, RandAugment, CutMix (paper Table 15).
_base_ = [
    '../_base_/models/attnprobe_ivnext-vit-b.py',
    '../_base_/datasets/diving48.py',
    '../_base_/schedules/probe_adamw-cosine_30e.py',
    '../_base_/default_runtime.py'
]

model = dict(
    cls_head=dict(num_classes={{_base_.num_classes}}),
    data_preprocessor=dict(blending=dict(num_classes={{_base_.num_classes}})))

optim_wrapper = dict(optimizer=dict(lr=0.001))
