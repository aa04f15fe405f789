# Zero-shot Kinetics-400 classification with an aligned model (train it with a vtalign_* config first): each class
# name becomes the prompt "a video of {name}." (read from mmaction2's label_map_k400.txt (one name per line);
# underscores, CamelCase and brackets become words), a clip's class scores are its cosine similarities to the prompts
# / temperature (softmax), the test pipeline's views averaged. Reported as top-1 / top-5 (mmaction2's AccMetric). Test
# only:
#   python tools/test.py configs/align/zeroshot_ivnext-vit-b-p14-mobileclip-b_16x224_k400.py ALIGNER_CHECKPOINT
_base_ = [
    '../_base_/models/vtalign_ivnext-vit-b_mobileclip-b.py',
    '../_base_/datasets/k400.py',
    '../_base_/default_runtime.py'
]

class_names = 'data/kinetics400/label_map_k400.txt'
model = dict(zero_shot=dict(class_names=class_names, templates=['a video of {}.']))

test_cfg = dict(type='TestLoop')
test_evaluator = dict(
    type='SkipBadClipsMetric',
    metric=dict(type='AccMetric', metric_list=('top_k_accuracy', ),
                metric_options=dict(top_k_accuracy=dict(topk=(1, 5)))))
# Test only: nothing trains here.
train_dataloader = None
train_cfg = None
optim_wrapper = None
param_scheduler = None
val_dataloader = None
val_cfg = None
val_evaluator = None
