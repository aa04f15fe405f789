# Ablation: Stage 2 with an EMA teacher (momentum 0.9998, updated after every step by TeacherEMAHook) instead
# of the frozen Stage-1 teacher, ViT-B/14, 8x224, 30 e K710.
# Paper (Table 3): the EMA teacher loses 2.6 K400 / 2.6 SSv2 points against the frozen teacher.
_base_ = ['./ivnext-stage2_vit-b-p14_8x224_30e_k710.py']

model = dict(ema_momentum=0.9998)
custom_hooks = [dict(type='TeacherEMAHook')]
