# Tiny InternVideo-Next Stage-2 run on CPU, initialised from a tiny Stage-1 checkpoint
# (configs/demo/tiny_stage1_cpu.py, same encoder and predictor shapes): frozen teacher and student from its
# encoder, predictor from its predictor, the paper's two multi-block mask views, latent regression loss.
# Data, schedule and hooks are those of tiny_stage1_cpu.py.
#
#   python tools/train.py configs/demo/tiny_stage2_cpu.py --work-dir work_dirs/tiny_stage2 \
#     --cfg-options model.stage1_checkpoint=work_dirs/tiny_stage1/iter_4.pth \
#                   train_dataloader.dataset.datasets.0.ann_file=/data/train.txt ...
_base_ = ['./tiny_stage1_cpu.py']

# The release keeps at most 400 * T / 8 context tokens (the earliest, in raster order): 400 / (8 * 16 * 16) of
# the grid at 224 px. context_order='random' is the ablation that drops surplus context at random.
max_context_ratio = 400 / 2048

model = dict(
    _delete_=True,
    type='InternVideoNextStage2',
    stage1_checkpoint=None,
    ema_momentum=None,
    backbone=dict(
        type='InternVideoNextViT',
        arch=dict(embed_dims=64, num_layers=3, num_heads=4, mlp_ratio=2.0),
        img_size=56,
        patch_size=14,
        num_frames=4,
        tubelet_size=1,
        out_type='tokens',
        use_flash_attn=False,
        clip_embed_dims=32,
        clip_num_heads=4),
    neck=dict(
        type='ModernBertPredictor',
        in_dims=64,
        num_layers=2,
        num_cls_tokens=4,
        grid_size=(4, 4, 4),
        pretrained=None,
        model_config=dict(hidden_size=64, intermediate_size=96, num_attention_heads=4, num_hidden_layers=3)),
    head=dict(type='LatentRegressionHead', in_dims=64, target_dims=64),
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
