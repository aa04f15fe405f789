# DiDeMo paragraph-to-video retrieval (the usual protocol: a video's captions joined into one paragraph), in the
# VideoTextDataset format {"video.mp4": ["paragraph"]}: train 8.4k videos, test 1k. Videos are ~30 s; 16 frames
# spread over the whole video. Pipelines and metric as msrvtt_retrieval.py.
_base_ = ['./msrvtt_retrieval.py']

data_root = 'data/didemo/videos'
ann_file_train = 'data/didemo/train_paragraphs.json'
ann_file_test = 'data/didemo/test_paragraphs.json'

train_dataloader = dict(dataset=dict(ann_file=ann_file_train, data_prefix=dict(video=data_root)))
val_dataloader = dict(dataset=dict(ann_file=ann_file_test, data_prefix=dict(video=data_root)))
test_dataloader = dict(dataset=dict(ann_file=ann_file_test, data_prefix=dict(video=data_root)))
