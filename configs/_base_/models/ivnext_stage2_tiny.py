# A tiny InternVideo-Next Stage-2 model for CPU smoke runs and tests: the Stage-2 parts of the paper's model
# (student and frozen teacher encoder, ModernBERT-layer predictor, latent regression head, two multi-block mask
# views) at the toy sizes of ivnext_stage1_tiny.py, so that a tiny Stage-1 checkpoint initialises it. 4 frames x
# 56 px, patch 14: the algorithm gives the predictor the 4x4x4 token grid when it is built. The paper's shapes are
# in ivnext_stage2_vit-b.py.
num_frames = 4
img_size = 56
patch_size = 14
encoder_dims = 64
predictor_dims = 64

# The release's context cap, 400 tokens per 8 frames of a 16x16 grid, as a fraction of the grid.
max_context_ratio = 400 / 2048

model = dict(
    type='InternVideoNextStage2',
    stage1_checkpoint=None,
    ema_momentum=None,
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
    neck=dict(
        type='ModernBertPredictor',
        in_dims=encoder_dims,
        num_layers=2,
        num_cls_tokens=4,
        pretrained=None,
        model_config=dict(hidden_size=predictor_dims, intermediate_size=96, num_attention_heads=4,
                          num_hidden_layers=3)),
    head=dict(type='LatentRegressionHead', in_dims=predictor_dims, target_dims=encoder_dims),
    maskers=[
        dict(type='MultiBlockMasker3D', num_blocks=8, spatial_scale=(0.15, 0.15), aspect_ratio=(0.75, 1.5),
             temporal_scale=(1.0, 1.0), max_context_ratio=max_context_ratio, context_order='raster'),
        dict(type='MultiBlockMasker3D', num_blocks=2, spatial_scale=(0.7, 0.7), aspect_ratio=(0.75, 1.5),
             temporal_scale=(1.0, 1.0), max_context_ratio=max_context_ratio, context_order='raster'),
    ],
    data_preprocessor=dict(
        type='ActionDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        format_shape='NCTHW'))
