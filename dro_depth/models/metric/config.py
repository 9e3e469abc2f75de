"""Configuration dataclasses for the ZoeDepth metric models.

The defaults are the values in force in the released checkpoints (ZoeD_M12_N / _K / _NK, MiDaS
DPT_BEiT_L_384 core). The reduced configurations only change widths and depths, never the maths.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Optional, Tuple

#: Global domain indices used by the router and every ``route_index``: 0 = indoor (NYU), 1 = outdoor (KITTI).
DOMAIN_NAMES: Tuple[str, str] = ('nyu', 'kitti')
DOMAIN_ALIASES = {
    'nyu': 'nyu', 'indoor': 'nyu', 'n': 'nyu',
    'kitti': 'kitti', 'outdoor': 'kitti', 'k': 'kitti',
}


def canonical_domain(domain: object) -> Optional[str]:
    """Map a user domain spec to ``'nyu'``, ``'kitti'`` or ``None`` (automatic).

    Accepts ``None``/``'auto'``, ``'indoor'``/``'nyu'``/``'N'``, ``'outdoor'``/``'kitti'``/``'K'`` and the
    integer indices 0/1 (bool excluded).
    """
    if domain is None:
        return None
    if isinstance(domain, str):
        key = domain.strip().lower()
        if key == 'auto':
            return None
        if key in DOMAIN_ALIASES:
            return DOMAIN_ALIASES[key]
        raise ValueError(f"unknown domain {domain!r}: use 'indoor'/'nyu', 'outdoor'/'kitti', 'auto' or None")
    if isinstance(domain, int) and not isinstance(domain, bool):
        if domain in (0, 1):
            return DOMAIN_NAMES[domain]
        raise ValueError(f'domain index must be 0 (nyu) or 1 (kitti), got {domain}')
    raise TypeError(f'domain must be a str, an int or None, got {type(domain).__name__}')


@dataclass(frozen=True)
class BeitDPTConfig:
    """MiDaS DPT with a BEiT backbone (``DPT_BEiT_L_384``); defaults are the full-size values.

    Attributes:
        img_size: pretraining resolution; sets the stored relative-position window (img_size // patch_size).
        hooks: block indices whose outputs feed the four reassemble stages.
        reassemble_channels: channels after each reassemble 1x1 conv (strides 4, 8, 16, 32).
        features: decoder width (``layer*_rn``, refinenets, r1..r4, l4_rn).
        head_features_2: width of ``out_conv`` (ZoeDepth's N_MIDAS_OUT = 32).
    """
    img_size: int = 384
    patch_size: int = 16
    in_chans: int = 3
    embed_dim: int = 1024
    depth: int = 24
    num_heads: int = 16
    mlp_ratio: float = 4.0
    layer_norm_eps: float = 1e-6
    layer_scale_init: float = 1e-5
    num_classes: int = 1000
    hooks: Tuple[int, int, int, int] = (5, 11, 17, 23)
    reassemble_channels: Tuple[int, int, int, int] = (256, 512, 1024, 1024)
    features: int = 256
    head_features_2: int = 32
    non_negative: bool = True

    def __post_init__(self) -> None:
        if self.embed_dim % self.num_heads:
            raise ValueError(f'embed_dim {self.embed_dim} is not divisible by num_heads {self.num_heads}')
        if len(self.hooks) != 4 or any(not 0 <= h < self.depth for h in self.hooks):
            raise ValueError(f'hooks must be 4 block indices in [0, {self.depth}), got {self.hooks}')
        if len(self.reassemble_channels) != 4:
            raise ValueError('reassemble_channels must have 4 entries')
        if self.features % 2:
            raise ValueError('features must be even (the head halves it)')

    @property
    def window(self) -> int:
        """Side of the pretrained relative-position window (24 for 384/16)."""
        return self.img_size // self.patch_size

    @staticmethod
    def evenly_spaced_hooks(depth: int) -> Tuple[int, int, int, int]:
        """MiDaS hook rule: the last block of each quarter (24 -> 5, 11, 17, 23; 4 -> 0, 1, 2, 3)."""
        return tuple((i + 1) * depth // 4 - 1 for i in range(4))  # type: ignore[return-value]

    @classmethod
    def mini(cls) -> 'BeitDPTConfig':
        """The reduced configuration of the ``beit_core_mini.pt`` reference."""
        return cls(embed_dim=64, depth=4, num_heads=4, hooks=(0, 1, 2, 3),
                   reassemble_channels=(32, 64, 128, 128), features=32)


@dataclass(frozen=True)
class DomainConfig:
    """One metric head: its name (``'nyu'`` or ``'kitti'``) and depth range (used by normed bins only)."""
    name: str = 'nyu'
    min_depth: float = 1e-3
    max_depth: float = 10.0

    def __post_init__(self) -> None:
        if self.name not in DOMAIN_NAMES:
            raise ValueError(f'domain name must be one of {DOMAIN_NAMES}, got {self.name!r}')
        if not 0 <= self.min_depth < self.max_depth:
            raise ValueError(f'need 0 <= min_depth < max_depth, got {self.min_depth}, {self.max_depth}')

    @property
    def index(self) -> int:
        return DOMAIN_NAMES.index(self.name)


NYU = DomainConfig('nyu', 1e-3, 10.0)
KITTI = DomainConfig('kitti', 1e-3, 80.0)


@dataclass(frozen=True)
class RouterConfig:
    """NK domain router: 1x1 patch embedding, post-norm transformer encoder and a 2-way MLP classifier."""
    embedding_dim: int = 128
    num_heads: int = 4
    num_layers: int = 4
    dim_feedforward: int = 1024
    dropout: float = 0.1
    layer_norm_eps: float = 1e-5


@dataclass(frozen=True)
class ZoeDepthHeadConfig:
    """Metric head (everything of ZoeDepth except the core); defaults = ZoeD_M12_N.

    Channel widths are configurable so the same head runs on light backbones.

    Attributes:
        btlnck_channels: channels of ``l4_rn`` (input of ``conv2``).
        block_channels: channels of r4, r3, r2, r1.
        out_conv_channels: channels of ``out_conv``.
        bin_centers_type: ``'softplus'`` (N, NK) or ``'normed'`` (K).
        seed_mlp_dim / seed_projector_mlp_dim / projector_mlp_dim / attractor_mlp_dim: hidden widths.
        n_attractors: attractor points per stage.
        attractor_alpha / attractor_gamma: values in force (the TorchScript defaults 300 and 2).
        memory_efficient: attractor sum as a loop (NK) instead of a stacked mean (N, K); same maths.
        use_rel_depth: concatenate the upsampled relative depth to ``out_conv`` (N, K) or not (NK).
        clb_bottleneck_factor: hidden width of the log-binomial MLP = in_channels // factor (2 N/K, 4 NK).
        domains: one entry = single head (module names without a domain key); two = NK with router.
    """
    btlnck_channels: int = 256
    block_channels: Tuple[int, ...] = (256, 256, 256, 256)
    out_conv_channels: int = 32
    n_bins: int = 64
    bin_embedding_dim: int = 128
    bin_centers_type: str = 'softplus'
    seed_mlp_dim: int = 256
    seed_projector_mlp_dim: int = 128
    projector_mlp_dim: int = 128
    attractor_mlp_dim: int = 128
    n_attractors: Tuple[int, ...] = (16, 8, 4, 1)
    attractor_alpha: float = 300.0
    attractor_gamma: int = 2
    attractor_kind: str = 'mean'
    attractor_type: str = 'inv'
    memory_efficient: bool = False
    use_rel_depth: bool = True
    clb_bottleneck_factor: int = 2
    min_temp: float = 0.0212
    max_temp: float = 50.0
    p_eps: float = 1e-4
    domains: Tuple[DomainConfig, ...] = (NYU,)
    router: RouterConfig = field(default_factory=RouterConfig)

    def __post_init__(self) -> None:
        if self.bin_centers_type not in ('softplus', 'normed'):
            raise ValueError(f"bin_centers_type must be 'softplus' or 'normed', "
                             f"got {self.bin_centers_type!r}")
        if self.attractor_kind not in ('mean', 'sum'):
            raise ValueError(f"attractor_kind must be 'mean' or 'sum', got {self.attractor_kind!r}")
        if self.attractor_type not in ('inv', 'exp'):
            raise ValueError(f"attractor_type must be 'inv' or 'exp', got {self.attractor_type!r}")
        if len(self.n_attractors) != len(self.block_channels):
            raise ValueError(f'n_attractors {self.n_attractors} needs one entry per block '
                             f'{self.block_channels}')
        if len(self.domains) not in (1, 2):
            raise ValueError('domains must hold one (single head) or two (nyu, kitti with router) entries')
        names = [d.name for d in self.domains]
        if len(set(names)) != len(names):
            raise ValueError(f'duplicate domain names {names}')
        if not 0 < self.min_temp < self.max_temp:
            raise ValueError('need 0 < min_temp < max_temp')

    @property
    def multi_head(self) -> bool:
        return len(self.domains) > 1

    @property
    def clb_in_channels(self) -> int:
        return self.out_conv_channels + int(self.use_rel_depth) + self.bin_embedding_dim

    @classmethod
    def n(cls, **overrides) -> 'ZoeDepthHeadConfig':
        """ZoeD_M12_N (NYU head, softplus bins)."""
        return replace(cls(), **overrides)

    @classmethod
    def k(cls, **overrides) -> 'ZoeDepthHeadConfig':
        """ZoeD_M12_K (KITTI head, normed bins in [1e-3, 80] m).

        The training config merges the KITTI dataset range (max 80 m). The official torch.hub builder passes
        no dataset and so runs the head with max_depth 10 (isl-org/ZoeDepth issue 139); pass
        ``domains=(DomainConfig('kitti', 1e-3, 10.0),)`` to reproduce that.
        """
        return replace(cls(bin_centers_type='normed', domains=(KITTI,)), **overrides)

    @classmethod
    def nk(cls, **overrides) -> 'ZoeDepthHeadConfig':
        """ZoeD_M12_NK (two softplus heads + router)."""
        base = cls(seed_mlp_dim=64, seed_projector_mlp_dim=64, projector_mlp_dim=64,
                   n_attractors=(16, 16, 16, 16), memory_efficient=True, use_rel_depth=False,
                   clb_bottleneck_factor=4, domains=(NYU, KITTI))
        return replace(base, **overrides)

    @classmethod
    def preset(cls, variant: str, **overrides) -> 'ZoeDepthHeadConfig':
        """``'N'``, ``'K'`` or ``'NK'`` (case-insensitive)."""
        key = str(variant).upper()
        if key not in ('N', 'K', 'NK'):
            raise ValueError(f"variant must be 'N', 'K' or 'NK', got {variant!r}")
        return {'N': cls.n, 'K': cls.k, 'NK': cls.nk}[key](**overrides)
