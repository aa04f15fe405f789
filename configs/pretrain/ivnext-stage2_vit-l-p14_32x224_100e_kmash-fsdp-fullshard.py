# Stage 2 ViT-L with FSDP (full sharding): the recipe of
# ivnext-stage2_vit-l-p14_32x224_100e_kmash.py under the strategy of
# ../_base_/strategies/fsdp_fullshard.py (every residual block its own FSDP unit, the frozen teacher replicated,
# one full checkpoint written by rank 0); the recipe's BFloat16OptimWrapper stays.
#   tools/dist_train.sh configs/pretrain/ivnext-stage2_vit-l-p14_32x224_100e_kmash-fsdp-fullshard.py 8
_base_ = ['./ivnext-stage2_vit-l-p14_32x224_100e_kmash.py', '../_base_/strategies/fsdp_fullshard.py']
