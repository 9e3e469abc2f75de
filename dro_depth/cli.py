"""`dro-depth` command line: train, eval, bench, demo, synth.

    dro-depth train --config dro_depth/configs/default_model.yaml --out runs/default
    dro-depth eval --bag PATH --image-topic /camera/image --camera-info-topic /camera/camera_info --out DIR
    dro-depth synth --out data/seq --kind indoor --seed 3 --frames 60 --storage mcap
    dro-depth bench
    dro-depth bench-metric
    dro-depth eval-metric --checkpoint runs/metric/final.safetensors
    dro-depth demo
    dro-depth export --model dro --format openvino --size 96x128 --refs 2 --iterations 4 --out dro

Each subcommand lives in its own module; this file only dispatches.
"""
from __future__ import annotations

import importlib
import logging
import sys
from typing import List, Optional

COMMANDS = {
    'train': ('dro_depth.training.command',
              'Train DRO (supervised or self-supervised) on synthetic scenes, bags or folders'),
    'eval': ('dro_depth.evaluation.bag_eval', 'Run the estimator over a ROS 2 bag and report depth/pose metrics'),
    'synth': ('dro_depth.data.synth_cli', 'Generate synthetic sequences as ROS 2 bags or folders'),
    'bench': ('dro_depth.bench.dro', 'Latency table of the network stages'),
    'bench-metric': ('dro_depth.bench.metric', 'Latency (and reduced-precision error) of the metric models'),
    'eval-metric': ('dro_depth.evaluation.metric_heldout', 'Held-out accuracy of a light metric model on synthetic scenes'),
    'eval-stereo': ('dro_depth.evaluation.stereo_bag_eval',
                    'Stereo disparity accuracy and latency on a bag with GT depth, or on Middlebury Motorcycle'),
    'demo': ('dro_depth.demo', 'The ROS demo on the embedded default sequence'),
    'pseudo-label': ('dro_depth.mono.pseudo_label_command',
                     "Write a teacher's inverse-depth labels for unlabeled bags/folders (for model: mono)"),
    'export': ('dro_depth.backends.export_command',
               'Write an ONNX / OpenVINO / TensorRT artefact of DRO or the metric model (+ JSON of its inputs)'),
}


def usage() -> str:
    lines = ['usage: dro-depth <command> [options]', '', 'commands:']
    lines += [f'  {name:<12} {help_}' for name, (_, help_) in COMMANDS.items()]
    lines += ['', "Run 'dro-depth <command> --help' for a command's options."]
    return '\n'.join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ('-h', '--help'):
        print(usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"dro-depth: unknown command '{name}'\n\n{usage()}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format='%(levelname)s %(name)s: %(message)s')
    module = importlib.import_module(COMMANDS[name][0])
    try:
        return int(module.main(rest) or 0)
    except user_errors() as exc:          # bad config, path or input: one clear line, exit code 2
        print(f'dro-depth {name}: error: {one_line(exc)}', file=sys.stderr)
        return 2


def user_errors() -> tuple:
    """What a user's config, paths or data can cause; anything else is a bug and keeps its traceback."""
    import yaml

    from dro_depth.errors import DroDepthError
    return (DroDepthError, FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError,
            PermissionError, yaml.YAMLError)


def one_line(exc: BaseException) -> str:
    """The exception's message on one line (the type is named when it is not a package error)."""
    from dro_depth.errors import DroDepthError
    text = ' '.join(str(exc).split())
    return text if isinstance(exc, DroDepthError) else f'{type(exc).__name__}: {text}'


if __name__ == '__main__':
    raise SystemExit(main())
