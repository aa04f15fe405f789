# Stage-2 ablation schedule (paper Tables 2-4: ViT-B, 8 frames, 30 epochs on K710): the Stage-2 recipe of
# pretrain_stage2_adamw-cosine_100e.py over 30 epochs.
_base_ = ['./pretrain_stage2_adamw-cosine_100e.py']

max_epochs = 30

train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs + 1)
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=max_epochs, eta_min_ratio=0.1, by_epoch=True, begin=0, end=max_epochs,
         convert_to_iter_based=True),
]
