"""ZoeDepth metric head (everything of ZoeD_M12_N / _K / _NK except the core), with per-image routing.

Module names match the released checkpoints minus ``core.*``: single-head models (N, K) use
``seed_bin_regressor``, ``attractors.{i}``, ``conditional_log_binomial``; NK uses
``seed_bin_regressors.{name}``, ``attractors.{name}.{i}``, ``conditional_log_binomial.{name}`` plus
``patch_transformer`` and ``mlp_classifier``. The official NK picks one head for the whole batch by a vote;
here each image is routed on its own (a batch may mix cameras), which equals the official output for a batch
of one.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Union

import torch
from torch import Tensor, nn

from .attractors import AttractorLayer
from .bins import Projector, SeedBinRegressor
from .checkpoint import (StateSource, head_config_from_state_dict, load_checked,
                         read_state_dict)
from .config import (DOMAIN_NAMES, DomainConfig, ZoeDepthHeadConfig,
                     canonical_domain)
from .dpt import resize_bilinear
from .log_binomial import ConditionalLogBinomial
from .router import PatchTransformerEncoder

logger = logging.getLogger(__name__)

DomainSpec = Union[None, str, int, Sequence[Union[None, str, int]], Callable[[Tensor], Sequence[str]]]


@dataclass
class MetricDepthOutput:
    """Result of the metric head / model.

    Attributes:
        metric_depth: ``(B, 1, H, W)`` metres.
        route: per image ``'nyu'`` or ``'kitti'`` (the head that produced it).
        route_index: ``(B,)`` int64, 0 = nyu, 1 = kitti.
        domain_logits: ``(B, 2)`` router logits (NK only, else None).
        route_probs: ``(B, 2)`` softmax of ``domain_logits`` (NK only, else None).
        bin_centers, probs: ``(B, n_bins, H, W)`` when requested.
        metric_depth_by_head: ``{'nyu': (B,1,H,W), 'kitti': ...}`` when every head was run.
        rel_depth: ``(B, H, W)`` relative depth of the core (full model only).
        intermediates: debugging tensors when requested (``seed_bin_centers``, ``attractor_bin_centers`` list,
            ``clb_p`` (B,H,W), ``clb_t`` (B,1,H,W), ``class_token_embedding`` (B,E) for NK).
    """
    metric_depth: Tensor
    route: List[str]
    route_index: Tensor
    domain_logits: Optional[Tensor] = None
    route_probs: Optional[Tensor] = None
    bin_centers: Optional[Tensor] = None
    probs: Optional[Tensor] = None
    metric_depth_by_head: Optional[Dict[str, Tensor]] = None
    rel_depth: Optional[Tensor] = None
    intermediates: Dict[str, object] = field(default_factory=dict)


def _gather(parts: List[object], inverse: Tensor) -> object:
    """Concatenate per-group results along the batch and put images back in their original order."""
    first = parts[0]
    if isinstance(first, Tensor):
        return torch.cat(parts, dim=0)[inverse] if len(parts) > 1 else first  # type: ignore[arg-type]
    if isinstance(first, list):
        return [_gather([p[i] for p in parts], inverse) for i in range(len(first))]  # type: ignore[index]
    if isinstance(first, dict):
        return {k: _gather([p[k] for p in parts], inverse) for k in first}  # type: ignore[index]
    raise TypeError(f'cannot gather {type(first).__name__}')


class ZoeDepthHead(nn.Module):
    """Metric bins head: seed centres, four attractor stages, conditional log-binomial, expectation.

    Build it from a config (:class:`ZoeDepthHeadConfig`, defaults = ZoeD_M12_N) or from a checkpoint with
    :meth:`from_state_dict`. Call ``head(rel_depth, features)`` with ``features = [out_conv, l4_rn, r4, r3,
    r2, r1]`` (strides 1, 32, 16, 8, 4, 2 of the network input).
    """

    def __init__(self, config: ZoeDepthHeadConfig = ZoeDepthHeadConfig()) -> None:
        super().__init__()
        self._build_head(config)

    # Separate from __init__ so that subclasses can register their core first (checkpoint key order).
    def _build_head(self, cfg: ZoeDepthHeadConfig) -> None:
        if not isinstance(cfg, ZoeDepthHeadConfig):
            raise TypeError(f'config must be a ZoeDepthHeadConfig, got {type(cfg).__name__}')
        if cfg.multi_head and {d.name for d in cfg.domains} != set(DOMAIN_NAMES):
            raise ValueError(f'a routed head needs exactly the domains {DOMAIN_NAMES}')
        self.config = cfg
        c = cfg.btlnck_channels
        e = cfg.bin_embedding_dim
        self.conv2 = nn.Conv2d(c, c, kernel_size=1)
        if cfg.multi_head:
            r = cfg.router
            self.patch_transformer = PatchTransformerEncoder(c, r)
            self.mlp_classifier = nn.Sequential(nn.Linear(r.embedding_dim, r.embedding_dim), nn.ReLU(),
                                                nn.Linear(r.embedding_dim, len(DOMAIN_NAMES)))
            self.seed_bin_regressors = nn.ModuleDict({d.name: self._seed(d) for d in cfg.domains})
        else:
            self.seed_bin_regressor = self._seed(cfg.domains[0])
        self.seed_projector = Projector(c, e, cfg.seed_projector_mlp_dim)
        self.projectors = nn.ModuleList([Projector(ch, e, cfg.projector_mlp_dim)
                                         for ch in cfg.block_channels])
        if cfg.multi_head:
            self.attractors = nn.ModuleDict({d.name: self._attractors(d) for d in cfg.domains})
            self.conditional_log_binomial = nn.ModuleDict({d.name: self._clb() for d in cfg.domains})
        else:
            self.attractors = self._attractors(cfg.domains[0])
            self.conditional_log_binomial = self._clb()

    def _seed(self, d: DomainConfig) -> SeedBinRegressor:
        cfg = self.config
        return SeedBinRegressor(cfg.btlnck_channels, cfg.n_bins, cfg.seed_mlp_dim,
                                normed=cfg.bin_centers_type == 'normed', min_depth=d.min_depth,
                                max_depth=d.max_depth)

    def _attractors(self, d: DomainConfig) -> nn.ModuleList:
        cfg = self.config
        return nn.ModuleList([
            AttractorLayer(cfg.bin_embedding_dim, n, cfg.attractor_mlp_dim,
                           normed=cfg.bin_centers_type == 'normed', min_depth=d.min_depth,
                           max_depth=d.max_depth, alpha=cfg.attractor_alpha, gamma=cfg.attractor_gamma,
                           kind=cfg.attractor_kind, attractor_type=cfg.attractor_type,
                           memory_efficient=cfg.memory_efficient)
            for n in cfg.n_attractors])

    def _clb(self) -> ConditionalLogBinomial:
        cfg = self.config
        return ConditionalLogBinomial(cfg.out_conv_channels + int(cfg.use_rel_depth), cfg.bin_embedding_dim,
                                      cfg.n_bins, cfg.clb_bottleneck_factor, cfg.p_eps, cfg.max_temp,
                                      cfg.min_temp)

    @classmethod
    def from_state_dict(cls, state_dict: StateSource, strict: bool = True, **overrides) -> 'ZoeDepthHead':
        """Build the N, K or NK head that matches ``state_dict`` (no ``core.*`` keys) and load it.

        ``state_dict`` may also be a file (``.pt`` with ``weights_only=True`` or ``.safetensors``); a
        ``'model'`` / ``'state_dict'`` wrapper and a leading ``'module.'`` are handled. ``overrides`` go to
        :func:`head_config_from_state_dict` (e.g. ``bin_centers_type``, ``domains``). Parameters stay
        float32; call ``.to(dtype)`` afterwards.
        """
        sd = read_state_dict(state_dict)
        core_keys = [k for k in sd if k.startswith('core.')]
        if core_keys:
            raise ValueError(f'state dict holds {len(core_keys)} core.* keys (e.g. {core_keys[0]!r}); '
                             'pass the head part only or use load_zoedepth for full checkpoints')
        head = cls(head_config_from_state_dict(sd, **overrides))
        load_checked(head, sd, strict=strict)
        return head

    @property
    def domain_names(self) -> List[str]:
        """Names of the heads in this model, in checkpoint order."""
        return [d.name for d in self.config.domains]

    def _resolve_domains(self, domain: DomainSpec, batch: int) -> List[Optional[str]]:
        if isinstance(domain, (list, tuple)):
            if len(domain) != batch:
                raise ValueError(f'got {len(domain)} domains for a batch of {batch}')
            forced = [canonical_domain(d) for d in domain]
        else:
            forced = [canonical_domain(domain)] * batch
        if not self.config.multi_head:
            own = self.config.domains[0].name
            wrong = sorted({f for f in forced if f is not None and f != own})
            if wrong:
                logger.warning('single-head model (%s) ignores the forced domain(s) %s', own, wrong)
            return [own] * batch
        return forced

    def _check_inputs(self, rel_depth: Tensor, features: Sequence[Tensor]) -> None:
        cfg = self.config
        if not isinstance(features, (list, tuple)) or len(features) != 2 + len(cfg.block_channels):
            raise ValueError(f'features must be a list [out_conv, l4_rn, r4, r3, r2, r1] of '
                             f'{2 + len(cfg.block_channels)} tensors')
        expected = [cfg.out_conv_channels, cfg.btlnck_channels, *cfg.block_channels]
        names = ['out_conv', 'l4_rn'] + [f'block{i}' for i in range(len(cfg.block_channels))]
        b = features[0].shape[0]
        for name, f, ch in zip(names, features, expected):
            if not isinstance(f, Tensor) or f.ndim != 4:
                raise ValueError(f'{name} must be a (B, C, h, w) tensor')
            if f.shape[0] != b or f.shape[1] != ch:
                raise ValueError(f'{name} has shape {tuple(f.shape)}, expected ({b}, {ch}, h, w)')
        if not isinstance(rel_depth, Tensor) or rel_depth.ndim not in (3, 4) or rel_depth.shape[0] != b:
            got = tuple(rel_depth.shape) if isinstance(rel_depth, Tensor) else type(rel_depth).__name__
            raise ValueError(f'rel_depth must be (B, H, W) with B = {b}, got {got}')

    def _branch(self, name: str, x: Tensor, seed_embedding: Tensor, embeddings: List[Tensor],
                out_conv: Tensor, rel_depth: Tensor, want_probs: bool,
                want_intermediates: bool) -> Dict[str, object]:
        """Run one metric head on (a subset of) the batch."""
        multi = self.config.multi_head
        seed = self.seed_bin_regressors[name] if multi else self.seed_bin_regressor
        attractors = self.attractors[name] if multi else self.attractors
        clb = self.conditional_log_binomial[name] if multi else self.conditional_log_binomial
        b_prev, centers = seed(x)
        seed_centers = centers
        stages: List[Tensor] = []
        prev = seed_embedding
        for attractor, emb in zip(attractors, embeddings):
            b_prev, centers = attractor(emb, b_prev, prev)
            prev = emb
            if want_intermediates:
                stages.append(centers)
        last = out_conv
        if self.config.use_rel_depth:
            rel = rel_depth.unsqueeze(1) if rel_depth.ndim == 3 else rel_depth
            last = torch.cat([last, resize_bilinear(rel, last.shape[-2:])], dim=1)
        probs, p, t = clb(last, resize_bilinear(prev, last.shape[-2:]))
        centers = resize_bilinear(centers, probs.shape[-2:])
        out: Dict[str, object] = {'metric_depth': torch.sum(probs * centers, dim=1, keepdim=True)}
        if want_probs:
            out['bin_centers'] = centers
            out['probs'] = probs
        if want_intermediates:
            out['intermediates'] = {'seed_bin_centers': seed_centers, 'attractor_bin_centers': stages,
                                    'clb_p': p, 'clb_t': t}
        return out

    def forward(self, rel_depth: Tensor, features: Sequence[Tensor], domain: DomainSpec = None, *,
                return_probs: bool = False, return_intermediates: bool = False,
                all_heads: bool = False) -> MetricDepthOutput:
        """Metric depth from core outputs.

        Args:
            rel_depth: ``(B, H, W)`` relative depth (used by N/K; NK ignores it).
            features: ``[out_conv (B,32,H,W), l4_rn, r4, r3, r2, r1]``.
            domain: None / ``'auto'`` (router), ``'indoor'``/``'nyu'``, ``'outdoor'``/``'kitti'`` for the
                whole batch, or a per-image list. Single-head models ignore it (with a warning). Or a
                callable taking the router's probabilities ``(B, 2)`` and returning a per-image list (a
                route with hysteresis); it is not called for single-head models.
            return_probs: also return final ``bin_centers`` and ``probs`` ``(B, n_bins, H, W)``.
            return_intermediates: also return seed/stage centres, ``clb_p``, ``clb_t`` (and the router token).
            all_heads: run every head on every image (``metric_depth_by_head``; one entry for N / K).

        Returns:
            :class:`MetricDepthOutput` with ``metric_depth`` ``(B, 1, H, W)`` at ``out_conv`` resolution.
        """
        self._check_inputs(rel_depth, features)
        cfg = self.config
        out_conv, btlnck, blocks = features[0], features[1], list(features[2:])
        batch = out_conv.shape[0]
        chooser = domain if callable(domain) else None
        forced = self._resolve_domains(None if chooser else domain, batch)
        x = self.conv2(btlnck)
        intermediates: Dict[str, object] = {}
        logits = probs_route = None
        if cfg.multi_head:
            token = self.patch_transformer(x)[0]
            logits = self.mlp_classifier(token)
            probs_route = torch.softmax(logits, dim=-1)
            auto = torch.argmax(logits, dim=-1).tolist()
            if chooser is not None:
                forced = self._resolve_domains(list(chooser(probs_route.detach())), batch)
            names = [f if f is not None else DOMAIN_NAMES[a] for f, a in zip(forced, auto)]
            if return_intermediates:
                intermediates['class_token_embedding'] = token
        else:
            names = list(forced)  # type: ignore[arg-type]
        seed_embedding = self.seed_projector(x)
        embeddings = [proj(f) for proj, f in zip(self.projectors, blocks)]

        def run(name: str, idx: Optional[Tensor]) -> Dict[str, object]:
            if idx is None:
                return self._branch(name, x, seed_embedding, embeddings, out_conv, rel_depth,
                                    return_probs, return_intermediates)
            return self._branch(name, x[idx], seed_embedding[idx], [e[idx] for e in embeddings],
                                out_conv[idx], rel_depth[idx], return_probs, return_intermediates)

        by_head: Optional[Dict[str, Tensor]] = None
        if all_heads and cfg.multi_head:
            full = {n: run(n, None) for n in self.domain_names}
            by_head = {n: r['metric_depth'] for n, r in full.items()}  # type: ignore[misc]
            result = {}
            for key in full[names[0]]:
                parts = [full[n][key] for n in self.domain_names]
                result[key] = _select_per_image(parts, [self.domain_names.index(n) for n in names])
        else:
            groups = [n for n in self.domain_names if n in names]
            if len(groups) == 1:
                result = run(groups[0], None)
                if all_heads:
                    by_head = {groups[0]: result['metric_depth']}  # type: ignore[dict-item]
            else:
                parts, order = [], []
                for n in groups:
                    idx = torch.tensor([i for i, m in enumerate(names) if m == n], device=x.device)
                    parts.append(run(n, idx))
                    order.append(idx)
                inverse = torch.argsort(torch.cat(order))
                result = {k: _gather([p[k] for p in parts], inverse) for k in parts[0]}
        intermediates.update(result.get('intermediates', {}))  # type: ignore[arg-type]
        return MetricDepthOutput(
            metric_depth=result['metric_depth'],  # type: ignore[arg-type]
            route=names,  # type: ignore[arg-type]
            route_index=torch.tensor([DOMAIN_NAMES.index(n) for n in names], dtype=torch.long,
                                     device=x.device),
            domain_logits=logits, route_probs=probs_route,
            bin_centers=result.get('bin_centers'), probs=result.get('probs'),  # type: ignore[arg-type]
            metric_depth_by_head=by_head, intermediates=intermediates)


def _select_per_image(parts: List[object], choice: List[int]) -> object:
    """Pick, for image i, the entry of ``parts[choice[i]]`` (nested lists/dicts of batch-first tensors)."""
    first = parts[0]
    if isinstance(first, Tensor):
        if all(c == choice[0] for c in choice):
            return parts[choice[0]]
        return torch.stack([parts[c][i] for i, c in enumerate(choice)], dim=0)  # type: ignore[index]
    if isinstance(first, list):
        return [_select_per_image([p[j] for p in parts], choice)  # type: ignore[index]
                for j in range(len(first))]
    if isinstance(first, dict):
        return {k: _select_per_image([p[k] for p in parts], choice) for k in first}  # type: ignore[index]
    raise TypeError(f'cannot select from {type(first).__name__}')
