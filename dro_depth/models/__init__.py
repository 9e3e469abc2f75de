"""Networks only, weight-compatible with their releases: DRO (:mod:`.dro`), ZoeDepth (:mod:`.metric`), and
their checkpoint IO (:mod:`.checkpoints`: weights-only reading, strict key/shape checks).

Imports torch and geometry-free helpers of its own; never sfm, metric, training, evaluation, bench or ros.
"""
