# Kinetics-400 in the labelled video skeleton (video_classification.py: flip and RandAugment; 1 clip x 3 crops at
# test), sampling 16 frames with stride 4 from one random window (test: the central one) instead of one frame
# per equal segment.
_base_ = ['./video_classification.py']
num_classes = 400
data_root = 'data/kinetics400/videos_train'
data_root_val = 'data/kinetics400/videos_val'
ann_file_train = 'data/kinetics400/kinetics400_train_list_videos.txt'
ann_file_val = 'data/kinetics400/kinetics400_val_list_videos.txt'
ann_file_test = ann_file_val
train_pipeline, val_pipeline, test_pipeline = (
    [dict(step, type='SampleFrames', frame_interval=4) if step['type'] == 'UniformSample' else step for step in steps]
    for steps in (_base_.train_pipeline, _base_.val_pipeline, _base_.test_pipeline))

train_dataloader = dict(
    dataset=dict(num_classes=num_classes, ann_file=ann_file_train, data_prefix=dict(video=data_root),
                 pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(num_classes=num_classes, ann_file=ann_file_val, data_prefix=dict(video=data_root_val),
                 pipeline=val_pipeline))
test_dataloader = dict(
    dataset=dict(num_classes=num_classes, ann_file=ann_file_test, data_prefix=dict(video=data_root_val),
                 pipeline=test_pipeline))
