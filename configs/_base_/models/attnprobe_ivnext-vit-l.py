# The attentive probe of attnprobe_ivnext-vit-b.py on a frozen InternVideo-Next ViT-L/14 encoder: 1024 wide,
# 16 probe heads.
_base_ = ['./attnprobe_ivnext-vit-b.py']

model = dict(
    backbone=dict(arch='large', pretrained='checkpoints/internvideo_next_large_p14_res224_f16'),
    cls_head=dict(in_channels=1024, num_heads=16))
