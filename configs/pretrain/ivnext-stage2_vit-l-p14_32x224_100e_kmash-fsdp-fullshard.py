# Stage 2 ViT-L with FSDP: MMEngine FlexibleRunner + FSDPStrategy; everything else as in the base config.
# Each module above 1e7 parameters (every ViT-L block, the predictor layers) becomes its own FSDP unit, so
# parameters, gradients and AdamW states are sharded across GPUs. use_orig_params (MMEngine's default) lets
# frozen parts (teacher) and trainable parts share a unit. bf16 autocast stays with the AmpOptimWrapper of the
# base config; parameters and reductions stay fp32.
#   tools/dist_train.sh configs/pretrain/ivnext-stage2_vit-l-p14_32x224_100e_kmash-fsdp-fullshard.py 8
_base_ = ['./ivnext-stage2_vit-l-p14_32x224_100e_kmash.py']

runner_type = 'FlexibleRunner'
strategy = dict(
    type='FSDPStrategy',
    model_wrapper=dict(
        auto_wrap_policy=dict(type='torch.distributed.fsdp.wrap.size_based_auto_wrap_policy', min_num_params=int(1e7)),
        use_orig_params=True))
