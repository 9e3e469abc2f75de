"""Architecture settings of RAFT-Stereo (the ``args`` namespace of the official code, as a dataclass)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

__all__ = ['RaftStereoConfig', 'NS_RELEASE', 'REALTIME']


@dataclass(frozen=True)
class RaftStereoConfig:
    """RAFT-Stereo architecture arguments (names as in the official ``args``).

    The defaults are the stock RAFT-Stereo settings, which are the ones of the NeRF-Supervised release
    ``raftstereo-NS.tar`` (and of ``raftstereo-middlebury``).

    Attributes:
        hidden_dims: GRU hidden sizes, coarsest (1/32... of the feature map) first.
        n_gru_layers: number of GRU levels (1..3).
        n_downsample: the feature resolution is 1 / 2**n_downsample of the input.
        context_norm: normalisation of the context encoder: 'batch', 'instance', 'group' or 'none'.
        corr_levels: looked-up correlation pyramid levels.
        corr_radius: lookup radius in pixels at each level (2r+1 samples).
        shared_backbone: one backbone for context and matching features (the realtime variant).
        slow_fast_gru: extra updates of the coarse GRUs per iteration (the realtime variant).
        variant: label only: 'ns_release', 'realtime' or 'custom'.
    """

    hidden_dims: tuple[int, int, int] = (128, 128, 128)
    n_gru_layers: int = 3
    n_downsample: int = 2
    context_norm: str = 'batch'
    corr_levels: int = 4
    corr_radius: int = 4
    shared_backbone: bool = False
    slow_fast_gru: bool = False
    variant: str = field(default='ns_release', compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, 'hidden_dims', tuple(int(d) for d in self.hidden_dims))
        if len(self.hidden_dims) != 3:
            raise ValueError(f'hidden_dims must have 3 entries, got {self.hidden_dims}')
        if not 1 <= self.n_gru_layers <= 3:
            raise ValueError(f'n_gru_layers must be 1..3, got {self.n_gru_layers}')
        if not 0 <= self.n_downsample <= 3:
            raise ValueError(f'n_downsample must be 0..3, got {self.n_downsample}')
        if self.context_norm not in ('batch', 'instance', 'group', 'none'):
            raise ValueError(f'context_norm must be batch/instance/group/none, got {self.context_norm!r}')

    @property
    def factor(self) -> int:
        """Upsampling factor from the feature map to the input resolution."""
        return 2 ** self.n_downsample

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (round-trips through :meth:`from_dict`)."""
        d = asdict(self)
        d['hidden_dims'] = list(self.hidden_dims)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RaftStereoConfig:
        """Build from a dict; unknown keys (official runtime flags, e.g. ``mixed_precision``) are ignored."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


#: ``raftstereo-NS.tar`` (NeRF-Supervised release): the stock RAFT-Stereo defaults.
NS_RELEASE = RaftStereoConfig()
#: ``raftstereo-realtime``: shared backbone, 1/8 features, 2 GRU levels, slow-fast GRU. A fast CPU variant.
REALTIME = RaftStereoConfig(shared_backbone=True, n_downsample=3, n_gru_layers=2, slow_fast_gru=True,
                            variant='realtime')
