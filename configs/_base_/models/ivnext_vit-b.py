# The released InternVideo-Next ViT-B/14 encoder (16 frames x 224 px) and mmaction2's data preprocessor: what the
# probe and fine-tuning models share. Each of them sets the recognizer, the encoder's output and the head.
# Set the encoder weights with --cfg-options model.backbone.pretrained=PATH (a released Hugging Face folder /
# .safetensors file, or the output of tools/convert/export_backbone.py).
model = dict(
    backbone=dict(
        type='InternVideoNextViT',
        arch='base',
        img_size=224,
        patch_size=14,
        num_frames=16,
        tubelet_size=1,
        pretrained='checkpoints/internvideo_next_base_p14_res224_f16'),
    data_preprocessor=dict(
        type='ActionDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        format_shape='NCTHW'))
