"""Video-text alignment: frozen towers, trainable head, all-gather InfoNCE, retrieval metrics, save / load."""
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers_text import save_tiny_bert, save_tiny_clip_text, save_tiny_encoder
from mmaction.structures import ActionDataSample
from mmengine.optim import build_optim_wrapper

import ivnext
from ivnext.api import Aligner
from ivnext.evaluation.class_prompts import class_prompts, read_class_names, readable_class_name
from ivnext.evaluation.video_text_retrieval_metric import VideoTextRetrievalMetric, retrieval_metrics
from ivnext.models.losses import VideoTextContrastiveLoss

CAPTIONS = ['a red square moving left', 'a blue square moving right', 'a green shape moving up',
            'a yellow square moving down']


@pytest.fixture(scope='module')
def towers(tmp_path_factory):
    root = tmp_path_factory.mktemp('towers')
    return dict(encoder=save_tiny_encoder(root / 'encoder'), bert=save_tiny_bert(root / 'bert'),
                clip=save_tiny_clip_text(root / 'clip'))


def build(towers, text='bert', **kwargs):
    torch.manual_seed(0)
    return ivnext.load_aligner(encoder=str(towers['encoder']), text_tower=str(towers[text]), **kwargs)


def batch(n: int = 4, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 4, 56, 56, generator=gen)


def test_gradients_reach_only_the_trainable_parts(towers):
    model = build(towers, text='clip', align_dim=20, text_projection=True).model.train()
    encoder_before = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    tower_before = {k: v.clone() for k, v in model.text_tower.state_dict().items()}
    trainable = {n for n, _ in model.named_parameters()}
    assert {n.split('.')[0] for n in trainable} == {'projector', 'align', 'text_proj', 'temperature'}
    assert not any(p.requires_grad for p in model.encoder.parameters())
    assert not any(p.requires_grad for p in model.text_tower.parameters())
    assert not model.encoder.training and not model.text_tower.training

    losses = model.contrastive_loss(model.embed_video(batch()), CAPTIONS)
    losses['loss_vtc'].backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    assert all(p.grad is None for p in model.encoder.parameters())
    assert all(p.grad is None for p in model.text_tower.parameters())

    wrapper = build_optim_wrapper(model, dict(constructor='TrainableOptimWrapperConstructor',
                                              optimizer=dict(type='AdamW', lr=1e-2, weight_decay=0.2)))
    head_before = {k: v.clone() for k, v in model.state_dict().items()}
    samples = [ActionDataSample(metainfo=dict(text=c, filename=f'{i}.mp4')) for i, c in enumerate(CAPTIONS)]
    for _ in range(3):
        model.train_step(dict(inputs=list(batch()[:, None]), data_samples=samples), wrapper)
    for key, value in model.encoder.state_dict().items():
        assert torch.equal(value, encoder_before[key]), f'encoder {key} changed'
    for key, value in model.text_tower.state_dict().items():
        assert torch.equal(value, tower_before[key]), f'text tower {key} changed'
    changed = {k.split('.')[0] for k, v in model.state_dict().items() if not torch.equal(v, head_before[k])}
    assert {'projector', 'align', 'text_proj'} <= changed
    # Checkpoints and state dicts hold only the trainable parts.
    assert all(k.split('.')[0] in ('projector', 'align', 'text_proj', 'temperature') for k in model.state_dict())


def test_projector_starts_as_the_encoders_clip_projector(towers):
    aligner = build(towers)
    model, clips = aligner.model, batch(2)
    pooled = model.encoder(clips, output='pooled')
    torch.testing.assert_close(model.projector(model.video_tokens(clips)), pooled)
    # A fresh projector when the encoder has none is a different module of the asked width.
    fresh = build(towers, projector_dims=48).model
    assert fresh.projector.cross_attn.proj.out_features == 48 and fresh.align[1].in_features == 48


def test_temperature_is_learnable_and_clamped(towers):
    model = build(towers, temperature=0.05, min_temperature=0.01).model
    assert model.temperature.requires_grad and float(model.temperature) == pytest.approx(0.05)
    with torch.no_grad():
        model.temperature.fill_(0.001)
    out = model.contrastive_loss(model.embed_video(batch()), CAPTIONS)
    assert float(model.temperature) == pytest.approx(0.01) and float(out['temperature']) == pytest.approx(0.01)


def test_text_features_are_cached_by_caption(towers):
    tower = build(towers).model.text_tower
    calls = []
    original = tower._encode

    def counting(texts):
        calls.append(list(texts))
        return original(texts)

    tower._encode = counting
    first = tower.encode(CAPTIONS + CAPTIONS[:1])
    second = tower.encode(CAPTIONS[::-1])
    assert calls == [CAPTIONS]  # each caption ran once; the repeat and the second call hit the cache
    torch.testing.assert_close(second, first[:4].flip(0), rtol=0, atol=0)
    tower.cache_size = 0
    torch.testing.assert_close(tower.encode(CAPTIONS), first[:4], rtol=1e-5, atol=1e-6)


def test_clip_and_bert_towers_give_their_models_features(towers):
    from transformers import AutoModel, AutoTokenizer, CLIPTextModelWithProjection
    clip_tower = build(towers, text='clip', align_dim=16).model.text_tower
    assert clip_tower.out_dims == 16 and clip_tower.pooling == 'projection'
    tok = AutoTokenizer.from_pretrained(str(towers['clip']))
    ids = tok(CAPTIONS[:2], padding=True, return_tensors='pt')
    ref = CLIPTextModelWithProjection.from_pretrained(str(towers['clip']))(
        input_ids=ids['input_ids'], attention_mask=ids['attention_mask']).text_embeds
    torch.testing.assert_close(clip_tower.encode(CAPTIONS[:2]), ref, rtol=1e-5, atol=1e-5)

    bert_tower = build(towers).model.text_tower
    assert bert_tower.pooling == 'mean' and bert_tower.out_dims == 24
    ids = AutoTokenizer.from_pretrained(str(towers['bert']))(CAPTIONS[:2], padding=True, return_tensors='pt')
    hidden = AutoModel.from_pretrained(str(towers['bert']))(**ids).last_hidden_state
    mask = ids['attention_mask'][..., None].float()
    torch.testing.assert_close(bert_tower.encode(CAPTIONS[:2]), (hidden * mask).sum(1) / mask.sum(1),
                               rtol=1e-5, atol=1e-5)


def test_width_mismatch_and_missing_open_clip_are_explained(towers):
    with pytest.raises(ValueError, match='text_projection=True'):
        build(towers, align_dim=10)
    if 'open_clip' not in sys.modules:
        try:
            import open_clip  # noqa: F401
        except ImportError:
            from ivnext.models.text_towers import OpenCLIPTextTower
            with pytest.raises(ImportError, match='open_clip_torch'):
                OpenCLIPTextTower('MobileCLIP-B')


def test_loss_is_symmetric_infonce():
    gen = torch.Generator().manual_seed(1)
    video, text = torch.randn(5, 8, generator=gen), torch.randn(5, 8, generator=gen)
    temp = torch.tensor(0.07)
    logits = F.normalize(video, dim=-1) @ F.normalize(text, dim=-1).t() / temp
    target = torch.arange(5)
    expected = (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2
    torch.testing.assert_close(VideoTextContrastiveLoss()(video, text, temp), expected)
    # Two captions of one video in the batch: both pairs are positives.
    ids = torch.tensor([0, 1, 1, 2, 3])
    pos = (ids[:, None] == ids[None]).float()
    pos = pos / pos.sum(1, keepdim=True)
    expected = ((-pos * logits.log_softmax(1)).sum(1).mean() + (-pos * logits.t().log_softmax(1)).sum(1).mean()) / 2
    torch.testing.assert_close(VideoTextContrastiveLoss()(video, text, temp, ids), expected)


def _gather_worker(rank: int, world: int, port: int, out_dir: str) -> None:
    import torch.distributed as dist
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=world)
    data = torch.load(os.path.join(out_dir, 'data.pt'))
    per = len(data['video']) // world
    video = data['video'][rank * per:(rank + 1) * per].clone().requires_grad_(True)
    text = data['text'][rank * per:(rank + 1) * per].clone().requires_grad_(True)
    ids = data['ids'][rank * per:(rank + 1) * per]
    loss = VideoTextContrastiveLoss(gather=True)(video, text, data['temp'], ids)
    loss.backward()
    torch.save(dict(loss=loss.detach(), video_grad=video.grad, text_grad=text.grad),
               os.path.join(out_dir, f'rank{rank}.pt'))
    dist.destroy_process_group()


def test_all_gather_loss_over_two_ranks_equals_the_gathered_batch(tmp_path):
    import torch.multiprocessing as mp
    gen = torch.Generator().manual_seed(2)
    data = dict(video=torch.randn(6, 8, generator=gen), text=torch.randn(6, 8, generator=gen),
                ids=torch.tensor([0, 1, 2, 2, 3, 0]), temp=torch.tensor(0.05))
    torch.save(data, tmp_path / 'data.pt')
    port = 29000 + os.getpid() % 1000
    mp.spawn(_gather_worker, args=(2, port, str(tmp_path)), nprocs=2, join=True)

    video, text = data['video'].clone().requires_grad_(True), data['text'].clone().requires_grad_(True)
    loss = VideoTextContrastiveLoss(gather=False)(video, text, data['temp'], data['ids'])
    loss.backward()
    ranks = [torch.load(tmp_path / f'rank{r}.pt') for r in range(2)]
    for r, out in enumerate(ranks):
        torch.testing.assert_close(out['loss'], loss.detach())
        # Every rank's copy of the loss sends its gradient to the slice's owner; DDP then averages over the ranks.
        torch.testing.assert_close(out['video_grad'] / 2, video.grad[3 * r:3 * r + 3])
        torch.testing.assert_close(out['text_grad'] / 2, text.grad[3 * r:3 * r + 3])


def test_retrieval_metrics_on_a_hand_made_similarity_matrix():
    # Rows are queries; the diagonal holds each query's match. Ranks: 1, 3, 2, 4.
    sim = np.array([[0.9, 0.1, 0.0, 0.2],
                    [0.8, 0.5, 0.7, 0.0],
                    [0.0, 0.9, 0.4, 0.1],
                    [0.5, 0.6, 0.7, 0.3]])
    out = retrieval_metrics(sim)
    assert out == dict(R1=25.0, R5=100.0, R10=100.0, MdR=2.5, MnR=2.5)
    assert retrieval_metrics(sim, ['R1', 'MdR']) == dict(R1=25.0, MdR=2.5)
    with pytest.raises(ValueError, match='square'):
        retrieval_metrics(sim[:3])

    # The metric reports both directions from per-sample features: text i matches video i.
    videos = np.eye(3, dtype=np.float32)
    texts = np.array([[1, 0, 0], [0, 0.2, 1], [0, 1, 0.1]], dtype=np.float32)  # text 1 best matches video 2
    metric = VideoTextRetrievalMetric()
    results = [dict(video_feature=v, text_feature=t) for v, t in zip(videos, texts)]
    out = metric.compute_metrics(results)
    assert out['t2v/R1'] == pytest.approx(100 / 3) and out['t2v/MdR'] == 2.0
    assert out['v2t/R1'] == pytest.approx(100 / 3) and out['v2t/R5'] == 100.0


def test_class_name_files_and_prompts(tmp_path):
    (tmp_path / 'k400.txt').write_text('abseiling\nplaying guitar\nriding_a_bike\n')
    (tmp_path / 'classInd.txt').write_text('1 ApplyEyeMakeup\n2 ApplyLipstick\n')
    (tmp_path / 'ssv2.json').write_text(json.dumps({'Putting [something] into [something]': '1',
                                                    'Approaching something with your camera': '0'}))
    assert read_class_names(str(tmp_path / 'k400.txt')) == ['abseiling', 'playing guitar', 'riding a bike']
    assert read_class_names(str(tmp_path / 'classInd.txt')) == ['apply eye makeup', 'apply lipstick']
    assert read_class_names(str(tmp_path / 'ssv2.json')) == ['approaching something with your camera',
                                                            'putting something into something']
    assert readable_class_name('YoYo') == 'yo yo'
    assert class_prompts(['dog'], ['a video of {}.', 'a clip of a {}']) == [['a video of dog.', 'a clip of a dog']]
    with pytest.raises(ValueError, match='exactly one'):
        class_prompts(['dog'], ['no slot'])


def test_zero_shot_predict_scores_the_class_prompts(towers, tmp_path):
    names = tmp_path / 'classes.txt'
    names.write_text('playing guitar\nrunning dog\njumping cat\n')
    model = build(towers, zero_shot=dict(class_names=str(names), templates=['a video of {}.', 'a clip of {}'])).model
    samples = [ActionDataSample().set_gt_label(i) for i in range(2)]
    out = model(batch(2)[:, None], samples, mode='predict')
    scores = torch.stack([s.pred_score for s in out])
    assert scores.shape == (2, 3)
    torch.testing.assert_close(scores.sum(1), torch.ones(2))
    video = F.normalize(model.embed_video(batch(2)), dim=-1)
    prompts = [[f'a video of {n}.', f'a clip of {n}'] for n in ['playing guitar', 'running dog', 'jumping cat']]
    classes = F.normalize(torch.stack([F.normalize(model.embed_text(p), dim=-1).mean(0) for p in prompts]), dim=-1)
    torch.testing.assert_close(scores, (video @ classes.t() / model.temperature).softmax(-1))


def test_save_load_round_trip(towers, tmp_path):
    aligner = build(towers, text='clip', align_dim=20, text_projection=True)
    with torch.no_grad():
        for p in aligner.model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    paths = aligner.save_pretrained(str(tmp_path / 'aligner'))
    config = json.loads(Path(paths[0]).read_text())
    assert config['model_type'] == 'ivnext-video-text-aligner'
    assert config['aligner']['encoder']['source'] == str(towers['encoder'])
    assert config['aligner']['text_tower'] == dict(type='TransformersTextTower', pretrained=str(towers['clip']),
                                                   pooling='auto', max_length=None, normalize=None)
    from safetensors.torch import load_file
    assert {k.split('.')[0] for k in load_file(paths[1])} == {'projector', 'align', 'text_proj', 'temperature'}

    again = ivnext.load_aligner(str(tmp_path / 'aligner'))
    clips = batch(3)
    torch.testing.assert_close(again.encode_video(clips), aligner.encode_video(clips), rtol=0, atol=0)
    torch.testing.assert_close(again.encode_text(CAPTIONS), aligner.encode_text(CAPTIONS), rtol=0, atol=0)
    sim = again.similarity(again.encode_text(CAPTIONS[:2]), again.encode_video(clips))
    assert sim.shape == (2, 3) and sim.abs().max() <= 1 + 1e-5
    assert list(again.search(CAPTIONS[0], again.encode_video(clips))) == list(
        torch.argsort(sim[0], descending=True).numpy())

    (tmp_path / 'enc_only').mkdir()
    (tmp_path / 'enc_only' / 'config.json').write_text(json.dumps(dict(model_type='ivnext-video-encoder')))
    with pytest.raises(ValueError, match='load_encoder'):
        ivnext.load_aligner(str(tmp_path / 'enc_only'))
    with pytest.raises(ValueError, match='encoder= and text_tower='):
        ivnext.load_aligner(encoder=str(towers['encoder']))


def test_videos_from_frames_and_bf16(towers):
    aligner = build(towers, precision='bf16')
    frames = np.random.default_rng(0).integers(0, 255, (12, 64, 80, 3), dtype=np.uint8)
    emb = aligner.encode_video([frames, frames[::-1].copy()])
    assert emb.shape == (2, 24) and emb.dtype == torch.float32 and torch.isfinite(emb).all()
    model = aligner.model.train()
    out = model.contrastive_loss(model.embed_video(batch()), CAPTIONS)
    assert torch.isfinite(out['loss_vtc'])


def test_a_few_steps_align_clips_to_their_captions(towers):
    model = build(towers).model.train()
    clips = batch(4, seed=3)
    tokens = model.video_tokens(clips)
    optimizer = torch.optim.AdamW(list(model.parameters()), lr=1e-2, betas=(0.9, 0.98))
    for _ in range(60):
        loss = model.contrastive_loss(model.embed_tokens(tokens), CAPTIONS)['loss_vtc']
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    aligner = Aligner(model)
    sim = aligner.similarity(aligner.encode_text(CAPTIONS), aligner.encode_video(clips))
    assert sim.argmax(1).tolist() == [0, 1, 2, 3] and sim.argmax(0).tolist() == [0, 1, 2, 3]
    assert float(loss) < 0.1


def test_siglip_tower_pads_to_64_tokens_and_reads_the_pooled_head(tmp_path):
    from helpers_text import save_tiny_siglip_text
    from transformers import AutoTokenizer, SiglipTextModel

    from ivnext.models.text_towers import TransformersTextTower
    folder = save_tiny_siglip_text(tmp_path / 'siglip')
    tower = TransformersTextTower(str(folder))
    assert tower.pooling == 'pooler' and tower.max_length == 64 and tower.out_dims == 24
    ids = AutoTokenizer.from_pretrained(str(folder))(CAPTIONS[:2], padding='max_length', max_length=64,
                                                     truncation=True, return_tensors='pt')['input_ids']
    ref = SiglipTextModel.from_pretrained(str(folder))(input_ids=ids).pooler_output
    torch.testing.assert_close(tower.encode(CAPTIONS[:2]), ref, rtol=1e-5, atol=1e-5)
