# UCF101 (split 1) as an mmaction2 VideoDataset: the K400 pipelines (16 frames with stride 4; UCF101 clips are
# short, ~7 s; flip, RandAugment; test 1 clip x 3 crops), with this dataset's classes, videos and annotation lists.
_base_ = ['./k400.py']

num_classes = 101
data_root = 'data/ucf101/videos'
ann_file_train = 'data/ucf101/ucf101_train_split_1_videos.txt'
ann_file_val = 'data/ucf101/ucf101_val_split_1_videos.txt'

train_dataloader = dict(
    dataset=dict(ann_file=ann_file_train, data_prefix=dict(video=data_root), num_classes=num_classes))
val_dataloader = dict(dataset=dict(ann_file=ann_file_val, data_prefix=dict(video=data_root), num_classes=num_classes))
test_dataloader = dict(dataset=dict(ann_file=ann_file_val, data_prefix=dict(video=data_root), num_classes=num_classes))
