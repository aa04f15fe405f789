# Full fine-tuning of an InternVideo-Next ViT-B/14 encoder (16 frames x 224 px): the linear probe's model
# (linprobe_ivnext-vit-b.py: a classifier on the attention-pooled clip embedding, 768-d) with the encoder trained,
# drop-path 0.1, LayerNorm and dropout 0.5 before the classifier, label smoothing 0.1. A fine-tuning config
# inherits this, a dataset config and the layer-wise-lr-decay schedule, and sets the classes of the head and of
# Mixup / CutMix from the dataset's `num_classes`.
_base_ = ['./linprobe_ivnext-vit-b.py']

model = dict(
    type='Recognizer3D',
    backbone=dict(drop_path_rate=0.1, with_cp=False),
    cls_head=dict(norm='ln', dropout_ratio=0.5))
