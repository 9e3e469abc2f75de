"""`dro-depth train`: read a training YAML, pick its recipe by ``model:`` and run it.

    dro-depth train --config dro_depth/configs/default_model.yaml --out runs/default [--steps N] [--resume]
    dro-depth train --config dro_depth/configs/metric_default.yaml --out runs/metric   # light metric model

``model: dro`` (the default) trains DRO (:mod:`dro_depth.training.dro`), ``model: metric`` the light metric
model (:mod:`dro_depth.training.metric`). Recipes never import each other: this table is the only place that
knows them all. Command-line flags override a few fields of the config.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib
import sys
from typing import List, Optional

import yaml

from dro_depth.errors import ConfigError, DroDepthError

__all__ = ['RECIPES', 'main']

# model name -> (module, config class, train function)
RECIPES = {
    'dro': ('dro_depth.training.dro', 'TrainConfig', 'train'),
    'metric': ('dro_depth.training.metric', 'MetricTrainConfig', 'train_metric'),
    'stereo': ('dro_depth.training.stereo', 'StereoTrainConfig', 'train_stereo'),
    'mono': ('dro_depth.training.mono', 'MonoTrainConfig', 'train_mono'),
}


def load_recipe(raw: dict):
    """``(config, train_fn)`` for a parsed training YAML; the config is validated by the recipe's run."""
    model = raw.get('model', 'dro')
    if model not in RECIPES:
        raise DroDepthError(f"unknown training model {model!r}; expected one of {sorted(RECIPES)}")
    module_name, cfg_name, fn_name = RECIPES[model]
    module = importlib.import_module(module_name)
    cfg_cls = getattr(module, cfg_name)
    fields = {f.name for f in dataclasses.fields(cfg_cls)}
    if 'model' not in fields:
        raw = {k: v for k, v in raw.items() if k != 'model'}
    return cfg_cls.from_dict(raw), getattr(module, fn_name)


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of `dro-depth train`; returns the process exit code."""
    parser = argparse.ArgumentParser(prog='dro-depth train', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--config', required=True, help='training YAML (see dro_depth/configs/)')
    parser.add_argument('--out', required=True, help='output folder (created; reused with --resume)')
    parser.add_argument('--resume', action='store_true', help='continue from OUT/last.*')
    parser.add_argument('--steps', type=int, help='override steps')
    parser.add_argument('--device', help='override device (auto, cpu, cuda, cuda:1, ...)')
    parser.add_argument('--no-progress', action='store_true')
    args = parser.parse_args(argv)
    with open(args.config) as f:
        raw = yaml.safe_load(f) or {}
    if not isinstance(raw, dict):
        raise ConfigError(f'{args.config}: a training config is a YAML mapping, got {type(raw).__name__}')
    try:
        cfg, run = load_recipe(raw)
        overrides = {k: v for k, v in (('steps', args.steps), ('device', args.device)) if v}
        cfg = dataclasses.replace(cfg, **overrides)
        if hasattr(cfg, 'validate'):
            cfg.validate()
    except DroDepthError:
        raise
    except (ValueError, TypeError) as exc:      # the recipes' config checks: a bad config, not a bug
        raise ConfigError(f'{args.config}: {exc}') from exc
    final = run(cfg, args.out, resume=args.resume, progress=not args.no_progress)
    print(f'final model: {final}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
