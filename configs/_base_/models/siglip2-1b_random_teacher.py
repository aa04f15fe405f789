# Turns the recipes' SigLIP2-1B teacher (siglip2-giant-opt-patch16-256: width 1536, 40 layers, 16 heads, MLP 6144,
# patch 16 at 256 px) into a randomly initialised one of the same size: speed and memory measurements need no
# downloaded weights. Merged into `model.teacher` by configs/benchmark/; never for training.
siglip2_1b_random_teacher = dict(
    pretrained=None,
    model_config=dict(hidden_size=1536, intermediate_size=6144, num_hidden_layers=40, num_attention_heads=16,
                      patch_size=16, num_patches=256))
