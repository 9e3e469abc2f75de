"""Configurations of the released Depth Anything V2 models (relative and metric)."""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from dro_depth.errors import DroDepthError

__all__ = ['DepthAnythingConfig', 'ENCODERS', 'released_config']

#: Encoder presets of the released checkpoints: embed dim, heads, depth, DPT features, reassemble channels,
#: hooked blocks (0-based).
ENCODERS: dict[str, dict] = {
    'vits': dict(embed_dim=384, num_heads=6, depth=12, features=64, out_channels=(48, 96, 192, 384),
                 hooks=(2, 5, 8, 11)),
    'vitb': dict(embed_dim=768, num_heads=12, depth=12, features=128, out_channels=(96, 192, 384, 768),
                 hooks=(2, 5, 8, 11)),
    'vitl': dict(embed_dim=1024, num_heads=16, depth=24, features=256, out_channels=(256, 512, 1024, 1024),
                 hooks=(4, 11, 17, 23)),
}


@dataclass(frozen=True)
class DepthAnythingConfig:
    """Architecture of one Depth Anything V2 model.

    Attributes:
        encoder: ``'vits'``, ``'vitb'`` or ``'vitl'`` (names the preset; fields may deviate from it).
        embed_dim / num_heads / depth / mlp_ratio: DINOv2 ViT/14 size.
        hooks: 0-based indices of the blocks whose (normed) outputs feed the DPT head, 4 of them.
        features / out_channels: DPT fusion width and the 4 reassemble widths.
        metric: sigmoid x ``max_depth`` metres output instead of ReLU relative inverse depth.
        max_depth: metres of a sigmoid output of 1 (20 Hypersim indoor, 80 Virtual KITTI outdoor).
        img_size / patch_size: the 518 px, 37x37-patch grid of the stored position embedding.
    """

    encoder: str = 'vits'
    embed_dim: int = 384
    num_heads: int = 6
    depth: int = 12
    mlp_ratio: float = 4.0
    hooks: tuple[int, ...] = (2, 5, 8, 11)
    features: int = 64
    out_channels: tuple[int, ...] = (48, 96, 192, 384)
    metric: bool = False
    max_depth: float = 20.0
    img_size: int = 518
    patch_size: int = 14
    layernorm_eps: float = 1e-6
    interpolate_offset: float = 0.1
    head_features_2: int = field(default=32)

    @property
    def grid(self) -> int:
        """Side of the stored position-embedding grid (37)."""
        return self.img_size // self.patch_size

    def validate(self) -> 'DepthAnythingConfig':
        """Raise :class:`DroDepthError` for an impossible architecture; return self."""
        if len(self.hooks) != 4 or len(self.out_channels) != 4:
            raise DroDepthError(f'Depth Anything needs 4 hooked blocks and 4 out_channels, got hooks='
                                f'{self.hooks}, out_channels={self.out_channels}')
        if any(not 0 <= h < self.depth for h in self.hooks):
            raise DroDepthError(f'hooked blocks {self.hooks} must lie in [0, depth={self.depth})')
        if self.embed_dim % self.num_heads:
            raise DroDepthError(f'embed_dim {self.embed_dim} not divisible by num_heads {self.num_heads}')
        if self.metric and not self.max_depth > 0:
            raise DroDepthError(f'metric max_depth must be > 0 metres, got {self.max_depth}')
        return self


def released_config(encoder: str = 'vits', *, metric: bool = False, max_depth: float = 20.0,
                    depth: int | None = None, hooks: tuple[int, ...] | list[int] | None = None
                    ) -> DepthAnythingConfig:
    """The released configuration of ``encoder``, with optional block count / hook overrides.

    Raises:
        DroDepthError: unknown encoder, or overrides that do not fit (hooks beyond ``depth``).
    """
    if encoder not in ENCODERS:
        raise DroDepthError(f'unknown Depth Anything encoder {encoder!r}; expected one of '
                            f'{", ".join(ENCODERS)} (vitg is not supported)')
    preset = dict(ENCODERS[encoder])
    cfg = DepthAnythingConfig(encoder=encoder, metric=bool(metric), max_depth=float(max_depth), **preset)
    if depth is not None:
        cfg = replace(cfg, depth=int(depth))
    if hooks is not None:
        cfg = replace(cfg, hooks=tuple(int(h) for h in hooks))
    return cfg.validate()
