"""``python -m dro_depth.bench``: every latency benchmark in turn (DRO network and estimator, metric models).

Each benchmark stays runnable alone: ``python -m dro_depth.bench.dro``, ``python -m dro_depth.bench.metric``.
"""
import sys

from . import dro, metric


def main(argv: list[str] | None = None) -> int:
    """Run the DRO then the metric benchmark with their default sweeps; extra arguments go to neither."""
    rc = dro.main([])
    return rc or metric.main([])


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
