# HMDB51 (split 1) as an mmaction2 VideoDataset: the K400 pipelines (16 frames with stride 4; clips of a few
# seconds; flip, RandAugment; test 1 clip x 3 crops), with this dataset's classes, videos and annotation lists.
_base_ = ['./k400.py']

num_classes = 51
data_root = 'data/hmdb51/videos'
ann_file_train = 'data/hmdb51/hmdb51_train_split_1_videos.txt'
ann_file_val = 'data/hmdb51/hmdb51_val_split_1_videos.txt'

train_dataloader = dict(
    dataset=dict(ann_file=ann_file_train, data_prefix=dict(video=data_root), num_classes=num_classes))
val_dataloader = dict(dataset=dict(ann_file=ann_file_val, data_prefix=dict(video=data_root), num_classes=num_classes))
test_dataloader = dict(dataset=dict(ann_file=ann_file_val, data_prefix=dict(video=data_root), num_classes=num_classes))
