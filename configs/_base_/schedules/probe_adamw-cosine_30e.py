# Frozen-backbone probe schedule, paper Table 15: AdamW betas (0.9, 0.999), 30 epochs, cosine decay.
# The lr is set per dataset in the probe configs (3e-4 K400, 1e-3 SSv2, 2e-4 COIN).
# Weight decay, warmup and batch size are not given in the table; 0.05 / 2 epochs / 256 clips are our choices.
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=30, val_begin=1, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    type='OptimWrapper',
    # Only trainable parameters (the head) reach the optimizer; the frozen backbone is left out.
    constructor='TrainableOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=3e-4, betas=(0.9, 0.999), weight_decay=0.05),
    clip_grad=None)

param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=2, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=28, eta_min=1e-6, by_epoch=True, begin=2, end=30,
         convert_to_iter_based=True),
]

# --auto-scale-lr scales the lr linearly from a total batch of 256 clips (e.g. 16 GPUs x 16).
auto_scale_lr = dict(enable=False, base_batch_size=256)
