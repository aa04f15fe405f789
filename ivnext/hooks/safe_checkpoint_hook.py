"""MMEngine's CheckpointHook, made crash-safe and safe to load from."""
import os
import os.path as osp
import pickle
import re
import zipfile
from typing import Any, Callable, Dict, List, Optional

from mmaction.registry import HOOKS
from mmengine.dist import all_gather_object, barrier, broadcast_object_list, get_rank, get_world_size, is_main_process
from mmengine.fileio.backends import LocalBackend
from mmengine.hooks import CheckpointHook
from mmengine.model import is_model_wrapper

from ivnext.utils.checkpoint import (CheckpointMismatchError, CorruptCheckpointError, UntrustedCheckpointError,
                                     checkpoint_load_scope, corrupt_message, fit_report, format_fit_report,
                                     refuse_or_report)
from ivnext.utils.files import PARTIAL_SUFFIX, free_space, fsync_dir, fsync_path, remove_path, write_text_atomic
from ivnext.utils.rng_state import capture_rng_state, restore_rng_state
from ivnext.video.readers import regular_file_problem

TRUST_OPT_IN = '--trust-checkpoint (or `trust_checkpoint = True` in the config)'
PARTIAL_OPT_IN = '--partial-load (or `allow_partial_load = True` in the config)'
# Files a DeepSpeed (``mp_rank_00_model_states.pt``) or sharded FSDP (``rank0.pth``) checkpoint folder holds.
SHARDED_STATE_SUFFIXES = ('.pt', '.pth')


def checkpoint_problem(path: str) -> Optional[str]:
    """Why ``path`` is not a complete checkpoint (truncated, corrupt, empty), or None if it is.

    A torch checkpoint is a zip archive: its directory must be readable and every member must pass its CRC check,
    which reads the file without unpickling anything. A directory (DeepSpeed) must hold files.
    """
    if osp.isdir(path):
        # A DeepSpeed / sharded checkpoint is a folder of model-state files; any other folder is not a checkpoint.
        names = [name for _, _, files in os.walk(path) for name in files]
        if not names:
            return 'empty directory'
        if not any(name.endswith(SHARDED_STATE_SUFFIXES) for name in names):
            return f'a folder without checkpoint files (*{", *".join(SHARDED_STATE_SUFFIXES)})'
        return None
    problem = regular_file_problem(path)
    if problem is not None:
        return problem  # a FIFO would block the zip reader
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        return f'not a complete torch checkpoint ({err})'
    return None if bad is None else f'member {bad} fails its CRC check'


def numbered_checkpoints(directory: str, filename_tmpl: str) -> List[str]:
    """Checkpoints named by ``filename_tmpl`` (e.g. ``iter_{}.pth``) in ``directory``, newest (highest) first."""
    if not osp.isdir(directory):
        return []
    head, tail = filename_tmpl.split('{}')
    pattern = re.compile(re.escape(head) + r'(\d+)' + re.escape(tail) + '$')
    found = [(int(m.group(1)), name) for name in os.listdir(directory) for m in [pattern.match(name)] if m]
    return [osp.join(directory, name) for _, name in sorted(found, reverse=True)]


def newest_complete_checkpoint(directory: str, filename_tmpl: str, warn: Callable[[str], Any] = print) -> Optional[str]:
    """The newest complete checkpoint in ``directory``; each newer broken one is named through ``warn``.

    Candidates are the files named by ``filename_tmpl`` and the target of ``last_checkpoint`` (which may be
    missing: it is a hint, not a requirement).
    """
    candidates = numbered_checkpoints(directory, filename_tmpl)
    last = osp.join(directory, 'last_checkpoint')
    if osp.isfile(last):
        with open(last) as f:
            target = f.read().strip()
        if target and osp.exists(target) and osp.abspath(target) not in map(osp.abspath, candidates):
            candidates.insert(0, target)
    for path in candidates:
        problem = checkpoint_problem(path)
        if problem is None:
            return path
        warn(f'skipping checkpoint {path}: {problem}; falling back to the previous one')
    return None


def remove_partial_checkpoints(directory: str, log: Callable[[str], Any] = print) -> List[str]:
    """Remove the ``*.partial`` files an interrupted or failed save left in ``directory``; returns their paths.

    ivnext's tools call this before the runner is built, so a partial file that filled the disk cannot stop the
    runner from writing its config and logs.
    """
    if not osp.isdir(directory):
        return []
    removed = []
    for name in sorted(os.listdir(directory)):
        if name.endswith(PARTIAL_SUFFIX):
            path = osp.join(directory, name)
            log(f'removing {path}, left by an interrupted save')
            remove_path(path)
            removed.append(path)
    return removed


@HOOKS.register_module()
class SafeCheckpointHook(CheckpointHook):
    """MMEngine's ``CheckpointHook`` that never loses the last good checkpoint and loads only what it should.

    On top of ``CheckpointHook`` (same arguments):

    * **Atomic saves.** A checkpoint is written as ``<name>.partial``, flushed to disk and renamed; old
      checkpoints beyond ``max_keep_ckpts`` are removed only after that, and ``last_checkpoint`` is replaced
      atomically. A crash at any moment leaves the previous checkpoints intact.
    * **Resume from the newest checkpoint that is complete** (``resume=True`` without ``load_from``): the
      checkpoints of the work directory are tried newest first, broken ones are skipped with a warning, and
      ``last_checkpoint`` is not needed.
    * **Random states.** Python, numpy, torch (CPU/CUDA) and model-owned generators of every rank are stored
      in the checkpoint (``rng_state``) and restored on resume exactly where the interrupted run stood (after
      MMEngine's data-loader fast-forward), so a resumed run draws the same numbers as an uninterrupted one
      (with ``num_workers=0``; worker processes reseed at each loader start).
    * **Safe loading.** The runner's checkpoint loads (``load_from``, ``resume``, ``tools/test.py``) are
      weights-only with the allow-list of :func:`ivnext.utils.checkpoint.checkpoint_load_scope`; the config
      field ``trust_checkpoint = True`` (``--trust-checkpoint``) unpickles in full (:func:`install_safe_loading`,
      which ivnext's tools also apply to runners whose config keeps MMEngine's ``CheckpointHook``).
    * **Wrong weights never score.** A loaded checkpoint whose ``state_dict`` lacks model keys, has extra ones
      or other shapes stops the run with the key names, unless ``allow_partial_load = True``
      (``--partial-load``).
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._pending_rng: Optional[Dict[str, Any]] = None
        self._rng_states: Optional[List[Dict[str, Any]]] = None

    # ------------------------------------------------------------------ loading
    def _checkpoint_dir(self, runner) -> str:
        """The directory checkpoints are written to (``out_dir`` resolved as ``CheckpointHook.before_train`` does)."""
        if self.out_dir is None or self.out_dir == runner.work_dir:
            return runner.work_dir
        return osp.join(self.out_dir, osp.basename(runner.work_dir.rstrip(osp.sep)))

    def before_run(self, runner) -> None:
        """Make the runner's loads safe, and choose the checkpoint to resume from (once per runner)."""
        self.prepare_loading(runner)

    def prepare_loading(self, runner) -> None:
        """Make the runner's loads safe (:func:`install_safe_loading`) and pick the checkpoint ``resume`` continues
        from.

        ``Runner`` loads after ``before_run``; MMEngine's ``FlexibleRunner`` loads before it, so ivnext's tools
        call this right after building the runner (see :func:`prepare_runner_loading`). Runs once per runner.
        """
        install_safe_loading(runner)
        if getattr(runner, '_ivnext_resume_chosen', False):
            return
        runner._ivnext_resume_chosen = True
        # MMEngine reads ``resume``/``load_from`` from these attributes in ``load_or_resume`` (no public setter).
        if runner._resume is True and runner._load_from is None:
            directory = self._checkpoint_dir(runner)
            found = [None]
            if is_main_process():
                found[0] = newest_complete_checkpoint(directory, self.filename_tmpl, runner.logger.warning)
            broadcast_object_list(found)
            if found[0] is None:
                runner.logger.warning(f'--resume: no complete checkpoint in {directory}; training starts from the '
                                      'beginning')
                runner._resume = False
            else:
                runner.logger.info(f'--resume: resuming from {found[0]}, the newest complete checkpoint')
                runner._load_from = found[0]

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Refuse a checkpoint that does not fit the model; keep the random states of a resume for later.

        Under ``FlexibleRunner`` the strategy (FSDP, DeepSpeed) loads the weights into its own wrapped model, so the
        key check is left to it.
        """
        report = {}
        if not hasattr(runner, 'strategy') and isinstance(checkpoint.get('state_dict', checkpoint), dict):
            model = runner.model.module if is_model_wrapper(runner.model) else runner.model
            state = checkpoint.get('state_dict', checkpoint)
            state = {re.sub(r'^module\.', '', k): v for k, v in state.items() if k != '_metadata'}
            report = fit_report(model.state_dict(), state)
        if any(report.values()):
            message = format_fit_report(runner._load_from or '<checkpoint>', report, PARTIAL_OPT_IN)
            if not runner.cfg.get('allow_partial_load', False):
                raise CheckpointMismatchError(message)
            runner.logger.warning(f'partial load (allow_partial_load=True): {message}')
        if runner._resume:
            self._pending_rng = checkpoint.get('rng_state')
            if self._pending_rng is None:
                runner.logger.warning('the checkpoint holds no random states (written without SafeCheckpointHook); '
                                      'the resumed run draws other random numbers than an uninterrupted one')

    def before_train(self, runner) -> None:
        super().before_train(runner)
        if is_main_process() and osp.isdir(self.out_dir):
            for name in os.listdir(self.out_dir):
                if name.endswith(PARTIAL_SUFFIX):
                    runner.logger.warning(f'removing {osp.join(self.out_dir, name)}, left by an interrupted save')
                    remove_path(osp.join(self.out_dir, name))
        if self._pending_rng is None:
            return
        loop = runner.train_loop
        if getattr(loop, 'dataloader_iterator', None) is not None and loop.iter > 0:
            # IterBasedTrainLoop fast-forwards its loader by ``iter`` batches after this hook; the states are set
            # once that is done, right before the first new batch.
            loop.dataloader_iterator = _RestoreAfter(loop.dataloader_iterator, loop.iter,
                                                     lambda: self._restore_rng(runner))
        else:
            self._restore_rng(runner)

    def _restore_rng(self, runner) -> None:
        saved, self._pending_rng = self._pending_rng, None
        ranks = saved['ranks']
        if len(ranks) != get_world_size():
            runner.logger.warning(f'the checkpoint holds random states of {len(ranks)} ranks, this run has '
                                  f'{get_world_size()}; random states are not restored')
            return
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        restore_rng_state(ranks[get_rank()], model)
        runner.logger.info('restored the random states of the interrupted run')

    # ------------------------------------------------------------------ saving
    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if self._rng_states is not None:
            checkpoint['rng_state'] = dict(ranks=self._rng_states)

    def _save_checkpoint_with_step(self, runner, step, meta) -> None:
        if not isinstance(self.file_backend, LocalBackend):
            super()._save_checkpoint_with_step(runner, step, meta)
            return
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        self._rng_states = all_gather_object(capture_rng_state(model))
        outdated = []
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step):
            while len(self.keep_ckpt_ids) >= self.max_keep_ckpts:
                outdated.append(self.keep_ckpt_ids.popleft())
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))
        name = self.filename_tmpl.format(step)
        final = osp.join(self.out_dir, name)
        self.last_ckpt = final
        runner.message_hub.update_info('last_ckpt', final)
        partial = final + PARTIAL_SUFFIX
        if is_main_process():
            remove_path(partial)
        try:
            runner.save_checkpoint(self.out_dir, name + PARTIAL_SUFFIX, self.file_client_args,
                                   save_optimizer=self.save_optimizer, save_param_scheduler=self.save_param_scheduler,
                                   meta=meta, by_epoch=self.by_epoch, backend_args=self.backend_args, **self.args)
            barrier()  # sharded strategies write from every rank
            if is_main_process():
                fsync_path(partial)
                if osp.isdir(final):
                    remove_path(final)
                os.replace(partial, final)
                fsync_dir(self.out_dir)
                write_text_atomic(osp.join(runner.work_dir, 'last_checkpoint'), final)
        except OSError as err:
            self._rng_states = None
            remove_path(partial)  # never leave a partial file filling the disk
            raise OSError(err.errno, f'cannot write checkpoint {final} ({err.strerror or err}; '
                          f'{free_space(self.out_dir)} in {self.out_dir}); the partial file was removed and the '
                          'previous checkpoints are intact: free some space and resume with --resume') from err
        if is_main_process():
            for old in outdated:
                old_path = osp.join(self.out_dir, self.filename_tmpl.format(old))
                if old_path != final:
                    remove_path(old_path)
        self._rng_states = None


def install_safe_loading(runner) -> None:
    """Load the runner's checkpoints safely, whichever checkpoint hook its config uses.

    ``runner.load_checkpoint`` (``load_from``, ``tools/test.py``) and ``runner.resume`` (``--resume``; under
    ``FlexibleRunner`` its strategy loads the file itself) are wrapped, on this runner only, in
    :func:`ivnext.utils.checkpoint.checkpoint_load_scope`: weights-only with the allow-list of MMEngine's
    checkpoint types, or, with the config field ``trust_checkpoint = True`` (``--trust-checkpoint``), unpickled in
    full. A file refused by the weights-only load raises :class:`UntrustedCheckpointError` naming the file and the
    opt-in. MMEngine's loader for everyone else in the process stays as it is. Runs once per runner.
    """
    if getattr(runner, '_ivnext_safe_loading', False):
        return
    runner._ivnext_safe_loading = True
    trusted = bool(runner.cfg.get('trust_checkpoint', False))

    def in_load_scope(load: Callable) -> Callable:
        def load_safely(filename: str, *args, **kwargs):
            with checkpoint_load_scope(trusted):
                try:
                    return load(filename, *args, **kwargs)
                except UntrustedCheckpointError:
                    raise
                except pickle.UnpicklingError as err:
                    if trusted:
                        raise CorruptCheckpointError(corrupt_message(filename, err)) from err
                    raise refuse_or_report(filename, err, TRUST_OPT_IN) from None
                except (MemoryError, EOFError, zipfile.BadZipFile) as err:
                    raise CorruptCheckpointError(corrupt_message(filename, err)) from err
                except RuntimeError as err:
                    if isinstance(err, CorruptCheckpointError) or 'PytorchStreamReader' not in str(err):
                        raise
                    raise CorruptCheckpointError(corrupt_message(filename, err)) from err

        return load_safely

    runner.load_checkpoint = in_load_scope(runner.load_checkpoint)
    runner.resume = in_load_scope(runner.resume)


def prepare_runner_loading(runner) -> None:
    """Make a runner built by ivnext's tools load safely before it loads anything.

    :func:`install_safe_loading` applies to every runner (a config with MMEngine's own ``CheckpointHook`` too);
    a ``SafeCheckpointHook`` also picks the checkpoint ``--resume`` continues from
    (:meth:`SafeCheckpointHook.prepare_loading`).
    """
    install_safe_loading(runner)
    for hook in runner.hooks:
        if isinstance(hook, SafeCheckpointHook):
            hook.prepare_loading(runner)


class _RestoreAfter:
    """Iterator wrapper: after ``count`` items, call ``restore`` once, then pass items through."""

    def __init__(self, iterator, count: int, restore: Callable[[], None]) -> None:
        self._iterator = iterator
        self._left = count
        self._restore = restore

    def __iter__(self):
        return self

    def __next__(self):
        if self._left == 0 and self._restore is not None:
            self._restore()
            self._restore = None
        item = next(self._iterator)
        self._left -= 1
        return item

    def __getattr__(self, name: str):
        return getattr(self._iterator, name)
