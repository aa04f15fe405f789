# A tiny InternVideo-Next Stage-1 model for CPU smoke runs and tests: every part of the paper's model
# (semantic-aware masking from an image teacher, ModernBERT-layer predictor, conditional diffusion decoder,
# layer and pooled alignment), at toy sizes and randomly initialised (the teacher is a 2-layer DINOv2 built
# from model_config, the predictor 2 ModernBERT layers built from model_config). 4 frames x 56 px, patch 14:
# a 4x4x4 token grid, which the algorithm gives the predictor, the alignment head and (x the teacher's patch 14)
# the teacher when it is built. The paper's shapes are in ivnext_stage1_vit-b.py.
num_frames = 4
img_size = 56
patch_size = 14
encoder_dims = 64
predictor_dims = 64
teacher_dims = 32

model = dict(
    type='InternVideoNextStage1',
    backbone=dict(
        type='InternVideoNextViT',
        arch=dict(embed_dims=encoder_dims, num_layers=3, num_heads=4, mlp_ratio=2.0),
        img_size=img_size,
        patch_size=patch_size,
        num_frames=num_frames,
        tubelet_size=1,
        out_type='tokens',
        use_flash_attn=False,
        clip_embed_dims=32,
        clip_num_heads=4),
    teacher=dict(
        type='DINOv2Teacher',
        num_return_layers=2,
        model_config=dict(hidden_size=teacher_dims, num_hidden_layers=2, num_attention_heads=2,
                          intermediate_size=64, patch_size=patch_size, image_size=img_size)),
    masker=dict(type='SemanticAwareMasker', mask_ratio=0.75, mode='sample'),
    neck=dict(
        type='ModernBertPredictor',
        in_dims=encoder_dims,
        num_layers=2,
        num_cls_tokens=4,
        pretrained=None,
        model_config=dict(hidden_size=predictor_dims, intermediate_size=96, num_attention_heads=4,
                          num_hidden_layers=3)),
    head=dict(
        type='ConditionalDiffusionHead',
        in_dims=predictor_dims,
        target_dims=3 * patch_size * patch_size,
        width=640,  # >= target_dims (588): the noise prediction is a linear map of the hidden state
        depth=1,
        num_inference_steps=10),
    align_head=dict(type='AlignmentHead', in_dims=encoder_dims, target_dims=teacher_dims, num_layers=2,
                    with_pos_embed=True),
    pooled_align_head=dict(type='PooledAlignmentHead', in_dims=32, target_dims=teacher_dims),
    data_preprocessor=dict(
        type='ActionDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        format_shape='NCTHW'))
