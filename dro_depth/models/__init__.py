"""Networks only, weight-compatible with their releases: DRO (:mod:`.dro`), ZoeDepth (:mod:`.metric`), and
their checkpoint IO (:mod:`.checkpoints`: weights-only reading, strict key/shape checks).

Imports only torch and its own modules (plus dro_depth.errors); never sfm, metric, training, evaluation,
bench or ros.
"""
