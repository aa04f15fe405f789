# A sweep of 9 attentive probes trained together on one frozen forward pass of InternVideo-Next ViT-B/14, K400:
# V-JEPA 2's multi-head evaluation (a grid of learning rates x weight decays, the best head reported). The grid is
# centred on the single probe's settings (attnprobe_ivnext-vit-b-p14_16x224_20e_k400.py: lr 3e-4, paper Table 15;
# weight decay 0.05, our choice): lr x{1/3, 1, 3}, weight decay x{1/5, 1, 2}. Every head has the single probe's
# architecture, schedule shape, augmentation and label smoothing.
# Selection: after each validation, the head with the highest val top-1 predicts (ties: lowest index); the log
# shows every head's top-1 (sweep/head_XX_top1), <work_dir>/probe_sweep.json records them, best_probe_head.pth holds
# the selected head's weights and the best checkpoint follows sweep/best_top1.
_base_ = ['./attnprobe_ivnext-vit-b-p14_16x224_20e_k400.py']

model = dict(
    cls_head=dict(
        _delete_=True,
        type='ProbeSweepHead',
        num_classes={{_base_.num_classes}},
        in_channels=768,
        head=dict(type='AttentiveProbeHead', num_heads=12, label_smooth_eps=0.1),
        grid=dict(lr=[1e-4, 3e-4, 1e-3], weight_decay=[0.01, 0.05, 0.1]),
        average_clips='prob'))

# One parameter group per head with its lr / weight decay; the optimizer's lr / weight decay apply to nothing else.
optim_wrapper = dict(constructor='ProbeSweepOptimWrapperConstructor', clip_grad=None)
custom_hooks = [dict(type='ProbeSweepHook')]
default_hooks = dict(checkpoint=dict(save_best='sweep/best_top1', rule='greater'))
