# Preset: the release's Stage-1 script rather than the paper (release exp/base/pretrain/stage1.sh): 62 epochs,
# 7 warmup epochs starting from lr 0, mask ratio 0.75 (paper: 50 epochs, 5 warmup, mask 0.8). Everything else as
# ivnext-stage1_vit-b-p14_siglip2_16x224_50e_kmash.py.
_base_ = ['./ivnext-stage1_vit-b-p14_siglip2_16x224_50e_kmash.py']

max_epochs = 62
warmup_epochs = 7

# The release's engine compares the student's pooled embedding with the frame-averaged teacher embedding as it is
# (2 - 2 <s, t>, |t| <= 1), not with its direction (docs/release_equivalence.md).
model = dict(masker=dict(mask_ratio=0.75), pooled_align_head=dict(normalize_target=False))
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs + 1)
param_scheduler = [
    # The release's warm-up is np.linspace(0, lr, warmup_iters): from 0, reaching lr at the last warm-up step.
    # MMEngine's LinearLR cannot start at 0 (its chainable form divides by zero at the second step).
    dict(type='ClosedFormLinearLR', start_factor=0.0, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, eta_min_ratio=1e-2, by_epoch=True,
         begin=warmup_epochs, end=max_epochs, convert_to_iter_based=True),
]
