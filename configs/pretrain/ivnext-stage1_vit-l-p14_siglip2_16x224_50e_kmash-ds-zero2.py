# Stage 1 ViT-L with DeepSpeed ZeRO-2: the recipe of
# ivnext-stage1_vit-l-p14_siglip2_16x224_50e_kmash.py under the strategy of
# ../_base_/strategies/deepspeed_zero2.py (needs `pip install deepspeed`). DeepSpeed owns mixed precision and
# clipping, so the optimizer wrapper is DeepSpeed's own, around the recipe's AdamW.
#   tools/dist_train.sh configs/pretrain/ivnext-stage1_vit-l-p14_siglip2_16x224_50e_kmash-ds-zero2.py 8
_base_ = ['./ivnext-stage1_vit-l-p14_siglip2_16x224_50e_kmash.py', '../_base_/strategies/deepspeed_zero2.py']

optim_wrapper = dict(
    _delete_=True,
    type='DeepSpeedOptimWrapper',
    optimizer={{_base_.optim_wrapper.optimizer}},
    constructor='TrainableOptimWrapperConstructor',  # the release's weight-decay exemptions
    paramwise_cfg={{_base_.optim_wrapper.paramwise_cfg}})
