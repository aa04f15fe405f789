"""The demo's report: the accuracy table (made by the leaderboard code), what each stage bought, the Stage-1
decoder's reconstruction error and the wall and CPU time of every step; and the log that tees the terminal."""
from typing import Dict, List, Sequence, TextIO

from ivnext.evaluation.leaderboard import render_markdown, render_pivot

# (label, encoder a, encoder b): the points a buys over b.
BOUGHT = (
    ('Stage 1 over random init', 'stage1', 'random'),
    ('pixel-only over random init', 'pixel_linear', 'random'),
    ('Stage 2 over random init', 'stage2', 'random'),
    ('Stage 1 over pixel-only linear decoder (prior + diffusion decoder)', 'stage1', 'pixel_linear'),
    ('Stage 2 over Stage 1', 'stage2', 'stage1'),
)


class Tee:
    """Write to the terminal and to a log file."""

    def __init__(self, stream: TextIO, path: str):
        self.stream = stream
        self.file = open(path, 'a', buffering=1)

    def write(self, text: str) -> int:
        self.file.write(text)
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()
        self.file.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()


def reported(row: Dict) -> float:
    """The measured top-1 of a row on its reported split."""
    m = row['measured']
    return m['test_top1'] if m['reported_split'] == 'test' else m['val_top1']


def make_table(rows: Sequence[Dict], classes: Dict[str, List[str]], times: Dict[str, dict], meta: dict,
               sections: Sequence[str] = ()) -> str:
    """The demo's Markdown report.

    Args:
        rows: Leaderboard rows (encoder x task).
        classes: ``{task: class names}``: chance is one over their count.
        times: ``{step: dict(seconds=wall, cpu_seconds=cpu, reused=bool)}``.
        meta: ``counts`` (clips per split), ``frames``, ``size``, ``steps`` ({stage: (iters, batch, seconds)}),
            ``recon`` (MSE dict or None).
        sections: Further Markdown paragraphs (added by further steps).
    """
    tasks = list(dict.fromkeys(r['task'] for r in rows))
    chance = ['chance'] + [f'{100 / len(classes[t]):.1f}' for t in tasks] + ['']
    lines = [render_pivot(rows, [chance])]
    by = {(r['encoder'], r['task']): r for r in rows}
    lines += ['| what each stage bought (points) | ' + ' | '.join(tasks) + ' |', '|---' * (len(tasks) + 1) + '|']
    for label, a, b in BOUGHT:
        if all((e, t) in by for e in (a, b) for t in tasks):
            lines.append(f'| {label} | ' + ' | '.join(
                f'{100 * (reported(by[a, t]) - reported(by[b, t])):+.1f}' for t in tasks) + ' |')
    lines += ['', 'Every number, with its protocol:', '', render_markdown(rows)]
    recon = meta.get('recon')
    if recon:
        lines.append(f'Stage-1 diffusion decoder, masked-patch MSE on {recon["clips"]} val clips (normalised pixels): '
                     f'{recon["mse"]:.3f} with deterministic DDIM sampling, {recon["mse_ddpm"]:.3f} with the '
                     f'release\'s ancestral DDPM sampling; filling masked patches with the mean visible patch: '
                     f'{recon["baseline_mse"]:.3f}.\n')
    steps = '; '.join(f'{k} {it} steps x {bs} clips, {1000 * sec / max(1, it):.0f} ms/step'
                      for k, (it, bs, sec) in meta['steps'].items())
    counts = meta['counts']
    lines += [f'{" / ".join(f"{counts[s]} {s}" for s in ("train", "val", "test") if counts.get(s))} clips, '
              f'{meta["frames"]} frames x {meta["size"]} px seen by the models. Pretraining: {steps}.', '']
    lines += list(sections)
    lines += ['| step | wall (s) | CPU (s) |', '|---|---|---|']
    for step, t in times.items():
        note = ' (reused)' if t.get('reused') else ''
        cpu = f'{t["cpu_seconds"]:.0f}' if t.get('cpu_seconds') is not None else ''
        lines.append(f'| {step}{note} | {t["seconds"]:.0f} | {cpu} |')
    return '\n'.join(lines) + '\n'


__all__ = ('BOUGHT', 'Tee', 'make_table', 'reported')
