# Kinetics-400 with sparse uniform sampling (the paper's K400 probe protocol, as V-JEPA 2's): the dataset config
# of k400.py with the skeleton's sampling, 16 frames spread over the whole video (one per equal segment; random
# within the segment for training, its centre for testing), instead of its dense 16 x 4 window.
_base_ = ['./k400.py']

train_pipeline, val_pipeline, test_pipeline = (
    [{k: v for k, v in dict(step, type='UniformSample').items() if k != 'frame_interval'}
     if step['type'] == 'SampleFrames' else step for step in steps]
    for steps in (_base_.train_pipeline, _base_.val_pipeline, _base_.test_pipeline))
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=val_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
