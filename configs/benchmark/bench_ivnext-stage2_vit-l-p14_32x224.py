# Stage-2 ViT-L at the paper's shape (32 x 224, two multi-block views, ModernBERT-Large predictor layers) for
# speed / memory measurements; all weights random (no Stage-1 checkpoint needed). Not for training.
#   python tools/analysis/benchmark.py configs/benchmark/bench_ivnext-stage2_vit-l-p14_32x224.py \
#       --device cuda --amp bf16 --gpu h100 --batch-size 8 --num-frames 32 --img-size 224 --mode train
_base_ = ['../pretrain/ivnext-stage2_vit-l-p14_32x224_100e_kmash.py']

model = dict(stage1_checkpoint=None, neck=dict(pretrained=None))
