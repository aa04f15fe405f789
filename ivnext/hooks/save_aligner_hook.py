"""Write a trained video-text aligner as a folder that ``ivnext.load_aligner`` reads."""
import os.path as osp
from typing import Optional

from mmaction.registry import HOOKS
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper


@HOOKS.register_module()
class SaveAlignerHook(Hook):
    """After training, save the aligner's trainable parts with ``config.json`` naming both towers.

    The folder (``<work_dir>/<folder>``) holds ``config.json`` and ``model.safetensors`` (projector, alignment layer,
    temperature): ``ivnext.load_aligner('<work_dir>/aligner')`` rebuilds the aligner from it, with the frozen
    encoder and text tower read from the sources the config names. Only the main process writes.

    Args:
        folder: Folder name under the work directory, or an absolute path.
    """

    priority = 'LOWEST'

    def __init__(self, folder: str = 'aligner'):
        self.folder = folder

    def after_train(self, runner) -> None:
        if not is_main_process():
            return
        from ivnext.api.aligner import Aligner
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        was_training = model.training
        paths = Aligner(model).save_pretrained(self.target(runner.work_dir))
        model.train(was_training)
        runner.logger.info(f'aligner saved to {osp.dirname(paths[0])} (ivnext.load_aligner reads it)')

    def target(self, work_dir: Optional[str]) -> str:
        return self.folder if osp.isabs(self.folder) else osp.join(work_dir or '.', self.folder)
