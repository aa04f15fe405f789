"""Pictures of what a model does: reconstruction grids of a Stage-1 checkpoint on a video.

Imported on its own (``import ivnext`` does not load it): it needs OpenCV and reads videos.
"""
