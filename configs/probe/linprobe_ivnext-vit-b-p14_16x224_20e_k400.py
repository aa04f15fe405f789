# Linear probe on the frozen InternVideo-Next ViT-B/14 encoder's attention-pooled clip embedding
# (clip projector output, 768-d), 16 frames x 224 px, 20 epochs, k400. BatchNorm without affine before
# the classifier (MAE linear-probe recipe); no CutMix. lr 0.0003 (paper Table 15 for the attentive probe).
_base_ = [
    '../_base_/models/linprobe_ivnext-vit-b.py',
    '../_base_/datasets/k400_sparse_uniform.py',
    '../_base_/schedules/probe_adamw-cosine_20e.py',
    '../_base_/default_runtime.py'
]

model = dict(cls_head=dict(num_classes={{_base_.num_classes}}))

optim_wrapper = dict(optimizer=dict(lr=0.0003))
