# Video-text alignment (frozen InternVideo-Next ViT-B/14 + frozen mobileclip-b text tower; trainable clip projector,
# alignment layer and temperature), trained on didemo and evaluated by text-to-video / video-to-text retrieval.
# After training, <work_dir>/aligner holds the trained parts for ivnext.load_aligner (SaveAlignerHook, set in the
# schedule). Model: ../_base_/models/vtalign_ivnext-vit-b_mobileclip-b.py; schedule: InternVideo2's CLIP recipe.
_base_ = [
    '../_base_/models/vtalign_ivnext-vit-b_mobileclip-b.py',
    '../_base_/datasets/didemo_retrieval.py',
    '../_base_/schedules/vtalign_adamw-cosine_3e.py',
    '../_base_/default_runtime.py'
]

custom_imports = dict(imports=['ivnext'], allow_failed_imports=False)
# The best checkpoint is the one with the best text-to-video R@1.
default_hooks = dict(checkpoint=dict(save_best='retrieval/t2v/R1', rule='greater'))
