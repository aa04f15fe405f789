# Stage 2 ViT-L with DeepSpeed ZeRO-2: MMEngine FlexibleRunner + DeepSpeedStrategy (needs `pip install deepspeed`).
# Optimizer states and gradients are partitioned across GPUs; bf16 as in the paper; gradient clipping 5.0 and the
# AdamW settings of the base config (DeepSpeed owns mixed precision and clipping, so the optimizer wrapper is
# DeepSpeed's own). Frozen parts (teacher) are left out of the saved DeepSpeed checkpoints.
#   tools/dist_train.sh configs/pretrain/ivnext-stage2_vit-l-p14_32x224_100e_kmash-ds-zero2.py 8
_base_ = ['./ivnext-stage2_vit-l-p14_32x224_100e_kmash.py']

runner_type = 'FlexibleRunner'
strategy = dict(
    type='DeepSpeedStrategy',
    bf16=dict(enabled=True),
    gradient_clipping=5.0,
    exclude_frozen_parameters=True,
    zero_optimization=dict(
        stage=2,
        allgather_partitions=True,
        allgather_bucket_size=int(2e8),
        reduce_scatter=True,
        reduce_bucket_size=int(2e8),
        overlap_comm=True,
        contiguous_gradients=True))
optim_wrapper = dict(
    _delete_=True,
    type='DeepSpeedOptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.05),
    constructor='TrainableOptimWrapperConstructor')  # the release's weight-decay exemptions
