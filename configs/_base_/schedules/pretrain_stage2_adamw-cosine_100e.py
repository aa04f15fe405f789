# Stage-2 schedule (paper Table 13 / Sec. 4.1; release exp/*/pretrain/stage2.sh):
# AdamW betas (0.9, 0.98), eps 1e-6, weight decay 0.05, lr 1e-4 per 256 clips (scaled by total batch / 256),
# no warmup, cosine to 1e-5 per 256 clips over 100 epochs, grad clip 5.0, bf16 autocast.
max_epochs = 100

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs + 1)
val_cfg = None
test_cfg = None

optim_wrapper = dict(
    type='BFloat16OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.05),
    clip_grad=dict(max_norm=5.0),
    # No weight decay on 1-D parameters (RMSNorm / q,k-norm weights, LayerScale gammas, biases), the encoder's
    # position table and CLS tokens and the alignment decoders' position table, as the release
    # (InternVideo2.no_weight_decay(), matched by exact name): TrainableOptimWrapperConstructor's exemptions
    # (MMEngine's default constructor does not recognise RMSNorm as a norm). The release decays the predictor's
    # position table and mask token (diff_pos_embed, bert_mask_token: neck.pos_embed, neck.mask_token here).
    constructor='TrainableOptimWrapperConstructor',
    paramwise_cfg=dict(no_decay_names=('backbone.pos_embed', 'backbone.cls_token', 'align_head.clip_pos_embed')))

param_scheduler = [
    # eta_min_ratio keeps the release's min lr (1e-5 per 256 clips) proportional after lr scaling.
    dict(type='CosineAnnealingLR', T_max=max_epochs, eta_min_ratio=0.1, by_epoch=True, begin=0, end=max_epochs,
         convert_to_iter_based=True),
]

auto_scale_lr = dict(enable=True, base_batch_size=256)
