# Alignment schedule, InternVideo2's CLIP configs: AdamW lr 4e-4, betas (0.9, 0.98), weight decay 0.2, cosine decay
# to 1% of the lr after 1 warm-up epoch, 3 epochs, no gradient clipping; no weight decay on the temperature
# (TrainableOptimWrapperConstructor exempts every parameter of at most one dimension).
# The recipe trains on a large video-text corpus; on one retrieval dataset's train split the same schedule is our
# choice. Batch: 8 GPUs x 32 clips (--auto-scale-lr scales the lr from 256).
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=3, val_begin=1, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    type='OptimWrapper',
    # Only the trainable parts (projector, alignment layer, temperature) reach the optimizer.
    constructor='TrainableOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=4e-4, betas=(0.9, 0.98), weight_decay=0.2),
    clip_grad=None)

param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=1, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=2, eta_min_ratio=0.01, by_epoch=True, begin=1, end=3,
         convert_to_iter_based=True),
]

auto_scale_lr = dict(enable=False, base_batch_size=256)

# After training, <work_dir>/aligner holds the trained parts for ivnext.load_aligner.
custom_hooks = [dict(type='SaveAlignerHook', folder='aligner')]
