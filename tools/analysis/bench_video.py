"""Benchmarks of video input: windowed extraction vs video length, and decoding speed per backend.

``extract``: for generated videos of several lengths, runs :func:`ivnext.api.extract_videos` (sliding windows,
``--batch-size`` windows per forward) in a fresh process per length and reports windows, clips/s and the
process's peak resident memory. ``--batch-size 0`` encodes all windows of a video in one forward pass (the
previous tool's behaviour) for comparison.

``decode``: for each backend, decode + sample clips (``--clip-len`` frames every ``--frame-interval`` frames at
random starts, one decoder thread) from the same generated files; reports clips/s per core.

Examples::

    python tools/analysis/bench_video.py extract --lengths 15 60 240
    python tools/analysis/bench_video.py decode --backends decord pyav torchcodec
"""
import argparse
import json
import os
import os.path as osp
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np


# A small encoder (width 192, 6 blocks) so that CPU runs finish; the decode/preprocess/memory path is the
# same as for ViT-B.
ENCODER = dict(arch=dict(embed_dims=192, num_layers=6, num_heads=3, mlp_ratio=4.0), img_size=112, patch_size=14,
               num_frames=8, with_clip_projector=True, clip_embed_dims=192, clip_num_heads=3, use_flash_attn=False)


def write_video(path: str, seconds: float, fps: int = 25, width: int = 320, height: int = 240, seed: int = 0,
                gop: int = 50) -> str:
    """An H.264 video of moving noise blocks (cheap to generate, not trivially compressible)."""
    import av
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, size=(height // 8, width // 8, 3), dtype=np.uint8)
    with av.open(path, mode='w') as container:
        stream = container.add_stream('libx264', rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, 'yuv420p'
        stream.options = {'preset': 'ultrafast', 'g': str(gop), 'crf': '23'}
        for i in range(int(seconds * fps)):
            small = np.roll(base, i, axis=1)
            frame = np.kron(small, np.ones((8, 8, 1), dtype=np.uint8))
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format='rgb24')):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def extract_child(video: str, out_dir: str, batch_size: int, stride: float, threads: int) -> dict:
    """One extraction run (in its own process, so the peak memory is its own)."""
    import torch
    torch.set_num_threads(threads)
    from ivnext.api import Preprocessing, VideoEncoder, extract_videos
    torch.manual_seed(0)
    encoder = VideoEncoder(ENCODER, Preprocessing(num_frames=8, fps=4.0, resize=128, crop=112))
    before = peak_rss_mib()
    if batch_size == 0:
        from ivnext.video import open_video
        with open_video(video) as reader:
            batch_size = len(encoder.plan(reader, stride, 'seconds'))
    start = time.perf_counter()
    summary = extract_videos(encoder, [video], out_dir, stride=stride, stride_unit='seconds', batch_size=batch_size,
                             resume=False, progress=False)
    seconds = time.perf_counter() - start
    return dict(windows=summary.windows, seconds=seconds, clips_per_s=summary.windows / seconds,
                peak_rss_mib=peak_rss_mib(), rss_before_mib=before, batch_size=batch_size,
                bad=len(summary.bad))


def run_extract(args) -> list:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for length in args.lengths:
            video = write_video(osp.join(tmp, f'v{length}.mp4'), length)
            for batch in args.batch_sizes:
                cmd = [sys.executable, __file__, 'extract-child', video, osp.join(tmp, f'out{length}_{batch}'),
                       '--batch-size', str(batch), '--stride', str(args.stride), '--threads', str(args.threads)]
                out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
                row = dict(length_s=length, **json.loads(out.strip().splitlines()[-1]))
                rows.append(row)
                print(f"{length:>6} s  batch {row['batch_size']:>4}  {row['windows']:>4} windows  "
                      f"{row['clips_per_s']:7.2f} clips/s  peak RSS {row['peak_rss_mib']:7.0f} MiB "
                      f"(after model build {row['rss_before_mib']:.0f})", flush=True)
    return rows


def run_decode(args) -> list:
    from ivnext.video import open_video
    rows = []
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        files = [write_video(osp.join(tmp, f'd{i}.mp4'), args.seconds, seed=i) for i in range(args.files)]
        span = (args.clip_len - 1) * args.frame_interval + 1
        for backend in args.backends:
            try:
                readers = [open_video(f, backend, fallback=False, num_threads=1) for f in files]
            except Exception as err:  # noqa: BLE001 - reported as a row
                rows.append(dict(backend=backend, error=str(err).split(f'{backend}: ')[-1].strip()[:160]))
                print(f'{backend:>10}: unavailable ({rows[-1]["error"]})', flush=True)
                continue
            start = time.perf_counter()
            for i in range(args.clips):
                reader = readers[i % len(readers)]
                first = int(rng.integers(0, reader.num_frames - span))
                frames = reader.get_frames(first + np.arange(args.clip_len) * args.frame_interval)
                assert frames.shape[0] == args.clip_len
            seconds = time.perf_counter() - start
            rows.append(dict(backend=backend, clips=args.clips, seconds=seconds, clips_per_s=args.clips / seconds))
            print(f'{backend:>10}: {args.clips / seconds:7.2f} clips/s per core ({args.clip_len} frames every '
                  f'{args.frame_interval}, 320x240 H.264)', flush=True)
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest='command', required=True)
    ext = sub.add_parser('extract', help='extraction clips/s and peak memory vs video length')
    ext.add_argument('--lengths', type=float, nargs='+', default=[15, 60, 240], help='video lengths (s)')
    ext.add_argument('--batch-sizes', type=int, nargs='+', default=[8, 0], help='windows per forward (0: all)')
    ext.add_argument('--stride', type=float, default=1.0, help='window stride (s)')
    ext.add_argument('--threads', type=int, default=2)
    child = sub.add_parser('extract-child')
    child.add_argument('video')
    child.add_argument('out_dir')
    child.add_argument('--batch-size', type=int, default=8)
    child.add_argument('--stride', type=float, default=1.0)
    child.add_argument('--threads', type=int, default=2)
    dec = sub.add_parser('decode', help='decode + sample clips/s per core per backend')
    dec.add_argument('--backends', nargs='+', default=['decord', 'pyav', 'torchcodec'])
    dec.add_argument('--files', type=int, default=3)
    dec.add_argument('--seconds', type=float, default=20)
    dec.add_argument('--clips', type=int, default=60)
    dec.add_argument('--clip-len', type=int, default=16)
    dec.add_argument('--frame-interval', type=int, default=4)
    parser.add_argument('--out', default=None, help='also write the rows as JSON')
    args = parser.parse_args(argv)
    if args.command == 'extract-child':
        print(json.dumps(extract_child(args.video, args.out_dir, args.batch_size, args.stride, args.threads)))
        return
    rows = run_extract(args) if args.command == 'extract' else run_decode(args)
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(rows, f, indent=1)


if __name__ == '__main__':
    main()
