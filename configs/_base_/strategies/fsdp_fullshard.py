# FSDP with full sharding: MMEngine FlexibleRunner + FSDPStrategy, for the Stage-1 and Stage-2 recipes.
# - Every residual block (encoder, predictor, decoder) is its own FSDP unit (ivnext's `block_wrap_policy`), so its
#   parameters, gradients and AdamW states are sharded across GPUs. Patch embedding, position tables and small
#   projections stay in the root unit, which is gathered for the whole step: the algorithm calls methods other
#   than `forward` on the encoder and the heads, which a wrapped unit would see sharded.
# - The frozen teacher (Stage 1: the image teacher; Stage 2: the frozen encoder) is not sharded
#   (`ignored_modules`): every GPU keeps a full copy and runs it without all-gathers; it is moved to the GPU on the
#   first step and stays out of checkpoints.
# - Checkpoints: one full state dict written by rank 0 (`state_dict_cfg='full'`), readable by the Stage-2
#   initialisation, tools/test.py and tools/convert/export_backbone.py like any other ivnext checkpoint.
# The recipe's `BFloat16OptimWrapper` stays: bf16 autocast, and gradient clipping by the norm over all shards
# (MMEngine's own wrappers clip each shard by its local norm under FSDP).
runner_type = 'FlexibleRunner'
strategy = dict(
    type='FSDPStrategy',
    model_wrapper=dict(auto_wrap_policy=dict(type='block_wrap_policy'), use_orig_params=True,
                       ignored_modules=['teacher']),
    state_dict_cfg='full')
