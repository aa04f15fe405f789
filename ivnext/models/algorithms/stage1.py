"""Stage 1: masked video modelling with a conditional diffusion pixel decoder and an image-level semantic prior."""
from typing import Dict, List, Optional, Tuple, Union

import torch
from mmaction.registry import MODELS
from mmengine.structures import BaseDataElement

from ..maskers.token_mask import TokenMask
from ..utils import gather_tokens, patchify
from .base_pretrainer import BasePretrainer
from .clip_geometry import stated_teacher_image_size


@MODELS.register_module()
class InternVideoNextStage1(BasePretrainer):
    """InternVideo-Next Stage 1 (Encoder-Predictor-Decoder).

    One step: the frozen image ``teacher`` runs on every frame (hidden states, pooled embedding, token
    importance) -> the ``masker`` picks visible tokens (semantic-aware: from the teacher's importance) ->
    the encoder runs on visible tokens -> the ``neck`` (predictor) fills the full grid -> the pixel ``head``
    (conditional diffusion decoder, or the linear-decoder ablation) reconstructs each masked patch, while
    ``align_head`` regresses the teacher's hidden states from the encoder's last layers on visible tokens and
    ``pooled_align_head`` aligns the attention-pooled clip embedding with the teacher's frame-averaged one.

    Every term is optional so the paper's ablations are configs: no ``teacher`` = pixel-only; no ``head`` =
    alignment only; ``head=LinearPixelHead`` = linear decoder. Loss weights live in each head's
    ``loss_weight`` (1, 1, 1 in the paper).

    Args:
        backbone: Encoder config.
        masker: Masker config (``SemanticAwareMasker`` by default in the configs).
        neck: Predictor config; needed with ``head``. Its ``grid_size`` is set from the backbone (a stated one must
            agree).
        head: Pixel decoder config (``ConditionalDiffusionHead`` / ``LinearPixelHead``). Its ``target_dims`` is set to
            the values in one patch of the backbone (a stated one must agree).
        teacher: Frozen image teacher config (``SigLIP2Teacher`` / ``CLIPTeacher`` / ``DINOv2Teacher``). Its
            ``image_size`` is set to the backbone's tokens per side x the teacher patch (a stated one must agree).
        align_head: ``AlignmentHead`` config (student's last K layers vs the teacher's K hidden states); with a
            position table (``with_pos_embed=True``) its ``grid_size`` is set from the backbone.
        pooled_align_head: ``PooledAlignmentHead`` config.
        num_inference_steps: Diffusion steps used by :meth:`reconstruct` (default: the head's).
        data_preprocessor: ``ActionDataPreprocessor`` config.
        init_cfg: MMEngine init config.
    """

    def __init__(self,
                 backbone: dict,
                 masker: dict,
                 neck: Optional[dict] = None,
                 head: Optional[dict] = None,
                 teacher: Optional[dict] = None,
                 align_head: Optional[dict] = None,
                 pooled_align_head: Optional[dict] = None,
                 num_inference_steps: Optional[int] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(backbone, data_preprocessor, init_cfg)
        if head is not None and neck is None:
            raise ValueError('a pixel `head` needs a predictor `neck` to condition on')
        if (align_head or pooled_align_head) and teacher is None:
            raise ValueError('`align_head` / `pooled_align_head` need an image `teacher`')
        if head is None and align_head is None and pooled_align_head is None:
            raise ValueError('nothing to train: configure a pixel `head` and/or alignment heads')
        self.masker = MODELS.build(masker)
        self.neck = MODELS.build(self.geometry.fill_grid(neck, 'model.neck')) if neck is not None else None
        self.head = MODELS.build(self.geometry.fill_pixel_dims(head, 'model.head')) if head is not None else None
        self.align_head = MODELS.build(self._align_head_cfg(align_head)) if align_head is not None else None
        self.pooled_align_head = MODELS.build(pooled_align_head) if pooled_align_head is not None else None
        self.teacher = MODELS.build(teacher) if teacher is not None else None
        if self.teacher is not None:
            self.geometry.fit_teacher(self.teacher, *stated_teacher_image_size(teacher))
            self.freeze_teacher('teacher')
        self.num_inference_steps = num_inference_steps
        num_align = self.align_head.num_layers if self.align_head is not None else 0
        if self.teacher is not None and num_align and len(self.teacher.return_layers) != num_align:
            raise ValueError(f'align_head.num_layers={num_align} but the teacher returns '
                             f'{len(self.teacher.return_layers)} layers (teacher.return_layers)')
        # The student's last K blocks, shallow to deep, matched to the teacher's K layers.
        depth = self.backbone.num_layers
        self.align_layers: List[int] = list(range(depth - num_align, depth))

    def _align_head_cfg(self, cfg: dict) -> dict:
        """The alignment head's config with its position-table grid set from the encoder (when it has a table)."""
        if cfg.get('with_pos_embed') or cfg.get('grid_size') is not None:
            return self.geometry.fill_grid(cfg, 'model.align_head')
        return cfg

    # ------------------------------------------------------------------ steps
    def teacher_targets(self, clips: torch.Tensor) -> Optional[Dict]:
        """Run the frozen teacher and check that its token grid matches the student's."""
        if self.teacher is None:
            return None
        with torch.no_grad():
            targets = self.teacher(clips)
        grid = self.backbone.grid_of(clips)
        if tuple(targets['grid']) != tuple(grid):
            raise ValueError(f"teacher token grid {tuple(targets['grid'])} != student grid {tuple(grid)}: set "
                             "teacher.image_size so that image_size / teacher patch == clip size / student patch")
        return targets

    def sample_mask(self, clips: torch.Tensor, targets: Optional[Dict],
                    generator: Optional[torch.Generator] = None) -> TokenMask:
        """The step's token mask; importance-driven maskers read the teacher's map.

        Args:
            clips: Normalised clips (B, 3, T, H, W).
            targets: :meth:`teacher_targets` output, or None without a teacher.
            generator: Optional torch generator on the clips' device (default: torch's global one).
        """
        importance = targets['importance'] if targets is not None else None
        return self.masker.sample(clips.shape[0], self.backbone.grid_of(clips), importance=importance,
                                  device=clips.device, generator=generator)

    def loss(self, inputs: torch.Tensor, data_samples: Optional[list] = None) -> Dict[str, torch.Tensor]:
        """Named loss terms of one Stage-1 step.

        Args:
            inputs: Normalised clips (B, 3, T, H, W) or (B, M, 3, T, H, W).
            data_samples: Unused (self-supervised).

        Returns:
            dict: ``loss_diffusion`` (or ``loss_pixel``), ``loss_align``, ``loss_align_pooled`` as configured,
            plus detached logging values.
        """
        clips = self.flatten_clips(inputs)
        targets = self.teacher_targets(clips)
        mask = self.sample_mask(clips, targets)
        final, hidden = self.backbone.forward_tokens(clips, mask, self.align_layers)
        losses: Dict[str, torch.Tensor] = {}
        num_cls = self.backbone.num_cls_tokens
        if self.align_head is not None:
            visible = mask.visible_index
            teacher_layers = [gather_tokens(t, visible) for t in targets['hidden_states']]
            losses.update(self.align_head.loss([h[:, num_cls:] for h in hidden], teacher_layers, visible,
                                               self.backbone.grid_of(clips)))
        if self.pooled_align_head is not None:
            losses.update(self.pooled_align_head.loss(self.backbone.pool(final), targets['pooled']))
        if self.head is not None:
            z, pixels = self.masked_predictions(clips, final, mask)
            losses.update(self.head.loss(z, pixels))
        return losses

    def masked_predictions(self, clips: torch.Tensor, final: torch.Tensor,
                           mask: TokenMask) -> Tuple[torch.Tensor, torch.Tensor]:
        """Predictor outputs and pixel targets at the masked tokens (``mask.masked_index``).

        Returns:
            tuple: z (B, M, C_pred) and target pixels (B, M, u*p*p*3).
        """
        grid = self.backbone.grid_of(clips)
        pred = self.neck(final, mask, grid)[:, self.backbone.num_cls_tokens:]
        pixels = patchify(clips, self.backbone.patch_size, self.backbone.tubelet_size)
        return gather_tokens(pred, mask.masked_index), gather_tokens(pixels, mask.masked_index)

    @torch.no_grad()
    def reconstruct(self, inputs: torch.Tensor, num_inference_steps: Optional[int] = None,
                    generator: Optional[torch.Generator] = None,
                    mask: Optional[Union[TokenMask, torch.Tensor]] = None,
                    sampler: Optional[str] = None) -> Dict[str, torch.Tensor]:
        """Reconstruct the masked patches of clips.

        Args:
            inputs: Normalised clips (B, 3, T, H, W) or (B, M, 3, T, H, W).
            num_inference_steps: Diffusion sampling steps (default: ``self.num_inference_steps`` or the head's).
            generator: Torch generator for the sampler's noise.
            mask: Optional :class:`TokenMask` or (B, N) bool mask (True = masked); sampled by the masker otherwise.
            sampler: The diffusion head's sampler ('ddpm' / 'ddim'; default: the head's ``sampler``).

        Returns:
            dict: ``mask`` (B, N), ``target`` (B, N, D) pixel patches, ``reconstruction`` (B, N, D) with visible
            patches copied from the target and masked ones decoded, ``grid`` (T', H', W').
        """
        if self.head is None:
            raise RuntimeError('this Stage-1 model has no pixel head to reconstruct with')
        clips = self.flatten_clips(inputs)
        mask = self.sample_mask(clips, self.teacher_targets(clips)) if mask is None else TokenMask.coerce(mask)
        final, _ = self.backbone.forward_tokens(clips, mask)
        z, _ = self.masked_predictions(clips, final, mask)
        masked = mask.masked_index
        steps = num_inference_steps or self.num_inference_steps
        decoded = self.head.sample(z, num_inference_steps=steps, generator=generator, sampler=sampler)
        target = patchify(clips, self.backbone.patch_size, self.backbone.tubelet_size)
        recon = target.scatter(1, masked.unsqueeze(-1).expand(-1, -1, target.shape[-1]), decoded.to(target.dtype))
        return dict(mask=mask.mask, target=target, reconstruction=recon, grid=self.backbone.grid_of(clips))

    def predict(self, inputs: torch.Tensor, data_samples: Optional[list] = None) -> List[BaseDataElement]:
        """Reconstructions as data elements (one per clip) with ``mask``, ``target`` and ``reconstruction``."""
        out = self.reconstruct(inputs)
        results = []
        for i in range(out['mask'].shape[0]):
            results.append(BaseDataElement(mask=out['mask'][i], target=out['target'][i],
                                           reconstruction=out['reconstruction'][i], grid=out['grid']))
        return results
