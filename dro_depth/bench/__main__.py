"""``python -m dro_depth.bench``: every latency benchmark in turn (DRO network and estimator, metric models,
the backend table).

Each benchmark stays runnable alone: ``python -m dro_depth.bench.dro``, ``python -m dro_depth.bench.metric``.
"""
import sys

from . import backends, dro, metric


def main(argv: list[str] | None = None) -> int:
    """Run the DRO, metric and backend benchmarks with their default sweeps; extra arguments go to none."""
    rc = dro.main([])
    rc = rc or metric.main([])
    return rc or backends.main([])


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
