# Diving48 (V2 annotations) in the labelled video skeleton (video_classification.py: 16 frames, one per equal
# segment, as the class is the whole dive sequence; flip and RandAugment; 1 clip x 3 crops at test).
_base_ = ['./video_classification.py']
num_classes = 48
data_root = 'data/diving48/videos'
data_root_val = 'data/diving48/videos'
ann_file_train = 'data/diving48/diving48_train_list_videos.txt'
ann_file_val = 'data/diving48/diving48_val_list_videos.txt'
ann_file_test = ann_file_val

train_dataloader = dict(
    dataset=dict(num_classes=num_classes, ann_file=ann_file_train, data_prefix=dict(video=data_root)))
val_dataloader = dict(
    dataset=dict(num_classes=num_classes, ann_file=ann_file_val, data_prefix=dict(video=data_root_val)))
test_dataloader = dict(
    dataset=dict(num_classes=num_classes, ann_file=ann_file_test, data_prefix=dict(video=data_root_val)))
