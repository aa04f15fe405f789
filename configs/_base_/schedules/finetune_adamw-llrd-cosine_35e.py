# Full fine-tuning schedule with layer-wise lr decay (BEiT / VideoMAE recipe).
# The paper reports probe settings only; these fine-tuning values (lr 5e-4 at batch 256, weight decay 0.05,
# 5 warmup epochs, 35 epochs, decay 0.75 for ViT-B / 0.85 for ViT-L) are common ViT video fine-tuning values.
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=35, val_begin=1, val_interval=5)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    type='OptimWrapper',
    constructor='LayerDecayOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=5e-4, betas=(0.9, 0.999), weight_decay=0.05),
    # layer id: patch_embed / CLS / positions 0, block i -> i + 1, clip projector and head num_layers + 1;
    # no weight decay on norms, biases, LayerScale gamma and CLS tokens.
    paramwise_cfg=dict(layer_decay_rate=0.75),
    clip_grad=dict(max_norm=5.0))

param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=5, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=30, eta_min=1e-6, by_epoch=True, begin=5, end=35,
         convert_to_iter_based=True),
]

auto_scale_lr = dict(enable=False, base_batch_size=256)
