"""SER (essl_aug.objectives.ser) against a transcription of the authors' loss, torch oracles of its group actions,
exact equivariance, errors, the weight-0 convention and a short pre-training run."""

from __future__ import annotations

import copy
import math
import pickle

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmarks.toolkit.models import SmallCNN, projector
from benchmarks.toolkit.pretrain import pretrain_loop
from benchmarks.toolkit.simclr import nt_xent
from essl_aug.objectives import SER, Objectives, StepInputs
from essl_aug.objectives.ser import token_infonce

# -- a transcription of the upstream loss (aitrics-chris/SER at dbe5e93, one process: the gathers are the identity) ---


def upstream_aug_equiv_feat(x: Tensor, w: int, h: int, rot90_inv: int, rot90_another: int) -> Tensor:
    """builder/utils.py lines 939-944, ``Aug_equi.aug_equiv_feat``."""
    x = torch.rot90(x, k=rot90_inv + 2, dims=[2, 3])
    x = x.flip(-1)  # transforms.functional.hflip
    x = F.interpolate(x, size=(w, h), mode="bicubic")
    return torch.rot90(x, k=rot90_another, dims=[2, 3])


def upstream_equiv_loss(
    proj: nn.Module, q0: Tensor, q1: Tensor, grid0: tuple, grid1: tuple, r0: int, r1: int, temperature: float
) -> Tensor:
    """builder/moco.py lines 949-1018, ``MoCo.equiv`` from ``featequiv_k0 = aug_equi.aug_equiv_feat(...)`` to
    ``loss_equiv``, with the momentum encoder's maps equal to the student's (no teacher) and one process (n_list =
    [N]); the projector is ``projector_equiv`` (lines 299-306), applied in ``forward_equiv`` (lines 492-503)."""
    n = q0.shape[0]
    (w0, h0), (w1, h1) = grid0, grid1
    fq0, fq1 = proj(q0), proj(q1)
    fk0, fk1 = proj(q0), proj(q1)
    fk0 = upstream_aug_equiv_feat(fk0, w1, h1, -r0, r1)
    fk1 = upstream_aug_equiv_feat(fk1, w0, h0, -r1, r0)
    d = fk0.shape[1]
    fk0 = torch.transpose(fk0, 1, 3).reshape(w1 * h1 * n, d)
    fk1 = torch.transpose(fk1, 1, 3).reshape(w0 * h0 * n, d)
    fq0 = torch.transpose(fq0, 1, 3).reshape(w0 * h0 * n, d)
    fq1 = torch.transpose(fq1, 1, 3).reshape(w1 * h1 * n, d)
    fk0, fk1, fq0, fq1 = (F.normalize(t, dim=1) for t in (fk0, fk1, fq0, fq1))
    losses = []
    for k, q in ((fk0, fq1), (fk1, fq0)):
        equiv = torch.mm(k, q.T) / temperature
        numerator = torch.trace(equiv)
        equiv = torch.exp(equiv)
        mask = torch.ones_like(equiv)
        per = equiv.shape[0] // n
        for s in range(n):
            mask[s * per : (s + 1) * per, s * per : (s + 1) * per] = 0
        mask.fill_diagonal_(1)
        denominator = torch.sum(torch.log(torch.sum(equiv * mask, dim=0, dtype=torch.float32)))
        losses.append((denominator - numerator) / float(equiv.shape[0]))
    return 0.5 * (losses[0] + losses[1])


@pytest.mark.parametrize("turns", [(1, 3), (0, 2), (2, 1)])
def test_the_loss_matches_a_transcription_of_the_upstream_loss(turns: tuple[int, int]) -> None:
    torch.manual_seed(0)
    ser = SER("0", in_channels=6, temperature=0.5)
    upstream_proj = nn.Sequential(nn.Conv2d(6, 512, 1, bias=False), nn.GELU(), nn.Conv2d(512, 512, 1, bias=False))
    upstream_proj.load_state_dict(ser.projector.state_dict())  # copied weights
    r0, r1 = turns
    grid0, grid1 = (4, 5), (5, 3)  # upstream's (w, h): the first is the map's height before the quarter turn
    map0 = torch.randn(3, 6, *(grid0 if r0 % 2 == 0 else grid0[::-1]))
    map1 = torch.randn(3, 6, *(grid1 if r1 % 2 == 0 else grid1[::-1]))
    ours, cos = ser.equivariance_loss(map0, map1, (r0, r1))
    want = upstream_equiv_loss(upstream_proj, map0, map1, grid0, grid1, r0, r1, 0.5)
    torch.testing.assert_close(ours, want, rtol=1e-5, atol=1e-5)
    assert float(ours.detach()) > 0 and -1 <= float(cos) < 1


def test_token_infonce_matches_the_masked_sum_on_a_fixed_batch() -> None:
    torch.manual_seed(1)
    t, q = torch.randn(2, 3, 2, 2), torch.randn(2, 3, 2, 2)
    tt = F.normalize(t.flatten(2).transpose(1, 2).reshape(8, 3), dim=1)
    qq = F.normalize(q.flatten(2).transpose(1, 2).reshape(8, 3), dim=1)
    logits = tt @ qq.T / 0.4
    want = 0.0
    for j in range(8):  # query token j of image j // 4: its positive and the 4 tokens of the other image
        others = [i for i in range(8) if i // 4 != j // 4]
        terms = torch.stack([logits[j, j], *[logits[i, j] for i in others]])
        want += float(torch.logsumexp(terms, 0) - logits[j, j]) / 8
    assert abs(float(token_infonce(t, q, 0.4)) - want) < 1e-5
    with pytest.raises(ValueError, match=r"maps of one shape"):
        token_infonce(t, q[:, :, :1], 0.4)


# -- the group actions against torch oracles -------------------------------------------------------------------------


def test_the_input_transformation_against_torch_ops() -> None:
    torch.manual_seed(2)
    ser = SER("0", in_channels=3, stride=2)
    x = torch.rand(4, 3, 8, 8)
    half = torch.tensor([True, False, True, False])
    mirror = torch.tensor([True, True, False, False])
    got = ser.transform_input(x, half, mirror, (3, 5), 3)
    rows = []
    for i in range(4):  # upstream Aug_equi.rotate: a half turn, then hflip; then the resize and the quarter turn
        xi = torch.rot90(x[i : i + 1], 2, dims=[2, 3]) if half[i] else x[i : i + 1]
        rows.append(xi.flip(-1) if mirror[i] else xi)
    want = torch.rot90(F.interpolate(torch.cat(rows), size=(6, 10), mode="bicubic"), 3, dims=[2, 3])
    assert got.shape == (4, 3, 10, 6) and torch.equal(got, want)


@pytest.mark.parametrize(("turn_from", "turn_to", "size"), [(1, 2, (4, 6)), (3, 0, (5, 5)), (0, 1, (6, 4))])
def test_the_action_on_a_feature_map_against_torch_ops(turn_from: int, turn_to: int, size: tuple) -> None:
    torch.manual_seed(3)
    ser = SER("0", in_channels=5)
    m = torch.randn(2, 5, 6, 4)
    got = ser.act(m, turn_from, turn_to, size)
    unturned = torch.rot90(m, -turn_from, dims=[2, 3])
    flipped = torch.rot90(unturned, 2, dims=[2, 3]).flip(-1)  # upstream: a half turn, then hflip
    resized = flipped if tuple(flipped.shape[-2:]) == size else F.interpolate(flipped, size=size, mode="bicubic")
    assert torch.equal(got, torch.rot90(resized, turn_to, dims=[2, 3]))
    torch.testing.assert_close(got, upstream_aug_equiv_feat(m, *size, -turn_from, turn_to))


# -- exact equivariance --------------------------------------------------------------------------------------------


def _pointwise() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(3, 8, 1), nn.ReLU(), nn.Conv2d(8, 8, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_pointwise_net_is_exactly_equivariant_and_a_3x3_net_is_not(seed: int) -> None:
    torch.manual_seed(seed)
    x = torch.rand(4, 3, 8, 8)
    ser = SER("2", in_channels=8, projector_dim=16, batch_fraction=1.0, scale=None)
    step = StepInputs(backbone=_pointwise(), images=x, generator=torch.Generator().manual_seed(seed))
    out = ser(step)
    assert abs(float(out.logs["cos"]) - 1) < 1e-6  # every positive pair is the same vector
    ref = ser.projector(_pointwise_map(step.backbone, x))
    torch.testing.assert_close(out.logs["nce"], token_infonce(ref, ref, 0.5), rtol=1e-5, atol=1e-6)

    torch.manual_seed(seed)
    bent = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.Flatten())
    skew = ser(StepInputs(backbone=bent, images=x, generator=torch.Generator().manual_seed(seed)))
    assert float(skew.logs["cos"]) < 0.99


def _pointwise_map(net: nn.Module, x: Tensor) -> Tensor:
    return net[2](net[1](net[0](x)))


def test_scaling_draws_upstream_grids_and_is_the_identity_at_scale_one() -> None:
    ser = SER("0", in_channels=6, projector_dim=None, batch_fraction=1.0, stride=4)
    for seed in range(5):
        u = torch.rand(2, generator=torch.Generator().manual_seed(seed)).tolist()
        area = (224 // 4) ** 2 * (0.7 + 0.6 * u[0])  # builder/utils.py get_params: (img_size/stride)**2 * U(scale)
        aspect = math.exp(math.log(3 / 4) + (math.log(4 / 3) - math.log(3 / 4)) * u[1])
        want = (round(math.sqrt(area * aspect)), round(math.sqrt(area / aspect)))
        assert ser.draw_grid(224, 224, torch.Generator().manual_seed(seed)) == want
    torch.manual_seed(4)
    net = nn.Sequential(nn.Conv2d(3, 6, 1), nn.AdaptiveAvgPool2d(1))
    x = torch.rand(3, 3, 12, 12)
    unit = SER("0", in_channels=6, projector_dim=None, batch_fraction=1.0, scale=(1, 1), ratio=(1, 1))
    plain = SER("0", in_channels=6, projector_dim=None, batch_fraction=1.0, scale=None)
    a = unit(StepInputs(backbone=net, images=x, generator=torch.Generator().manual_seed(0)))
    b = plain(StepInputs(backbone=net, images=x, generator=torch.Generator().manual_seed(0)))
    torch.testing.assert_close(a.loss, b.loss)  # (the draws differ: the grid's numbers come first)
    assert abs(float(a.logs["cos"]) - 1) < 1e-6
    # a rescaled copy: the map is resized twice (image to a's grid, then to b's), so equivariance is approximate
    scaled = SER("0", in_channels=6, projector_dim=None, batch_fraction=1.0, scale=(0.5, 1.5))
    cos = float(scaled(StepInputs(backbone=net, images=x, generator=torch.Generator().manual_seed(3))).logs["cos"])
    assert 0.9 < cos < 1 - 1e-4


# -- the objective's contract ----------------------------------------------------------------------------------------


def test_weight_zero_leaves_the_ssl_loss_bit_identical_and_keeps_the_logs() -> None:
    torch.manual_seed(5)
    net = SmallCNN(1, width=4)
    ser = SER("features.5", in_channels=8, weight=0.0, stride=2, batch_fraction=0.5)
    x = torch.rand(4, 1, 12, 12)
    ssl = net(x).square().mean()
    out = ser(StepInputs(backbone=net, images=x, generator=torch.Generator().manual_seed(0)))
    assert torch.equal(ssl + out.loss, ssl) and str(out.loss) == "tensor(-0., grad_fn=<WhereBackward0>)"
    assert float(out.logs["nce"]) > 0
    (ssl + out.loss).backward()
    assert all(p.grad is None or not p.grad.any() for p in ser.parameters())


def test_the_gradient_reaches_the_layers_up_to_the_map_only_and_the_input_is_kept() -> None:
    torch.manual_seed(6)
    net = SmallCNN(1, width=4)
    ser = SER("features.5", in_channels=8, stride=2, batch_fraction=0.5)
    x = torch.rand(4, 1, 12, 12)
    kept = x.clone()
    out = ser(StepInputs(backbone=net, images=x, generator=torch.Generator().manual_seed(0)))
    out.loss.backward()
    assert net.features[0].weight.grad is not None and net.features[0].weight.grad.abs().sum() > 0
    assert net.features[9].weight.grad is None  # after the layer: never run
    assert all(p.grad is not None for p in ser.projector.parameters())
    assert torch.equal(x, kept)
    assert all(not m._forward_hooks for m in net.modules())


def test_the_draws_follow_the_generator_and_a_copy_pickles() -> None:
    torch.manual_seed(7)
    net = SmallCNN(1, width=4)
    ser = SER("features.5", in_channels=8, stride=2, batch_fraction=0.5)
    x = torch.rand(6, 1, 16, 16)

    def run(obj: SER, seed: int) -> Tensor:
        return obj(StepInputs(backbone=net, images=x, generator=torch.Generator().manual_seed(seed))).loss

    twin = pickle.loads(pickle.dumps(copy.deepcopy(ser)))
    assert torch.equal(run(ser, 1), run(twin, 1))
    assert not torch.equal(run(ser, 1), run(ser, 2))


def test_errors_name_the_argument_and_the_fix() -> None:
    net = SmallCNN(1, width=4)
    ok = SER("features.5", in_channels=8, stride=2)
    with pytest.raises(ValueError, match=r"SER needs backbone, images in its StepInputs"):
        ok(StepInputs(extra=torch.rand(2, 1, 8, 8)))
    with pytest.raises(TypeError, match=r"give float images, got torch.uint8"):
        ok(StepInputs(backbone=net, images=torch.zeros(2, 1, 8, 8, dtype=torch.uint8)))
    with pytest.raises(ValueError, match=r"at least 2 images"):
        ok(StepInputs(backbone=net, images=torch.rand(1, 1, 8, 8)))
    with pytest.raises(ValueError, match=r"not a whole number of `stride`=2 cells"):
        ok(StepInputs(backbone=net, images=torch.rand(2, 1, 9, 9)))
    with pytest.raises(ValueError, match=r"close names: 'features.5'"):
        SER("feature.5", in_channels=8)(StepInputs(backbone=net, images=torch.rand(2, 1, 8, 8)))
    with pytest.raises(ValueError, match=r"set in_channels=8"):
        SER("features.5", in_channels=9)(StepInputs(backbone=net, images=torch.rand(2, 1, 8, 8)))
    with pytest.raises(TypeError, match=r"not an nn.Module"):
        ok(StepInputs(backbone=lambda v: net(v), images=torch.rand(2, 1, 8, 8)))
    for kwargs, match in [
        ({"temperature": 0}, "`temperature` must be a number > 0"),
        ({"scale": (0, 1)}, r"`scale` must be \(lo, hi\)"),
        ({"ratio": (2, 1)}, r"`ratio` must be \(lo, hi\)"),
        ({"batch_fraction": 0}, r"`batch_fraction` must be a number in \(0, 1\]"),
        ({"source": "views"}, "`source` must be one of"),
        ({"projector_dim": 0}, "`projector_dim` must be None or an integer >= 1"),
        ({"stride": 0}, "`stride` must be an integer >= 1"),
        ({"flips": 1}, "`flips` must be True or False"),
    ]:
        with pytest.raises((TypeError, ValueError), match=match):
            SER("features.5", in_channels=8, **kwargs)
    extra = SER("features.5", in_channels=8, stride=2, source="extra")
    assert extra.requires == frozenset({"backbone", "extra"})


def test_a_four_step_pretraining_run_with_the_small_cnn(one_thread: None) -> None:
    torch.manual_seed(8)
    net, proj = SmallCNN(1, width=8), projector(32)
    ser = Objectives({"ser": SER("features.5", in_channels=16, stride=2, batch_fraction=0.25)})
    before = [p.detach().clone() for p in ser.parameters()]
    opt = torch.optim.SGD([*net.parameters(), *proj.parameters(), *ser.parameters()], lr=0.05)
    history = pretrain_loop(
        net,
        proj,
        torch.rand(16, 1, 28, 28),
        views=lambda x, g: (x, x.flip(-1)),
        ssl_loss=nt_xent,
        optimizer=opt,
        lr=lambda step: 0.05,
        epochs=2,
        batch_size=8,
        generator=torch.Generator().manual_seed(0),
        objectives=ser,
    )
    assert len(history) == 2 and {"ser/nce", "ser/cos", "ser/loss", "ssl", "loss"} <= set(history[0])
    assert all(0 < row["ser/nce"] < 20 and -1 <= row["ser/cos"] <= 1 for row in history)
    assert all(not torch.equal(a, b) for a, b in zip(before, ser.parameters(), strict=True))  # the projector trained


def test_a_projector_in_no_optimiser_raises_at_the_second_step() -> None:
    torch.manual_seed(9)
    net = SmallCNN(1, width=4)
    ser = SER("features.5", in_channels=8, stride=2, batch_fraction=0.5)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)  # forgot ser.parameters()
    with pytest.raises(RuntimeError, match=r"head of SER is in no optimiser"):
        for _ in range(3):
            ser(StepInputs(backbone=net, images=torch.rand(4, 1, 8, 8))).loss.backward()
            optimizer.step()
            optimizer.zero_grad()


class PatchTokens(nn.Module):
    """A ViT-like token model: 4 px patches by a 1x1-then-pool embedding that commutes with the pixel moves of whole
    patches, a [CLS] token, a token-wise block (equivariant to permutations of the patches); [CLS] out."""

    def __init__(self, dim: int = 6) -> None:
        super().__init__()
        self.embed = nn.Sequential(nn.Conv2d(3, dim, 1), nn.AvgPool2d(4))
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim))
        self.block = nn.Sequential(nn.Linear(dim, dim), nn.GELU())

    def forward(self, x: Tensor) -> Tensor:
        tokens = self.embed(x).flatten(2).transpose(1, 2)
        tokens = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), tokens], dim=1)
        return self.block(tokens)[:, 0]


def test_ser_on_vit_tokens_reads_each_copys_grid_from_its_size() -> None:
    torch.manual_seed(10)
    net = PatchTokens()
    x = torch.rand(4, 3, 16, 16)
    flat = SER("block", in_channels=6, stride=4, class_tokens=1, batch_fraction=1.0, scale=None, projector_dim=8)
    out = flat(StepInputs(backbone=net, images=x, generator=torch.Generator().manual_seed(0)))
    assert abs(float(out.logs["cos"]) - 1) < 1e-5  # token-wise after whole-patch moves: exactly equivariant
    scaled = SER("block", in_channels=6, stride=4, class_tokens=1, batch_fraction=1.0, projector_dim=8)
    grids = [scaled.draw_grid(16, 16, torch.Generator().manual_seed(s)) for s in range(20)]
    assert any(g[0] != g[1] for g in grids)  # non-square grids occur: the grid comes from each copy's size
    cosines = []
    for seed in range(6):
        res = scaled(StepInputs(backbone=net, images=x, generator=torch.Generator().manual_seed(seed)))
        assert torch.isfinite(res.loss)
        cosines.append(float(res.logs["cos"]))
    assert min(cosines) < 1 - 1e-4  # a rescaled copy (its map resized twice): approximate
