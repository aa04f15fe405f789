"""An annotation list built from a folder of videos, every file checked on the way.

Every video under ``root`` is opened and its first and last frames decoded (in parallel processes); the readable
ones go to the list, the others to a report of bad files. Lines are relative to ``root`` (use
``data_prefix=dict(video=root)`` in the dataset config):

* unlabelled (pretraining): one ``relative/path.mp4`` per line;
* ``labels_from_folders`` (probing / fine-tuning): ``class_name/clip.mp4 LABEL`` with LABEL the index of the first
  sub-folder name in sorted order; the names are written to ``<list>.classes.txt``, one per line in label order.

Also written: ``<list>.files.csv`` (:data:`FIELDS`) and ``<list>.bad.txt`` (path <TAB> error). The library side of
``tools/data/build_video_list.py``.
"""
import csv
import os
import os.path as osp
from concurrent.futures import ProcessPoolExecutor
from typing import Dict, List, Optional, Sequence

FIELDS = ('path', 'frames', 'fps', 'duration', 'width', 'height', 'codec', 'backend', 'error')


def check_video(path: str, backend: str = 'auto', min_frames: int = 1) -> Dict:
    """Open ``path``, decode its first and last frames and report what it holds.

    Returns:
        dict: the :data:`FIELDS`; ``error`` is '' for a usable file.
    """
    from ivnext.video import open_video
    row = dict(path=path, frames=0, fps=0.0, duration=0.0, width=0, height=0, codec='', backend='', error='')
    try:
        import av
        with av.open(path) as container:
            if container.streams.video:
                row['codec'] = container.streams.video[0].codec_context.name
        with open_video(path, backend) as reader:
            row.update(frames=reader.num_frames, fps=round(reader.fps, 4), duration=round(reader.duration, 4),
                       backend=reader.backend)
            frames = reader.get_frames([0, reader.num_frames - 1])
            row.update(height=int(frames.shape[1]), width=int(frames.shape[2]))
        if row['frames'] < min_frames:
            row['error'] = f"{row['frames']} frames, fewer than --min-frames {min_frames}"
    except Exception as err:  # noqa: BLE001 - every failure is reported, none stops the scan
        row['error'] = f'{type(err).__name__}: {str(err).strip()[:500]}'
    return row


def find_videos(root: str, extensions: Sequence[str]) -> List[str]:
    """Relative paths of the videos under ``root``, sorted."""
    found = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        found += [osp.relpath(osp.join(folder, f), root) for f in files if f.lower().endswith(tuple(extensions))]
    return sorted(found)


def build_list(root: str, out: str, labels_from_folders: bool = False, workers: Optional[int] = None,
               backend: str = 'auto', min_frames: int = 1, extensions: Optional[Sequence[str]] = None) -> Dict:
    """Check every video under ``root`` and write the list, the per-file CSV and the bad-file report.

    Returns:
        dict: ``good`` / ``bad`` relative paths, ``classes`` (with labels) and the written ``files``.
    """
    from ivnext.api.extraction import VIDEO_EXTENSIONS
    if not osp.isdir(root):
        raise FileNotFoundError(f'video folder {root} does not exist')
    rel_paths = find_videos(root, extensions or VIDEO_EXTENSIONS)
    if not rel_paths:
        raise FileNotFoundError(f'no videos ({", ".join(extensions or VIDEO_EXTENSIONS)}) under {root}')
    classes: List[str] = []
    if labels_from_folders:
        top_level = [p for p in rel_paths if os.sep not in p]
        if top_level:
            raise ValueError(f'--labels-from-folders needs every video inside a class sub-folder of {root}; '
                             f'{top_level[:3]} are not')
        classes = sorted({p.split(os.sep)[0] for p in rel_paths})
    paths = [osp.join(root, p) for p in rel_paths]
    workers = workers or min(8, os.cpu_count() or 1)
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            rows = list(pool.map(check_video, paths, [backend] * len(paths), [min_frames] * len(paths),
                                 chunksize=4))
    else:
        rows = [check_video(p, backend, min_frames) for p in paths]
    for row, rel in zip(rows, rel_paths):
        row['path'] = rel
    good = [r['path'] for r in rows if not r['error']]
    bad = [(r['path'], r['error']) for r in rows if r['error']]
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    stem = osp.splitext(out)[0]
    written = [out, f'{stem}.files.csv', f'{stem}.bad.txt']
    with open(out, 'w') as f:
        for rel in good:
            line = rel.replace(os.sep, '/')
            if labels_from_folders:
                line += f' {classes.index(rel.split(os.sep)[0])}'
            f.write(line + '\n')
    with open(written[1], 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    with open(written[2], 'w') as f:
        f.writelines(f'{path}\t{error}\n' for path, error in bad)
    if labels_from_folders:
        written.append(f'{stem}.classes.txt')
        with open(written[-1], 'w') as f:
            f.writelines(f'{name}\n' for name in classes)
    return dict(good=good, bad=bad, classes=classes, files=written)
