# DeepSpeed ZeRO-2: MMEngine FlexibleRunner + DeepSpeedStrategy (needs `pip install deepspeed`), for the Stage-1
# and Stage-2 recipes. Optimizer states and gradients are partitioned across GPUs; bf16 as in the paper; gradient
# clipping 5.0. Frozen parts (teachers) are left out of the saved DeepSpeed checkpoints.
# DeepSpeed owns mixed precision and clipping, so a config using this strategy replaces the recipe's optimizer
# wrapper by DeepSpeed's own around the same AdamW:
#   optim_wrapper = dict(_delete_=True, type='DeepSpeedOptimWrapper', optimizer={{_base_.optim_wrapper.optimizer}},
#                        constructor='TrainableOptimWrapperConstructor')
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
