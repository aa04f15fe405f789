# Stage-1 ViT-L at the paper's shape for speed / memory measurements without any downloaded weights: the ViT-L
# recipe with its SigLIP2-1B teacher and ModernBERT-Large predictor layers randomly initialised at their real
# sizes. Not for training.
#   python tools/analysis/benchmark.py configs/benchmark/bench_ivnext-stage1_vit-l-p14_siglip2-1b-random_16x224.py \
#       --device cuda --amp bf16 --gpu h100 --batch-size 16 --num-frames 16 --img-size 224 --mode train
_base_ = [
    '../pretrain/ivnext-stage1_vit-l-p14_siglip2_16x224_50e_kmash.py', '../_base_/models/siglip2-1b_random_teacher.py'
]

model = dict(teacher={{_base_.siglip2_1b_random_teacher}}, neck=dict(pretrained=None))
