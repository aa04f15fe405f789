"""Clip geometry stated once: the encoder's frames, size and patch give every other module's token grid.

A pretraining config states the clip shape on the encoder (``model.backbone.num_frames`` / ``img_size`` /
``patch_size`` / ``tubelet_size``). The algorithms derive the rest when they are built: the predictor's and the
alignment head's position-table grid, and the image teacher's input size (student tokens per side x teacher
patch). A config that states one of these anyway must agree, or the build stops naming both fields; clips of
another shape stop the first step naming the encoder fields and the pipeline's.
"""
import copy
import inspect
from dataclasses import dataclass
from typing import Any, Optional, Sequence, Tuple

import torch
from mmaction.registry import MODELS


class ClipGeometryError(ValueError):
    """A config states a clip shape, token grid or teacher size that disagrees with the encoder's."""


def _fmt(grid: Sequence[int]) -> str:
    return '(' + ','.join(str(int(g)) for g in grid) + ')'


def _accepts_arg(cfg: dict, name: str) -> bool:
    """Whether the registered class of module config ``cfg`` takes ``name`` in its constructor."""
    cls = cfg.get('type')
    cls = MODELS.get(cls) if isinstance(cls, str) else cls
    if cls is None:
        return False
    params = inspect.signature(cls.__init__).parameters
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


@dataclass(frozen=True)
class ClipGeometry:
    """Frames, size and patch of the clips an encoder is built for, and what follows from them.

    Args:
        num_frames: Frames T of a clip (``backbone.num_frames``).
        img_size: Side of the square frames in pixels (``backbone.img_size``).
        patch_size: Spatial patch side p (``backbone.patch_size``).
        tubelet_size: Temporal patch length u (``backbone.tubelet_size``).
        in_channels: Channels C of a frame (``backbone.in_channels``).
    """

    num_frames: int
    img_size: int
    patch_size: int
    tubelet_size: int = 1
    in_channels: int = 3

    @classmethod
    def of(cls, backbone: Any) -> 'ClipGeometry':
        """Geometry of a built encoder (anything with ``grid_size``, ``patch_size`` and ``tubelet_size``)."""
        t, h, _ = backbone.grid_size
        proj = getattr(getattr(backbone, 'patch_embed', None), 'proj', None)
        channels = proj.in_channels if proj is not None else 3
        return cls(t * backbone.tubelet_size, h * backbone.patch_size, backbone.patch_size, backbone.tubelet_size,
                   channels)

    @property
    def grid(self) -> Tuple[int, int, int]:
        """Token grid (T/u, H/p, W/p)."""
        side = self.img_size // self.patch_size
        return self.num_frames // self.tubelet_size, side, side

    @property
    def pixel_dims(self) -> int:
        """Values in one patch, the width of a pixel-reconstruction target: u * p * p * C."""
        return self.tubelet_size * self.patch_size * self.patch_size * self.in_channels

    def describe(self) -> str:
        """The encoder fields and the grid they give, for error messages."""
        tubelet = f' / tubelet_size={self.tubelet_size}' if self.tubelet_size != 1 else ''
        return (f'model.backbone num_frames={self.num_frames} / img_size={self.img_size} / '
                f'patch_size={self.patch_size}{tubelet} -> {_fmt(self.grid)}')

    # ------------------------------------------------------------------ build time
    def fill_grid(self, cfg: dict, name: str, field: str = 'grid_size') -> dict:
        """A copy of module config ``cfg`` with ``field`` set to the encoder's token grid.

        Args:
            cfg: Module config (e.g. ``model.neck``).
            name: Its dotted config path, for messages (e.g. ``'model.neck'``).
            field: The grid argument of the module.

        Returns:
            dict: The filled copy (``cfg`` itself is left alone).

        Raises:
            ClipGeometryError: ``cfg`` states another grid.
        """
        return self._fill(cfg, name, field, self.grid, self.describe())

    def fill_pixel_dims(self, cfg: dict, name: str, field: str = 'target_dims') -> dict:
        """A copy of a pixel head's config with ``field`` set to :attr:`pixel_dims` (see :meth:`fill_grid`)."""
        tubelet = f' / tubelet_size={self.tubelet_size}' if self.tubelet_size != 1 else ''
        where = (f'model.backbone patch_size={self.patch_size}{tubelet} with {self.in_channels} channels -> '
                 f'{self.pixel_dims} values per patch')
        return self._fill(cfg, name, field, self.pixel_dims, where)

    @staticmethod
    def _fill(cfg: dict, name: str, field: str, value: Any, where: str) -> dict:
        cfg = copy.deepcopy(cfg)
        stated = cfg.get(field)
        if stated is None:
            if _accepts_arg(cfg, field):  # a module without this argument keeps its config as it is
                cfg[field] = value
            return cfg
        as_stated = tuple(int(v) for v in stated) if isinstance(value, tuple) else int(stated)
        if as_stated != value:
            shown = _fmt(stated) if isinstance(value, tuple) else str(stated)
            short = name.split('.', 1)[-1]
            raise ClipGeometryError(f'{name}.{field}={shown} disagrees with {where}; drop {short}.{field} or fix it')
        return cfg

    def teacher_image_size(self, teacher_patch: int) -> int:
        """Teacher input side whose patch grid equals the student's spatial grid: H/p x teacher patch."""
        return self.grid[1] * int(teacher_patch)

    def fit_teacher(self, teacher: Any, stated: Optional[int], name: str = 'model.teacher') -> None:
        """Set a built image teacher's input size from the student's grid, or check the one a config states.

        Args:
            teacher: Built teacher with ``patch_size`` and ``set_image_size`` (``HFImageTeacher`` or a wrapper).
            stated: The ``image_size`` its config states, or None (derive it).
            name: Dotted config path of that field's owner, for messages.

        Raises:
            ClipGeometryError: ``stated`` gives another grid, or the encoder groups frames into tubelets (the
                teacher sees every frame, so its time axis would not match).
        """
        if self.tubelet_size != 1:
            raise ClipGeometryError(f'an image teacher ({name}) gives one target per frame, but {self.describe()} '
                                    'groups frames into tubelets; use tubelet_size=1 with a teacher')
        patch = int(teacher.patch_size)
        size = self.teacher_image_size(patch)
        if stated is not None and int(stated) != size:
            short = name.split('.', 1)[-1]
            raise ClipGeometryError(
                f'{name}.image_size={stated} disagrees with {self.describe()}: the teacher (patch {patch}) needs '
                f'image_size = {self.grid[1]} x {patch} = {size} for a {self.grid[1]}x{self.grid[2]} grid; '
                f'drop {short}.image_size or fix it')
        teacher.set_image_size(size)

    # ------------------------------------------------------------------ run time
    def check_clips(self, clips: torch.Tensor) -> None:
        """Stop clips (N, C, T, H, W) whose frames or size are not the encoder's (shape metadata only)."""
        t, h, w = clips.shape[-3:]
        if (t, h, w) != (self.num_frames, self.img_size, self.img_size):
            raise ClipGeometryError(
                f'clips of {t} frames at {h}x{w} px do not match model.backbone.num_frames={self.num_frames} / '
                f'img_size={self.img_size}: set the data pipeline\'s clip_len (SampleFrames / UniformSample) to '
                f'{self.num_frames} and its crop (MultiScaleCrop input_size, CenterCrop crop_size, Resize scale) to '
                f'{self.img_size}, or change model.backbone.num_frames / img_size')


def stated_teacher_image_size(cfg: dict, name: str = 'model.teacher') -> Tuple[Optional[int], str]:
    """The ``image_size`` a teacher config states, looking through wrappers such as ``CachedTeacher``.

    Returns:
        tuple: (the stated size or None, dotted path of the config that holds the field).
    """
    while isinstance(cfg.get('teacher'), dict):
        cfg, name = cfg['teacher'], f'{name}.teacher'
    return cfg.get('image_size'), name
