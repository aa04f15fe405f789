"""Tiny text towers saved as transformers folders, and a tiny encoder folder, for the video-text tests."""
from pathlib import Path

import torch

# A word-piece vocabulary large enough for the test captions (unknown words map to [UNK]).
WORDS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'a', 'the', 'video', 'of', 'red', 'green', 'blue', 'yellow',
         'square', 'moving', 'moves', 'left', 'right', 'up', 'down', 'to', 'is', 'clip', 'shape', 'in', 'playing',
         'guitar', 'dog', 'cat', 'running', 'jumping', 'apply', 'eye', 'makeup', 'something', 'into', 'putting', '.']

TINY_ENCODER = dict(arch=dict(embed_dims=64, num_layers=2, num_heads=4, mlp_ratio=2.0), img_size=56, patch_size=14,
                    num_frames=4, with_clip_projector=True, clip_embed_dims=32, clip_num_heads=4,
                    use_flash_attn=False)


# A tiny alignment config over a shipped align config: the tiny encoder and text tower, 4 frames of 56 px,
# {train} / {test} caption or label files, {pack} the last transform, {dataset_extra} more val dataset fields.
TINY_ALIGN_CONFIG = '''
_base_ = [{base!r}]
model = dict(encoder=dict(source={encoder!r}), text_tower=dict(_delete_=True, type='TransformersTextTower',
                                                                 pretrained={tower!r}))
_pipe = [
    dict(type='DecordInit'),
    dict(type='UniformSample', clip_len=4, num_clips=1, test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, 56)),
    dict(type='CenterCrop', crop_size=56),
    dict(type='FormatShape', input_format='NCTHW'),
    {pack},
]
_loader = dict(batch_size=2, num_workers=0, persistent_workers=False)
train_dataloader = dict(**_loader, dataset=dict(ann_file={train!r}, data_prefix=dict(video={videos!r}), pipeline=_pipe))
val_dataloader = dict(**_loader, dataset=dict(ann_file={test!r}, data_prefix=dict(video={videos!r}), pipeline=_pipe,
                                              {dataset_extra}))
test_dataloader = val_dataloader
default_hooks = dict(logger=dict(interval=1))
'''
# Appended for a training run: one epoch at a constant lr.
TRAIN_ONE_EPOCH = '''
train_cfg = dict(max_epochs=1)
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=True, begin=0, end=1)]
'''


def save_tokenizer(folder: Path):
    """A lower-casing word-piece tokenizer over :data:`WORDS` (built with the tokenizers library, which both
    transformers 4 and 5 read back from ``tokenizer.json``)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast
    folder.mkdir(parents=True, exist_ok=True)
    vocab = {word: i for i, word in enumerate(WORDS)}
    tok = Tokenizer(models.WordPiece(vocab, unk_token='[UNK]'))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(single='[CLS] $A [SEP]', special_tokens=[
        ('[CLS]', vocab['[CLS]']), ('[SEP]', vocab['[SEP]'])])
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token='[UNK]', pad_token='[PAD]', cls_token='[CLS]',
                            sep_token='[SEP]', mask_token='[MASK]').save_pretrained(str(folder))


def save_tiny_bert(folder: Path, hidden: int = 24) -> Path:
    """A random 1-layer BERT (width ``hidden``) with its tokenizer: a BERT-style sentence encoder, mean pooled."""
    from transformers import BertConfig, BertModel
    torch.manual_seed(0)
    save_tokenizer(folder)
    config = BertConfig(vocab_size=len(WORDS), hidden_size=hidden, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=2 * hidden, max_position_embeddings=64)
    BertModel(config).save_pretrained(str(folder))
    return folder


def save_tiny_clip_text(folder: Path, hidden: int = 24, projection: int = 16) -> Path:
    """A random 1-layer CLIP text model with projection (``CLIPTextModelWithProjection``) and a tokenizer."""
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection
    torch.manual_seed(0)
    save_tokenizer(folder)
    sep = WORDS.index('[SEP]')
    config = CLIPTextConfig(vocab_size=len(WORDS), hidden_size=hidden, intermediate_size=2 * hidden,
                            num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=32,
                            projection_dim=projection, eos_token_id=sep, bos_token_id=WORDS.index('[CLS]'),
                            pad_token_id=0)
    CLIPTextModelWithProjection(config).save_pretrained(str(folder))
    return folder


def save_tiny_encoder(folder: Path) -> Path:
    """A random tiny InternVideo-Next encoder folder (4 frames of 56 px, width 64, clip projector to 32)."""
    from ivnext.api import Preprocessing, VideoEncoder
    torch.manual_seed(0)
    VideoEncoder(TINY_ENCODER, Preprocessing(num_frames=4, frame_interval=2, resize=64, crop=56)).save_pretrained(
        str(folder))
    return folder


def save_tiny_siglip_text(folder: Path, hidden: int = 24) -> Path:
    """A random 1-layer SigLIP text model (``SiglipTextModel``: pooled head output) with a tokenizer."""
    from transformers import SiglipTextConfig, SiglipTextModel
    torch.manual_seed(0)
    save_tokenizer(folder)
    config = SiglipTextConfig(vocab_size=len(WORDS), hidden_size=hidden, intermediate_size=2 * hidden,
                              num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=64)
    SiglipTextModel(config).save_pretrained(str(folder))
    return folder
