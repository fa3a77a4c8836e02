"""SER: soft equivariance of an intermediate feature map, under group actions applied in feature space.

SER (Lee, Kim, Kim, Lee and Lee, *Soft Equivariance Regularization for Invariant Self-Supervised Learning*, ICLR
2026; code ``aitrics-chris/SER``, commit ``dbe5e93``) keeps the SSL loss on the final embedding and adds a
token-level InfoNCE on the map of an intermediate layer (ViT-S/16: block 3 of 12, ``--equiv-layer 3``) between two
geometrically transformed copies of the same images, one copy's map moved into the other's frame by the analytic
action. What this module follows, from that code (``builder/moco.py`` ``MoCo.equiv``, ``builder/dino.py``
``train_erl``, ``builder/utils.py`` ``Aug_equi``):

- the images: the first ``round(batch_fraction * B)`` images (``--equiv-ratio-start 0.01``, a constant schedule),
  two copies ``a`` and ``b``;
- the input transformations (``Aug_equi.get_params`` / ``aug_equiv``): per image a half turn with probability 1/2
  and a mirror (``hflip``) with probability 1/2 on ``a``, the opposite choices on ``b`` (so that ``b`` is always
  ``a`` turned by half and mirrored: a vertical flip); then each copy resized (bicubic) to a grid of ``stride``-pixel
  cells of area ``(H / stride)**2 * U(scale)`` (``--equiv-scale 0.7 1.3``) and aspect ratio log-uniform in
  ``ratio`` (3/4, 4/3), the same size for all images of a copy; then one quarter turn ``k`` per copy, the same for
  all its images (``num_rot90_pergpu``);
- the projector: ``Conv1x1(C, 512) - GELU - Conv1x1(512, 512)``, no biases (``projector_equiv``), on each map;
- the action (``aug_equiv_feat``) on ``a``'s projected map: undo its quarter turn, flip it vertically (upstream's
  half turn and mirror), resize it (bicubic) to ``b``'s grid, apply ``b``'s quarter turn;
- the loss: L2-normalised tokens, logits ``<t_i, q_j> / temperature`` between every transformed token ``t`` of ``a``
  and every token ``q`` of ``b``; for each token of ``b`` a cross-entropy whose positive is the token at the same
  position of the same image and whose negatives are the tokens of the *other* images (the same image's other
  positions are masked out), averaged over the tokens; symmetric (``a`` to ``b`` and ``b`` to ``a``, halved, as
  MoCo and DINO; Barlow Twins uses one direction: ``symmetric=False``); ``weight`` the paper's lambda (MoCo and Barlow
  Twins 1.0, DINO 0.3), ``temperature`` 0.5 (MoCo; DINO and Barlow Twins 0.4).

Deliberate differences, each from the file named:

- the gradient: upstream gathers the maps across GPUs with ``concat_all_gather_different_shape``
  (``builder/moco.py`` line 1067) / ``concat_all_gather`` (``builder/utils.py`` line 952), both decorated
  ``@torch.no_grad()``, before the loss, so that, as published, its equivariance term carries no gradient; here the
  loss is differentiable (the paper's regulariser), and computed per process (each process's images are the
  negatives, no gather);
- the target side: MoCo and DINO take ``a``'s map from the momentum encoder / teacher (``forward_equiv`` under
  ``torch.no_grad()``); an objective has no teacher, so both maps come from the step's backbone (Barlow Twins' form,
  ``builder/barlowtwins.py``); ``detach_target=True`` stops the gradient through the transformed side;
- the passes: upstream puts the copies into the invariance loss in place of those images' SSL views (their [CLS]
  tokens join the SSL batch) and reads the map during that forward; here the SSL loss and its views are the
  user's, and SER runs the backbone on its two copies itself, up to ``layer`` only
  (:func:`~essl_aug.layers.feature_map`);
- upstream's ViT inserts its [CLS] token after the SER layer (``vision_transformer.py``, ``forward_equiv``); here the
  backbone is the user's, unchanged (``class_tokens`` drops its class tokens from the map);
- upstream's colour augmentations of the two copies (``Aug_equi.inv1`` / ``inv2``) are not applied: the copies differ
  by the geometric transformation only (give SER already augmented images, ``source="extra"``, for photometric
  differences);
- at least two images (one image has no negatives and a loss of exactly 0); upstream takes ``round(0.01 * B)``.

Example:
    >>> import torch
    >>> from essl_aug.objectives.base import StepInputs
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1))
    >>> ser = SER("1", in_channels=8, projector_dim=16, batch_fraction=0.5)
    >>> out = ser(StepInputs(backbone=net, images=torch.rand(4, 3, 16, 16)))
    >>> sorted(out.logs), out.loss.shape
    (['cos', 'nce'], torch.Size([]))
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from essl_aug import _random
from essl_aug._validation import check_fraction, check_images
from essl_aug.layers import check_grid, feature_map, find_layer
from essl_aug.objectives.base import Objective, ObjectiveOutput, StepInputs, weighted
from essl_aug.transforms import RandomHorizontalFlip, RandomVerticalFlip

__all__ = ["SER", "token_infonce"]

SOURCES = ("images", "extra")


def token_infonce(targets: Tensor, queries: Tensor, temperature: float) -> Tensor:
    """SER's token InfoNCE between two maps of one shape (n, C, h, w): for each query token, the target token at the
    same position of the same image against the target tokens of the other images (the same image's other positions
    masked out); the mean over the query tokens, computed in float32.

    Example:
        >>> m = torch.rand(2, 4, 3, 3)
        >>> bool(token_infonce(m, m, 0.5) < token_infonce(m, m.flip(-1), 0.5))
        True
    """
    if targets.shape != queries.shape or targets.ndim != 4:
        raise ValueError(
            f"`targets` and `queries` must be maps of one shape (n, C, h, w), got {tuple(targets.shape)} and "
            f"{tuple(queries.shape)}."
        )
    n, c, h, w = targets.shape
    t = F.normalize(targets.float().flatten(2).transpose(1, 2).reshape(-1, c), dim=1)
    q = F.normalize(queries.float().flatten(2).transpose(1, 2).reshape(-1, c), dim=1)
    logits = t @ q.T / temperature  # rows: targets, columns: queries
    owner = torch.arange(n, device=logits.device).repeat_interleave(h * w)
    same = owner[:, None] == owner[None, :]
    same.fill_diagonal_(False)  # the positive stays
    denominators = torch.logsumexp(logits.masked_fill(same, -math.inf), dim=0)
    return (denominators - logits.diagonal()).mean()


class SER(Objective):
    """Soft equivariance of the map at ``layer`` under quarter turns, flips and scaling (SER; the module docstring
    states what follows the authors' code and what differs).

    Requires ``backbone`` (an ``nn.Module`` whose ``named_modules()`` name ``layer``) and ``images`` (or ``extra``
    with ``source="extra"``), float (B, C, H, W), H divisible by ``stride``.

    Args:
        layer: the module whose output is the map, e.g. ``"layers.3"`` (ResNet), ``"blocks.2"`` (the 3rd ViT
            block: upstream's ``--equiv-layer 3``), ``"features.5"`` (the benchmarks' ``SmallCNN``, 14 x 14 at 28 px).
        in_channels: C, the channels (token width) of the map.
        weight: lambda (MoCo / Barlow Twins 1.0, DINO 0.3); 0 leaves the SSL loss bit-identical.
        temperature: of the InfoNCE (MoCo 0.5; DINO, Barlow Twins 0.4).
        projector_dim: width of the 1x1 projector (512); None: no projector (the map itself).
        batch_fraction: SER on the first ``max(2, round(batch_fraction * B))`` images (upstream 0.01); the logits
            are N x N for the N = n h w tokens of the n images: keep it small.
        scale: range of the area scale of each copy (0.7, 1.3); None: no resizing.
        ratio: range of the aspect ratio of each copy's grid (3/4, 4/3).
        stride: input pixels per map cell at ``layer`` (ViT: the patch size, 16): sizes are whole cells.
        rotations: one quarter turn per copy and step; flips: the per-image half turn / mirror of upstream.
        symmetric: both directions, halved (MoCo, DINO); False: ``a`` to ``b`` only (Barlow Twins).
        detach_target: no gradient through the transformed (target) side.
        source: ``"images"`` (the step's un-augmented images) or ``"extra"`` (its extra view).
        class_tokens, grid: for token maps (:func:`~essl_aug.layers.spatial_map`); without ``grid``, a copy's
            patch grid is its size over ``stride`` (the copies' grids differ when they are rescaled).
        generator: draws the per-image choices when the step gives none (``StepInputs.generator`` first); the
            per-step sizes and turns are host numbers, drawn from the step's generator when it is a CPU one, else
            from torch's global CPU generator (no device synchronisation).

    Shape:
        - ``StepInputs.images``: (B, C, H, W) float, B >= 2.
        - Output: a scalar loss; logs ``nce`` (the InfoNCE) and ``cos`` (mean cosine of the positive pairs: 1 for a
          map exactly equivariant to the action).

    Example:
        >>> pointwise = nn.Sequential(nn.Conv2d(3, 8, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1))  # equivariant
        >>> ser = SER("1", in_channels=8, projector_dim=16, batch_fraction=1.0, scale=None)
        >>> out = ser(StepInputs(backbone=pointwise, images=torch.rand(3, 3, 8, 8)))
        >>> round(float(out.logs["cos"]), 4)
        1.0
    """

    def __init__(
        self,
        layer: str,
        in_channels: int,
        *,
        weight: float = 1.0,
        temperature: float = 0.5,
        projector_dim: int | None = 512,
        batch_fraction: float = 0.01,
        scale: Sequence[float] | None = (0.7, 1.3),
        ratio: Sequence[float] = (3 / 4, 4 / 3),
        stride: int = 1,
        rotations: bool = True,
        flips: bool = True,
        symmetric: bool = True,
        detach_target: bool = False,
        source: str = "images",
        class_tokens: int = 0,
        grid: Sequence[int] | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(weight)
        if not isinstance(layer, str) or not layer:
            raise TypeError(f"`layer` must be the name of a module of the backbone (named_modules()), got {layer!r}.")
        for name, value in (("in_channels", in_channels), ("stride", stride)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be an integer >= 1, got {value!r}.")
        if projector_dim is not None and (
            isinstance(projector_dim, bool) or not isinstance(projector_dim, int) or projector_dim < 1
        ):
            raise ValueError(f"`projector_dim` must be None or an integer >= 1 (upstream 512), got {projector_dim!r}.")
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature > 0:
            raise ValueError(f"`temperature` must be a number > 0 (upstream 0.5 for MoCo), got {temperature!r}.")
        self.batch_fraction = check_fraction(batch_fraction, "batch_fraction", "must be a number in (0, 1]")
        if self.batch_fraction == 0:
            raise ValueError("`batch_fraction` must be a number in (0, 1] (upstream 0.01), got 0.")
        self.scale = None if scale is None else self._range(scale, "scale", positive=True)
        self.ratio = self._range(ratio, "ratio", positive=True)
        for name, flag in (
            ("rotations", rotations),
            ("flips", flips),
            ("symmetric", symmetric),
            ("detach_target", detach_target),
        ):
            if not isinstance(flag, bool):
                raise TypeError(f"`{name}` must be True or False, got {flag!r}.")
        if source not in SOURCES:
            raise ValueError(f"`source` must be one of {list(SOURCES)}, got {source!r}.")
        self.class_tokens, self.grid = check_grid(class_tokens, grid)
        self.layer, self.in_channels, self.stride = layer, in_channels, stride
        self.temperature = float(temperature)
        self.rotations, self.flips, self.symmetric, self.detach_target = rotations, flips, symmetric, detach_target
        self.source = source
        self.requires = frozenset({"backbone", source})
        self.generator = generator
        self.projector: nn.Module = nn.Identity()
        if projector_dim is not None:
            self.projector = nn.Sequential(
                nn.Conv2d(in_channels, projector_dim, 1, bias=False),
                nn.GELU(),
                nn.Conv2d(projector_dim, projector_dim, 1, bias=False),
            )
        self._vflip, self._hflip = RandomVerticalFlip(), RandomHorizontalFlip()

    @staticmethod
    def _range(value: Sequence[float], name: str, positive: bool) -> tuple[float, float]:
        ok = isinstance(value, (tuple, list)) and len(value) == 2
        ok = ok and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        if not ok or not 0 < value[0] <= value[1]:
            raise ValueError(f"`{name}` must be (lo, hi) with 0 < lo <= hi, got {value!r}.")
        return float(value[0]), float(value[1])

    # -- the draws and the transformations ------------------------------------------------------------------------
    def draw_grid(self, height: int, width: int, generator: torch.Generator | None) -> tuple[int, int]:
        """One copy's (h, w) in cells (upstream ``get_params``): area ``(height / stride) * (width / stride) *
        U(scale)``, aspect ratio log-uniform in ``ratio``; host numbers from a CPU ``generator`` (or torch's global
        CPU generator)."""
        cells = (height // self.stride, width // self.stride)
        if self.scale is None:
            return cells
        gen = generator if generator is not None and generator.device.type == "cpu" else None
        u = torch.rand(2, generator=gen).tolist()
        area = cells[0] * cells[1] * (self.scale[0] + (self.scale[1] - self.scale[0]) * u[0])
        lo, hi = math.log(self.ratio[0]), math.log(self.ratio[1])
        aspect = math.exp(lo + (hi - lo) * u[1])
        return max(1, round(math.sqrt(area * aspect))), max(1, round(math.sqrt(area / aspect)))

    def draw_turns(self, generator: torch.Generator | None) -> tuple[int, int]:
        """The quarter turns of the two copies (one per copy and step; (0, 0) without ``rotations``)."""
        if not self.rotations:
            return 0, 0
        gen = generator if generator is not None and generator.device.type == "cpu" else None
        k = torch.randint(0, 4, (2,), generator=gen).tolist()
        return int(k[0]), int(k[1])

    def transform_input(self, x: Tensor, half: Tensor, mirror: Tensor, cells: tuple[int, int], turn: int) -> Tensor:
        """One copy: per image a half turn where ``half`` and a mirror where ``mirror`` ((n,) bool), resized
        (bicubic) to ``cells`` times ``stride`` pixels, then ``turn`` quarter turns (upstream ``aug_equiv``)."""
        if self.flips:  # half turn then mirror = vertical flip where `half`, mirror where `half != mirror`
            x = self._hflip.apply(self._vflip.apply(x, half.long()), (half ^ mirror).long())
        if self.scale is not None:
            x = F.interpolate(x, size=(cells[0] * self.stride, cells[1] * self.stride), mode="bicubic")
        return torch.rot90(x, turn, dims=(-2, -1)) if turn % 4 else x

    def act(self, m: Tensor, turn_from: int, turn_to: int, size: tuple[int, int]) -> Tensor:
        """The action on a map (upstream ``aug_equiv_feat``): undo ``turn_from``, flip vertically (``flips``: the half
        turn and mirror between the copies), resize (bicubic) to ``size`` (the other copy's unturned map), apply
        ``turn_to``."""
        m = torch.rot90(m, -turn_from, dims=(-2, -1)) if turn_from % 4 else m
        if self.flips:
            m = self._vflip.apply(m, torch.ones(m.shape[0], dtype=torch.long, device=m.device))
        if tuple(m.shape[-2:]) != tuple(size):
            m = F.interpolate(m, size=size, mode="bicubic")
        return torch.rot90(m, turn_to, dims=(-2, -1)) if turn_to % 4 else m

    @staticmethod
    def _unturned(m: Tensor, turn: int) -> tuple[int, int]:
        h, w = m.shape[-2:]
        return (w, h) if turn % 2 else (h, w)

    def equivariance_loss(self, map_a: Tensor, map_b: Tensor, turns: tuple[int, int]) -> tuple[Tensor, Tensor]:
        """The InfoNCE of two copies' maps at ``layer`` (before the projector), with their quarter turns, and the mean
        cosine of the positive pairs (detached)."""
        pa, pb = self.projector(map_a), self.projector(map_b)
        pairs = [(pa, pb, turns[0], turns[1])]
        if self.symmetric:
            pairs.append((pb, pa, turns[1], turns[0]))
        losses, cosines = [], []
        for src, dst, k_src, k_dst in pairs:
            target = self.act(src, k_src, k_dst, self._unturned(dst, k_dst))
            if self.detach_target:
                target = target.detach()
            losses.append(token_infonce(target, dst, self.temperature))
            cosines.append(F.cosine_similarity(target.detach().float(), dst.detach().float(), dim=1).mean())
        loss = losses[0] if len(losses) == 1 else 0.5 * (losses[0] + losses[1])
        return loss, torch.stack(cosines).mean()

    def compute(self, inputs: StepInputs) -> ObjectiveOutput:
        x = getattr(inputs, self.source)
        name = f"StepInputs.{self.source}"
        check_images(x, name)
        if not x.is_floating_point():
            raise TypeError(f"SER encodes `{name}` with the backbone: give float images, got {x.dtype}.")
        b, _, h, w = x.shape
        if b < 2:
            raise ValueError(f"SER needs at least 2 images in `{name}` (the other images are the negatives), got {b}.")
        if h % self.stride or w % self.stride:
            raise ValueError(f"`{name}` is {h}x{w}, not a whole number of `stride`={self.stride} cells; fix `stride`.")
        backbone = inputs.backbone
        find_layer(backbone, self.layer)  # a clear error before any pass
        n = min(b, max(2, round(self.batch_fraction * b)))
        x = x[:n]
        generator = inputs.generator if inputs.generator is not None else self.generator
        turns = self.draw_turns(generator)
        grids = (self.draw_grid(h, w, generator), self.draw_grid(h, w, generator))
        if self.flips:
            half = _random.bernoulli(n, 0.5, x.device, generator)
            mirror = _random.bernoulli(n, 0.5, x.device, generator)
        else:
            half = mirror = torch.zeros(n, dtype=torch.bool, device=x.device)
        a = self.transform_input(x, half, mirror, grids[0], turns[0])
        b_copy = self.transform_input(x, ~half, ~mirror, grids[1], turns[1])
        assert backbone is not None  # checked by forward
        map_a = feature_map(backbone, self.layer, a, self.class_tokens, self.grid, self.stride)
        map_b = feature_map(backbone, self.layer, b_copy, self.class_tokens, self.grid, self.stride)
        if map_a.shape[1] != self.in_channels:
            raise ValueError(
                f"layer {self.layer!r} gives {map_a.shape[1]} channels but SER was built with "
                f"`in_channels`={self.in_channels}; set in_channels={map_a.shape[1]}."
            )
        loss, cos = self.equivariance_loss(map_a, map_b, turns)
        return ObjectiveOutput(weighted(self.weight, loss), {"nce": loss.detach(), "cos": cos})

    def extra_repr(self) -> str:
        return (
            f"layer={self.layer!r}, in_channels={self.in_channels}, weight={self.weight}, "
            f"temperature={self.temperature}, batch_fraction={self.batch_fraction}, scale={self.scale}, "
            f"stride={self.stride}, rotations={self.rotations}, flips={self.flips}, symmetric={self.symmetric}"
        )
