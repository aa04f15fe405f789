# Preset: the release's Stage-2 script rather than the paper (release exp/base/pretrain/stage2.sh): 101 epochs
# (paper: 100). Everything else as ivnext-stage2_vit-b-p14_32x224_100e_kmash.py.
_base_ = ['./ivnext-stage2_vit-b-p14_32x224_100e_kmash.py']

max_epochs = 101

train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs + 1)
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=max_epochs, eta_min_ratio=0.1, by_epoch=True, begin=0, end=max_epochs,
         convert_to_iter_based=True),
]
