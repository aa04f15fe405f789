# InternVideo-Next Stage 1, ViT-B/14 encoder, 16 frames x 224 px (paper Sec. 3 / Table 13; release
# exp/base/pretrain/stage1.sh).
#   encoder      ViT-B/14 (768 wide, 12 blocks), 4 CLS tokens, drop path 0.1, LayerScale 1e-5
#   teacher      SigLIP2-1B/16 at 256 px (16x16 patches, the student's grid), hidden states entering layers
#                [23, 26, 30, 33, 36, 39] (num_return_layers=6, return_interval=3.33 as released)
#   masker       semantic-aware, mask ratio 0.8 (paper; the release scripts use 0.75)
#   predictor    last 5 layers of ModernBERT-Large (1024 wide), initialised from its text weights
#   decoder      conditional diffusion MLP, 6 blocks, width 1536, IDDPM cosine 1000 steps
#   losses       middle layers / pooled embedding / diffusion, weights 1 / 1 / 1
#
# Clip geometry is stated once, on the backbone (num_frames, img_size, patch_size): the algorithm derives the
# predictor's and the alignment head's token grid (num_frames x img_size/14 x img_size/14) and the teacher's input
# size (img_size/14 x the teacher's patch 16 = 256 px) when it is built. A config may still state neck.grid_size,
# align_head.grid_size or teacher.image_size; the build stops if one disagrees with the backbone.
#
# Local weights (nothing is downloaded at run time); set the two paths, e.g. with
#   --cfg-options model.teacher.pretrained=/ckpt/siglip2-giant-opt-patch16-256 \
#                 model.neck.pretrained=/ckpt/ModernBERT-large
#   model.teacher.pretrained: a Hugging Face folder of google/siglip2-giant-opt-patch16-256 (SigLIP2-1B)
#   model.neck.pretrained:    a Hugging Face folder of answerdotai/ModernBERT-large
#                             (None builds the layers randomly: the no-text-init ablation)
siglip2_1b_path = 'checkpoints/siglip2-giant-opt-patch16-256'
modernbert_large_path = 'checkpoints/ModernBERT-large'

num_frames = 16
img_size = 224
patch_size = 14
encoder_dims = 768
predictor_dims = 1024  # ModernBERT-Large hidden size
teacher_dims = 1536  # SigLIP2-1B hidden size (and its attention-pooled embedding)

model = dict(
    type='InternVideoNextStage1',
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
        with_clip_projector=True,
        clip_embed_dims=768,
        clip_num_heads=16),
    teacher=dict(
        type='SigLIP2Teacher',
        pretrained=siglip2_1b_path,
        num_return_layers=6,
        return_interval=3.33,
        dtype='bfloat16'),
    masker=dict(type='SemanticAwareMasker', mask_ratio=0.8, mode='sample'),
    neck=dict(
        type='ModernBertPredictor',
        in_dims=encoder_dims,
        num_layers=5,
        num_cls_tokens=4,
        pretrained=modernbert_large_path),
    head=dict(
        type='ConditionalDiffusionHead',
        in_dims=predictor_dims,
        target_dims=3 * patch_size * patch_size,
        width=1536,
        depth=6,
        num_train_timesteps=1000,
        beta_schedule='squaredcos_cap_v2',
        num_inference_steps=1000,  # release DiffLoss(num_sampling_steps='1000'); sampling is for inspection only
        sampler='ddpm',  # release: IDDPM p_sample_loop, clip_denoised=False
        sample_temperature=1.0,  # release DiffLoss.sample(temperature=1.0)
        cfg_scale=1.0,  # release DiffLoss.sample(cfg=1.0): no classifier-free guidance
        loss_weight=1.0),
    align_head=dict(
        type='AlignmentHead', in_dims=encoder_dims, target_dims=teacher_dims, num_layers=6, loss_weight=1.0,
        with_pos_embed=True),  # the release's learnable clip_pos_embed before the decoders
    pooled_align_head=dict(type='PooledAlignmentHead', in_dims=768, target_dims=teacher_dims, loss_weight=1.0),
    data_preprocessor=dict(
        type='ActionDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        format_shape='NCTHW'))

# Original / masked / reconstructed frames of two clips in the visualisation backends (TensorBoard, W&B, PNGs)
# every 1000 iterations, with 10 DDIM steps; the training's random draws and losses are unchanged.
custom_hooks = [dict(type='ReconstructionVisHook', interval=1000, num_clips=2, num_inference_steps=10)]
