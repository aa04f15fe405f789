# Stage-1 schedule (paper Table 13 / Sec. 4.1; release exp/*/pretrain/stage1.sh):
# AdamW betas (0.9, 0.98), eps 1e-6, weight decay 0.05, lr 1e-3 per 256 clips (scaled by total batch / 256 as
# the release does: auto_scale_lr is on, base 256), 5 warmup epochs then cosine to 1e-5 per 256 clips over 50
# epochs, grad clip 5.0, bf16 autocast. No weight decay on 1-D parameters, position tables, CLS
# and mask tokens.
max_epochs = 50
warmup_epochs = 5

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs + 1)
val_cfg = None
test_cfg = None

optim_wrapper = dict(
    type='BFloat16OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.05),
    clip_grad=dict(max_norm=5.0),
    # No weight decay on 1-D parameters (RMSNorm / q,k-norm weights, LayerScale gammas, biases), the encoder's
    # position table and CLS tokens and the alignment decoders' position table, as the release
    # (InternVideo2.no_weight_decay(), matched by exact name): TrainableOptimWrapperConstructor's exemptions
    # (MMEngine's default constructor does not recognise RMSNorm as a norm). The release decays the predictor's
    # position table and mask token (diff_pos_embed, bert_mask_token: neck.pos_embed, neck.mask_token here).
    constructor='TrainableOptimWrapperConstructor',
    paramwise_cfg=dict(no_decay_names=('backbone.pos_embed', 'backbone.cls_token', 'align_head.clip_pos_embed')))

param_scheduler = [
    # Warm-up from lr 0 to lr at its last iteration, as the release (np.linspace(0, lr, warmup_iters); the paper
    # does not give the start). MMEngine's chainable LinearLR cannot start at 0: ClosedFormLinearLR.
    dict(type='ClosedFormLinearLR', start_factor=0.0, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    # eta_min_ratio keeps the release's min lr (1e-5 per 256 clips) proportional after lr scaling.
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, eta_min_ratio=1e-2, by_epoch=True,
         begin=warmup_epochs, end=max_epochs, convert_to_iter_based=True),
]

# lr above is per 256 clips: MMEngine multiplies it by (GPUs x batch per GPU) / 256.
auto_scale_lr = dict(enable=True, base_batch_size=256)
