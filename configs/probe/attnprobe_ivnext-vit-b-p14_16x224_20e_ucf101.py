# Attentive probe on a frozen InternVideo-Next ViT-B/14 encoder, 16 frames x 224 px, 20 epochs, ucf101.
# lr 0.0003 (not in the paper; the K400 setting); label smoothing 0.1, RandAugment, CutMix (paper Table 15).
_base_ = [
    '../_base_/models/attnprobe_ivnext-vit-b.py',
    '../_base_/datasets/ucf101.py',
    '../_base_/schedules/probe_adamw-cosine_20e.py',
    '../_base_/default_runtime.py'
]

model = dict(
    cls_head=dict(num_classes={{_base_.num_classes}}),
    data_preprocessor=dict(blending=dict(num_classes={{_base_.num_classes}})))

optim_wrapper = dict(optimizer=dict(lr=0.0003))
