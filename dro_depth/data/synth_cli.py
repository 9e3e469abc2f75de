"""`dro-depth synth`: render synthetic sequences into ROS 2 bags or plain folders.

    dro-depth synth --out data/room3 --kind indoor --seed 3 --frames 60 --storage mcap
    dro-depth synth --out data/street --kind outdoor --format folder --depth-format png
    dro-depth synth --out data/stereo --stereo 0.12 --frames 30

Mono bags hold /image, /camera_info, /depth (32FC1, NaN = sky) and /pose (PoseStamped of the optical
frame in odom). Stereo bags hold /left/... and /right/... with the same topics; the right camera_info
carries the ROS stereo convention ``P[0, 3] = -fx * baseline`` (``dro-depth eval-stereo --bag`` reads
such a bag). Folders: see :mod:`dro_depth.data.folders` (stereo: ``<out>/left`` and ``<out>/right``).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from .bag_writer import STORAGES, write_sequence_bag, write_stereo_bag
from .folders import DEPTH_FORMATS, write_folder
from .scenes import SCENE_KINDS
from .synthetic import generate_sequence, generate_stereo
from .trajectories import MOTIONS


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog='dro-depth synth', description=__doc__.split('\n')[0])
    p.add_argument('--out', required=True, help='output bag directory or folder')
    p.add_argument('--kind', choices=SCENE_KINDS, default='indoor')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--frames', type=int, default=60)
    p.add_argument('--height', type=int, default=240)
    p.add_argument('--width', type=int, default=320)
    p.add_argument('--fps', type=float, default=15.0)
    p.add_argument('--motion', choices=MOTIONS, default=None, help='default: handheld indoors, robot outdoors')
    p.add_argument('--hfov', type=float, default=70.0, help='horizontal field of view in degrees')
    p.add_argument('--format', choices=('bag', 'folder'), default='bag')
    p.add_argument('--storage', choices=STORAGES, default='sqlite3', help='bag storage plugin')
    p.add_argument('--depth-format', choices=DEPTH_FORMATS, default='npy', help='folder depth files')
    p.add_argument('--stereo', type=float, default=None, metavar='BASELINE',
                   help='render a rectified stereo pair with this baseline in metres')
    p.add_argument('--overwrite', action='store_true')
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = Path(args.out)
    t0 = time.perf_counter()
    kw = dict(kind=args.kind, seed=args.seed, n_frames=args.frames, height=args.height, width=args.width,
              fps=args.fps, motion=args.motion, hfov_deg=args.hfov)
    if args.stereo is None:
        seq = generate_sequence(**kw)
        if args.format == 'bag':
            write_sequence_bag(seq, out, storage=args.storage, overwrite=args.overwrite)
        else:
            write_folder(seq, out, depth_format=args.depth_format, overwrite=args.overwrite)
        n = len(seq)
    else:
        st = generate_stereo(baseline=args.stereo, **kw)
        if args.format == 'bag':
            write_stereo_bag(st, out, storage=args.storage, overwrite=args.overwrite)
        else:
            for side, seq in (('left', st.left), ('right', st.right)):
                write_folder(seq, out / side, depth_format=args.depth_format, overwrite=args.overwrite)
        n = len(st.left)
    print(f'wrote {n} {args.kind} frames ({args.width}x{args.height}, seed {args.seed}'
          f'{", stereo B=%g m" % args.stereo if args.stereo else ""}) to {out} '
          f'as {args.format if args.format == "folder" else args.storage + " bag"} '
          f'in {time.perf_counter() - t0:.1f} s')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
