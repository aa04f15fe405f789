"""Stage 2: predict a frozen Stage-1 encoder's latents under multi-block masks."""
import copy
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from mmaction.registry import MODELS
from mmengine.logging import MMLogger

from ivnext.utils.checkpoint import load_weights, read_state_dict

from ..utils import gather_tokens
from .base_pretrainer import BasePretrainer
from .clip_geometry import _accepts_arg


@MODELS.register_module()
class InternVideoNextStage2(BasePretrainer):
    """InternVideo-Next Stage 2 (latent world model).

    Student encoder, predictor and a frozen teacher encoder all start from a Stage-1 checkpoint. Targets are the
    teacher's final-layer patch tokens on the full, unmasked clip (CLS dropped), L2-normalised. For each mask view
    (V-JEPA multi-block: 8 blocks at scale 0.15 and 2 blocks at 0.70 by default) the student encodes the context
    tokens, the predictor fills the grid, and the ``head`` decodes the masked positions; the loss is
    ``2 - 2 cos``, summed over views.

    The teacher is frozen (paper Table 3: frozen beats EMA by 2.6 points); ``ema_momentum`` turns it into an EMA
    of the student for that ablation only (it is then saved in checkpoints; add ``TeacherEMAHook`` to
    ``custom_hooks`` so the update runs after every step).

    Args:
        backbone: Student encoder config (the teacher is built from the same config).
        neck: Predictor config (same type and width as Stage 1, so its weights carry over). Its ``grid_size`` is
            set from the backbone (a stated one must agree); so is its ``pos_embed_frames`` (in token-grid
            frames) when the backbone keeps its position table at other frames (``backbone.pos_embed_frames``,
            the release's 16-frame tables in a 32-frame Stage 2) and the neck states none.
        head: ``LatentRegressionHead`` config (new, randomly initialised).
        maskers: One masker config per view.
        stage1_checkpoint: Stage-1 checkpoint whose ``backbone.*`` initialises student and teacher and whose
            ``neck.*`` initialises the predictor (a bare encoder file initialises the encoders only). It is read
            weights-only; the encoder keys, and the predictor keys when present, must fit exactly, else loading
            stops with the names of the missing / unexpected / differently shaped keys.
        stage1_checkpoint_trusted: Unpickle ``stage1_checkpoint`` in full (only for a file you trust that holds
            Python objects besides tensors; ivnext's own checkpoints load without it).
        stage1_partial_load: Load the ``stage1_checkpoint`` keys that fit and warn about the rest.
        ema_momentum: None (frozen teacher, the paper's choice) or an EMA momentum (e.g. 0.9998).
        data_preprocessor: ``ActionDataPreprocessor`` config.
        init_cfg: MMEngine init config.
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: dict,
                 maskers: Sequence[dict],
                 stage1_checkpoint: Optional[str] = None,
                 stage1_checkpoint_trusted: bool = False,
                 stage1_partial_load: bool = False,
                 ema_momentum: Optional[float] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(backbone, data_preprocessor, init_cfg)
        if not maskers:
            raise ValueError('`maskers` needs at least one mask view config')
        if ema_momentum is not None and not 0.0 < ema_momentum < 1.0:
            raise ValueError(f'ema_momentum must be in (0, 1) or None, got {ema_momentum}')
        self.neck = MODELS.build(self._table_frames_for(self.geometry.fill_grid(neck, 'model.neck')))
        self.head = MODELS.build(head)
        self.maskers = torch.nn.ModuleList([MODELS.build(m) for m in maskers])
        teacher_cfg = copy.deepcopy(backbone)
        teacher_cfg.update(drop_path_rate=0.0, with_cp=False, frozen_stages=-1, pretrained=None)
        self.teacher = MODELS.build(teacher_cfg)
        self.stage1_checkpoint = stage1_checkpoint
        self.stage1_checkpoint_trusted = stage1_checkpoint_trusted
        self.stage1_partial_load = stage1_partial_load
        self.ema_momentum = ema_momentum
        self.freeze_teacher('teacher', save=ema_momentum is not None)

    def _table_frames_for(self, neck: dict) -> dict:
        """``neck`` with ``pos_embed_frames`` taken from the backbone's table, when it states none."""
        frames = getattr(self.backbone, 'pos_embed_frames', None)
        if frames is not None and neck.get('pos_embed_frames') is None and _accepts_arg(neck, 'pos_embed_frames'):
            neck = dict(neck, pos_embed_frames=frames // self.backbone.tubelet_size)
        return neck

    def init_weights(self) -> None:
        """MMEngine init, then the Stage-1 weights into student, predictor and teacher."""
        super().init_weights()
        if self.stage1_checkpoint:
            self.load_stage1(self.stage1_checkpoint)
        else:
            self.teacher.load_state_dict(self.backbone.state_dict())

    def load_stage1(self, path: str) -> Dict[str, List[str]]:
        """Initialise from a Stage-1 checkpoint (an ivnext Stage-1 run, or a bare encoder for the backbone).

        Returns:
            dict: missing / unexpected / mismatched keys per part (``backbone``, ``neck``).

        Raises:
            CheckpointMismatchError: Keys do not fit and ``stage1_partial_load`` is False.
        """
        logger = MMLogger.get_current_instance()
        state = read_state_dict(path, trusted=self.stage1_checkpoint_trusted,
                                opt_in='`model.stage1_checkpoint_trusted=True`')
        if not any(k.startswith('backbone.') for k in state):
            state = {f'backbone.{k}': v for k, v in state.items()}
        parts = ('backbone', 'neck')
        if not any(k.startswith('neck.') for k in state):
            logger.warning(f'{path} holds no neck.* weights (a bare encoder); the predictor keeps its initialisation')
            parts = ('backbone',)
        # Position tables follow the Stage-2 grids (Stage 1 trains 16 frames, Stage 2 runs 32).
        fit = load_weights(torch.nn.ModuleDict({part: getattr(self, part) for part in parts}),
                           {k: v for k, v in state.items() if k.startswith(tuple(f'{p}.' for p in parts))},
                           'partial' if self.stage1_partial_load else 'strict', prefixes=(), name=path,
                           partial_opt_in='`model.stage1_partial_load=True`', logger=logger)
        report = {part: {kind: [k[len(part) + 1:] for k in keys if k.startswith(f'{part}.')]
                         for kind, keys in fit.items()} for part in ('backbone', 'neck')}
        self.teacher.load_state_dict(self.backbone.state_dict())
        logger.info(f'initialised Stage 2 from {path}')
        return report

    @torch.no_grad()
    def teacher_targets(self, clips: torch.Tensor) -> torch.Tensor:
        """Teacher final-layer patch tokens of the full clip, L2-normalised: (B, N, C)."""
        self.teacher.eval()
        final, _ = self.teacher.forward_tokens(clips)
        return F.normalize(final[:, self.teacher.num_cls_tokens:].float(), dim=-1)

    def loss(self, inputs: torch.Tensor, data_samples: Optional[list] = None) -> Dict[str, torch.Tensor]:
        """``loss_latent``: 2 - 2cos summed over mask views; per-view values are logged too."""
        clips = self.flatten_clips(inputs)
        targets = self.teacher_targets(clips)
        grid = self.backbone.grid_of(clips)
        num_cls = self.backbone.num_cls_tokens
        total, logs = 0.0, {}
        for v, masker in enumerate(self.maskers):
            mask = masker.sample(clips.shape[0], grid, device=clips.device)
            final, _ = self.backbone.forward_tokens(clips, mask)
            pred = self.neck(final, mask, grid)[:, num_cls:]
            masked = mask.masked_index
            view_loss = self.head.loss(gather_tokens(pred, masked), gather_tokens(targets, masked))['loss_latent']
            logs[f'view{v}_latent'] = view_loss.detach()
            total = total + view_loss
        return dict(loss_latent=total, **logs)

    def predict(self, inputs: torch.Tensor, data_samples: Optional[list] = None) -> List:
        """Encoder features of full clips (Stage 2 has no pixel output)."""
        return list(self.extract_feat(inputs))

    @torch.no_grad()
    def update_teacher(self) -> None:
        """EMA ablation: teacher <- m * teacher + (1 - m) * student. No-op for the frozen teacher."""
        if self.ema_momentum is None:
            return
        for t, s in zip(self.teacher.parameters(), self.backbone.parameters()):
            t.lerp_(s.detach(), 1.0 - self.ema_momentum)
