# Video-text alignment of a frozen InternVideo-Next ViT-B/14 encoder to a frozen MobileCLIP-B text tower: the authors'
# recipe (OpenGVLab/InternVideo #318: "keep the video encoder and MobileCLIP's text tower frozen, train only a
# projector and an alignment layer, as for InternVideo2-L"), with InternVideo2's CLIP-config values:
# open_vision_clip_projector=True (the encoder's attention-pooling projector trains), align_dim=512 (MobileCLIP-B's
# text width, so the video side is aligned into the frozen text space), open_text_projection=False,
# temp=temp_min=1/100 (learnable, clamped), VTC loss with all_gather=True.
# Needs open_clip (pip install 'ivnext[mobileclip]') and MobileCLIP-B weights in a local file (never downloaded):
#   --cfg-options model.text_tower.pretrained=checkpoints/mobileclip_blt.pt
# Without open_clip, vtalign_ivnext-vit-b_minilm.py runs the same model with a packaged sentence encoder.
model = dict(
    type='VideoTextAligner',
    # Any ivnext.load_encoder source: a preset (read from the local Hugging Face cache), a folder or weights file.
    encoder=dict(source='internvideo-next-base'),
    text_tower=dict(type='OpenCLIPTextTower', model_name='MobileCLIP-B', pretrained='checkpoints/mobileclip_blt.pt'),
    align_dim=None,  # = the text tower's width (512)
    text_projection=False,  # open_text_projection=False
    temperature=0.01,  # temp = 1/100 ("as in ViCLIP")
    min_temperature=0.01,  # temp_min = 1/100
    loss=dict(type='VideoTextContrastiveLoss', gather=True),
    precision='auto',  # bf16 autocast on CUDA
    data_preprocessor=dict(
        type='ActionDataPreprocessor', mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
        format_shape='NCTHW'))
