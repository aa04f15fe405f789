# Something-Something V2 in the labelled video skeleton (video_classification.py: 16 frames, one per equal
# segment; RandAugment; 1 clip x 3 crops at test), without the horizontal flip: several classes are defined by
# left/right direction ("pushing something from left to right").
_base_ = ['./video_classification.py']
num_classes = 174
data_root = 'data/sthv2/videos'
data_root_val = 'data/sthv2/videos'
ann_file_train = 'data/sthv2/sthv2_train_list_videos.txt'
ann_file_val = 'data/sthv2/sthv2_val_list_videos.txt'
ann_file_test = ann_file_val
train_pipeline = [step for step in _base_.train_pipeline if step['type'] != 'Flip']

train_dataloader = dict(
    dataset=dict(num_classes=num_classes, ann_file=ann_file_train, data_prefix=dict(video=data_root),
                 pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(num_classes=num_classes, ann_file=ann_file_val, data_prefix=dict(video=data_root_val)))
test_dataloader = dict(
    dataset=dict(num_classes=num_classes, ann_file=ann_file_test, data_prefix=dict(video=data_root_val)))
