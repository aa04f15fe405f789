# A tiny InternVideo-Next ViT recognizer (mmaction2 Recognizer3D + I3DHead) for CPU smoke runs and tests.
# Shapes are deliberately small (width 64, 2 blocks, 56 px, 4 frames); the paper's shapes are arch='base'/'large'.
model = dict(
    type='Recognizer3D',
    backbone=dict(
        type='InternVideoNextViT',
        arch=dict(embed_dims=64, num_layers=2, num_heads=4, mlp_ratio=4.0),
        img_size=56,
        patch_size=14,
        num_frames=4,
        tubelet_size=1,
        drop_path_rate=0.0,
        out_type='featmap',
        # The featmap output does not use the clip projector; leaving it out keeps DDP free of unused parameters.
        with_clip_projector=False,
        use_flash_attn=False),
    cls_head=dict(
        type='I3DHead',
        num_classes=4,
        in_channels=64,
        spatial_type='avg',
        dropout_ratio=0.0,
        average_clips='prob'),
    data_preprocessor=dict(
        type='ActionDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        format_shape='NCTHW'))
