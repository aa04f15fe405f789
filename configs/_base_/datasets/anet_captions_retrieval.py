# ActivityNet Captions paragraph-to-video retrieval (the usual protocol: a video's captions joined into one
# paragraph), in the VideoTextDataset format {"v_xxx.mp4": ["paragraph"]}: train 10k videos, test val_1 (4.9k).
# Videos are minutes long; 16 frames spread over the whole video. Pipelines and metric as msrvtt_retrieval.py.
_base_ = ['./msrvtt_retrieval.py']

data_root = 'data/activitynet/videos'
ann_file_train = 'data/activitynet/train_paragraphs.json'
ann_file_test = 'data/activitynet/val_1_paragraphs.json'

train_dataloader = dict(dataset=dict(ann_file=ann_file_train, data_prefix=dict(video=data_root)))
val_dataloader = dict(dataset=dict(ann_file=ann_file_test, data_prefix=dict(video=data_root)))
test_dataloader = dict(dataset=dict(ann_file=ann_file_test, data_prefix=dict(video=data_root)))
