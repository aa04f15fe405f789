# Stage-1 ablation schedule (paper Tables 2-4: ViT-B, 8 frames, 30 epochs on K710): the Stage-1 recipe of
# pretrain_stage1_adamw-cosine_50e.py over 30 epochs. The ablation warmup is not given; 3 epochs keeps the
# recipe's 1:10 warmup share.
_base_ = ['./pretrain_stage1_adamw-cosine_50e.py']

max_epochs = 30
warmup_epochs = 3

train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs + 1)
param_scheduler = [
    # Warm-up from lr 0 to lr at its last iteration, as the release (np.linspace(0, lr, warmup_iters); the paper
    # does not give the start). MMEngine's chainable LinearLR cannot start at 0: ClosedFormLinearLR.
    dict(type='ClosedFormLinearLR', start_factor=0.0, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, eta_min_ratio=1e-2, by_epoch=True,
         begin=warmup_epochs, end=max_epochs, convert_to_iter_based=True),
]
