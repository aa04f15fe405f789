# Stage-1 ViT-L at the paper's shape for speed / memory measurements without any downloaded weights: the ViT-L
# recipe with the randomly initialised SigLIP2-1B teacher and ModernBERT-Large predictor layers of the ViT-B
# benchmark config (teacher layers every 1.67, as the ViT-L recipe). Not for training.
#   python tools/analysis/benchmark.py configs/benchmark/bench_ivnext-stage1_vit-l-p14_siglip2-1b-random_16x224.py \
#       --device cuda --amp bf16 --gpu h100 --batch-size 16 --num-frames 16 --img-size 224 --mode train
_base_ = ['../pretrain/ivnext-stage1_vit-l-p14_siglip2_16x224_50e_kmash.py']

model = dict(
    teacher=dict(
        _delete_=True,
        type='SigLIP2Teacher',
        model_config=dict(hidden_size=1536, intermediate_size=6144, num_hidden_layers=40, num_attention_heads=16,
                          patch_size=16, num_patches=256),
        image_size=256,
        num_return_layers=6,
        return_interval=1.67,
        dtype='bfloat16'),
    neck=dict(pretrained=None))
