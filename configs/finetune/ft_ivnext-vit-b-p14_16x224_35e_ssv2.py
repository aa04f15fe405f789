# Full fine-tuning of InternVideo-Next ViT-B/14, 16 frames x 224 px, 35 epochs, ssv2, with layer-wise lr
# decay 0.75 (ViT-B), drop-path 0.1, label smoothing 0.1, RandAugment, Mixup / CutMix.
# Classifier on the encoder's attention-pooled clip embedding (clip projector, 768-d).
_base_ = [
    '../_base_/models/ft_ivnext-vit-b.py',
    '../_base_/datasets/ssv2.py',
    '../_base_/schedules/finetune_adamw-llrd-cosine_35e.py',
    '../_base_/default_runtime.py'
]

model = dict(
    cls_head=dict(num_classes={{_base_.num_classes}}),
    data_preprocessor=dict(
        blending=dict(
            type='RandomBatchAugment',
            augments=[
                dict(type='MixupBlending', alpha=0.8, num_classes={{_base_.num_classes}}),
                dict(type='CutmixBlending', alpha=1.0, num_classes={{_base_.num_classes}})
            ])))

optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.75))
