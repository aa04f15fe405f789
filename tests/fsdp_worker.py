"""torchrun worker for tests/test_fsdp.py: Stage-1 steps under FSDP against the same steps in one process.

Every rank builds the same tiny Stage-1 model. The reference (a copy, unwrapped) runs both ranks' batches with
the same random seeds, averages the gradients, clips by the global norm and steps AdamW. The FSDP model (ivnext's
block wrap policy, teacher ignored, ``BFloat16OptimWrapper`` with autocast off) and, for contrast, an FSDP model
with MMEngine's stock ``OptimWrapper`` each run one rank's batch per process. Rank 0 writes the largest parameter
differences to ``OUT``.
"""
import copy
import json
import os
import sys

import torch
import torch.distributed as dist

import ivnext  # noqa: F401
from mmaction.registry import MODELS, OPTIM_WRAPPERS
from mmengine.config import Config
from mmengine.model.wrappers import MMFullyShardedDataParallel
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope
from torch.distributed.fsdp import FullStateDictConfig, FullyShardedDataParallel, StateDictType

from ivnext.engine import block_wrap_policy

STEPS, MAX_NORM, LR = 2, 1.0, 1e-3


def batch(rank: int, step: int) -> torch.Tensor:
    return torch.randn(2, 3, 4, 56, 56, generator=torch.Generator().manual_seed(1000 * step + rank))


def seed(rank: int, step: int) -> None:
    torch.manual_seed(7 + 100 * step + rank)


def total_loss(model, clips):
    losses = model(clips, mode='loss')
    return sum(v for k, v in losses.items() if k.startswith('loss'))


def reference(model, world_size: int):
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=LR)
    for step in range(STEPS):
        optimizer.zero_grad()
        for rank in range(world_size):
            seed(rank, step)
            (total_loss(model, batch(rank, step)) / world_size).backward()
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.grad is not None], MAX_NORM)
        optimizer.step()
    return {k: v for k, v in model.state_dict().items()}


def sharded(model, rank: int, wrapper: str):
    fsdp = MMFullyShardedDataParallel(module=model, device_id=0, auto_wrap_policy=block_wrap_policy,
                                      use_orig_params=True, ignored_modules=['teacher'])
    optimizer = torch.optim.AdamW([p for p in fsdp.parameters() if p.requires_grad], lr=LR)
    if wrapper == 'ivnext':
        optim_wrapper = OPTIM_WRAPPERS.build(dict(type='BFloat16OptimWrapper', optimizer=optimizer,
                                                  clip_grad=dict(max_norm=MAX_NORM), enabled=False))
    else:
        optim_wrapper = OptimWrapper(optimizer, clip_grad=dict(max_norm=MAX_NORM))
    for step in range(STEPS):
        seed(rank, step)
        with optim_wrapper.optim_context(fsdp):
            loss = total_loss(fsdp, batch(rank, step))
        optim_wrapper.update_params(loss)
    config = FullStateDictConfig(offload_to_cpu=False, rank0_only=False)
    with FullyShardedDataParallel.state_dict_type(fsdp, StateDictType.FULL_STATE_DICT, config):
        return fsdp.state_dict()


def max_diff(state, ref):
    keys = [k for k in ref if not k.startswith('teacher.')]
    missing = [k for k in keys if k not in state]
    return missing, max(float((state[k].float() - ref[k].float()).abs().max()) for k in keys if k in state)


def main() -> None:
    out = sys.argv[1]
    dist.init_process_group('gloo')
    rank, world = dist.get_rank(), dist.get_world_size()
    init_default_scope('mmaction')
    cfg = Config.fromfile(os.path.join(os.path.dirname(__file__), '..', 'configs', 'demo', 'tiny_stage1_cpu.py'))
    torch.manual_seed(0)
    base = MODELS.build(cfg.model)
    base.init_weights()
    ref = reference(copy.deepcopy(base), world)
    results = {}
    for wrapper in ('ivnext', 'mmengine'):
        missing, diff = max_diff(sharded(copy.deepcopy(base), rank, wrapper), ref)
        results[wrapper] = dict(missing=missing, max_abs_diff=diff)
    moved = max(float((ref[k].float() - v.float()).abs().max()) for k, v in base.state_dict().items()
                if not k.startswith('teacher.'))
    results['reference_update'] = moved
    if rank == 0:
        with open(out, 'w') as f:
            json.dump(results, f)
    dist.destroy_process_group()


if __name__ == '__main__':
    main()
