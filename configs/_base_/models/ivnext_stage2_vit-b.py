# InternVideo-Next Stage 2, ViT-B/14, 32 frames x 224 px (paper Sec. 3.3 / Table 13; release
# exp/base/pretrain/stage2.sh).
#   student      ViT-B/14 initialised from the Stage-1 encoder, drop path 0.1
#   teacher      a frozen copy of the Stage-1 encoder (built from the same config; never saved in checkpoints)
#   predictor    the Stage-1 predictor (ModernBERT-Large last 5 layers), weights from the Stage-1 checkpoint
#   head         a new MLP decoder to the encoder width (LatentRegressionHead), loss 2 - 2cos
#   masks        two V-JEPA multi-block views: 8 blocks at spatial scale 0.15 and 2 blocks at 0.70,
#                aspect ratio 0.75-1.5, full temporal extent
#
# Set the Stage-1 checkpoint (an ivnext Stage-1 work_dir checkpoint):
#   --cfg-options model.stage1_checkpoint=work_dirs/<stage1 run>/epoch_50.pth
# The predictor layers come from that checkpoint, so the ModernBERT text weights are not needed here.
# Clip geometry is stated once, on the backbone: the algorithm gives the predictor its token grid
# (num_frames x img_size/14 x img_size/14) when it is built; a stated neck.grid_size must agree.
num_frames = 32
img_size = 224
patch_size = 14
encoder_dims = 768
predictor_dims = 1024

# The release keeps at most 400 * T / 8 context tokens (the earliest, in raster order): 400 / (8 * 16 * 16) of
# the grid at 224 px. context_order='random' is the ablation that drops surplus context at random.
max_context_ratio = 400 / 2048

model = dict(
    type='InternVideoNextStage2',
    stage1_checkpoint=None,
    ema_momentum=None,
    backbone=dict(
        type='InternVideoNextViT',
        arch='base',
        img_size=img_size,
        patch_size=patch_size,
        num_frames=num_frames,
        tubelet_size=1,
        num_cls_tokens=4,
        drop_path_rate=0.1,
        layer_scale_init_value=1e-5,
        out_type='tokens',
        # Kept so Stage-2 checkpoints hold the full encoder (the released encoders include it); Stage 2 does not
        # train it, hence find_unused_parameters in the Stage-2 configs.
        with_clip_projector=True,
        clip_embed_dims=768,
        clip_num_heads=16),
    neck=dict(
        type='ModernBertPredictor',
        in_dims=encoder_dims,
        num_layers=5,
        num_cls_tokens=4,
        pretrained=None),
    head=dict(type='LatentRegressionHead', in_dims=predictor_dims, target_dims=encoder_dims, loss_weight=1.0),
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
