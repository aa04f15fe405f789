"""BFloat16OptimWrapper: torch's clipping semantics on the device, gradient accumulation, autocast, bad configs."""
import copy

import pytest
import torch
from mmaction.registry import OPTIM_WRAPPERS
from mmengine.logging import MessageHub


def _net(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.GELU(), torch.nn.Linear(16, 4))


def _wrapper(net, **kwargs):
    return OPTIM_WRAPPERS.build(dict(type='BFloat16OptimWrapper',
                                     optimizer=torch.optim.SGD(net.parameters(), lr=0.1), **kwargs))


def test_clipping_equals_torch_clip_grad_norm_and_logs_the_norm():
    net, ref = _net(), _net()
    wrapper = _wrapper(net, clip_grad=dict(max_norm=0.05), enabled=False)
    optimizer = torch.optim.SGD(ref.parameters(), lr=0.1)
    x = torch.randn(32, 8)
    with wrapper.optim_context(net):
        loss = net(x).pow(2).mean()
    wrapper.update_params(loss)
    ref(x).pow(2).mean().backward()
    norm = torch.nn.utils.clip_grad_norm_(ref.parameters(), 0.05)
    optimizer.step()
    assert norm > 0.05  # clipping was active
    for p, q in zip(net.parameters(), ref.parameters()):
        torch.testing.assert_close(p, q)
    logged = MessageHub.get_current_instance().get_scalar('train/grad_norm').current()
    assert logged == pytest.approx(float(norm), rel=1e-5)


def test_gradient_accumulation_equals_one_big_batch():
    net, ref = _net(), _net()
    wrapper = _wrapper(net, accumulative_counts=2, clip_grad=dict(max_norm=1.0), enabled=False)
    big = _wrapper(ref, clip_grad=dict(max_norm=1.0), enabled=False)
    x = torch.randn(16, 8)
    wrapper.initialize_count_status(net, 0, 2)
    for half in x.chunk(2):
        with wrapper.optim_context(net):
            loss = net(half).pow(2).mean()
        wrapper.update_params(loss)
    with big.optim_context(ref):
        loss = ref(x).pow(2).mean()
    big.update_params(loss)
    for p, q in zip(net.parameters(), ref.parameters()):
        torch.testing.assert_close(p, q)


def test_autocast_is_bf16_and_can_be_turned_off():
    net = _net()
    for enabled, dtype in ((True, torch.bfloat16), (False, torch.float32)):
        with _wrapper(copy.deepcopy(net), enabled=enabled).optim_context(net):
            assert net(torch.randn(2, 8)).dtype == dtype


@pytest.mark.parametrize('clip_grad', [dict(type='value', clip_value=1.0), dict(max_norm=1.0, norm_type=1),
                                       dict(max_norm=1.0, error_if_nonfinite=True), dict(norm_type=2)])
def test_unsupported_clipping_is_rejected(clip_grad):
    with pytest.raises(ValueError, match='clip_grad|norm'):
        _wrapper(_net(), clip_grad=clip_grad)
