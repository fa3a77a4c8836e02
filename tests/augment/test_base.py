"""The protocol of the parameterised augmentations (``essl_aug.augment.base``) and the interface that a head reads,
shared with the discrete families: ``target_spec``."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import FrozenInstanceError, dataclass
from pathlib import Path

import pytest
import torch

from essl_aug import Product, TransformFamily, build_family, family_names
from essl_aug.augment.base import (
    Augmentation,
    Params,
    TargetSpec,
    batch_shape,
    bernoulli,
    check_params,
    check_probability,
    draw_device,
    rand,
    select,
    uniform,
)
from essl_aug.augment.crop import RandomResizedCrop
from essl_aug.augment.flip import HorizontalFlip
from essl_aug.augment.rotation import RandomRotation

ROOT = Path(__file__).resolve().parents[2]


# -- TargetSpec: the one interface of what a head consumes ------------------------------------------


def test_target_spec_checks_its_fields() -> None:
    assert TargetSpec("regression", 2, ("cos", "sin")).names == ("cos", "sin")
    with pytest.raises(ValueError, match="`kind`"):
        TargetSpec("ordinal", 2)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`size`"):
        TargetSpec("classification", 0)
    with pytest.raises(ValueError, match="`names`"):
        TargetSpec("regression", 3, ("a", "b"))


@pytest.mark.parametrize("spec", [*family_names(), ["rotation", "vflip"]], ids=str)
def test_every_discrete_family_exposes_a_classification_target_spec(spec) -> None:
    family = build_family(spec)
    assert isinstance(family, TransformFamily)
    assert family.target_spec == TargetSpec("classification", family.num_classes)
    if isinstance(spec, list):
        assert isinstance(family, Product) and family.target_spec.size == 8


def test_the_families_labels_are_what_their_target_spec_says() -> None:
    """A head built from ``target_spec`` classifies the labels that the family draws."""
    family = build_family("rotation")
    labels = torch.arange(8) % family.num_classes
    views = family.apply(torch.rand(8, 3, 6, 6), labels)
    assert views.shape == (8, 3, 6, 6)
    assert family.target_spec.kind == "classification" and int(labels.max()) < family.target_spec.size


@pytest.mark.parametrize(
    ("aug", "spec"),
    [
        (RandomResizedCrop(4), TargetSpec("regression", 4, ("center_y", "center_x", "height", "width"))),
        (HorizontalFlip(), TargetSpec("classification", 2)),
        (RandomRotation(), TargetSpec("regression", 2, ("cos", "sin"))),
    ],
    ids=lambda v: type(v).__name__,
)
def test_the_augmentations_expose_their_target_spec(aug, spec) -> None:
    assert aug.target_spec == spec and aug.relative_spec == spec
    params = aug.sample((5, 3, 8, 8), generator=torch.Generator().manual_seed(0))
    for target in (aug.target(params), aug.relative(params, params)):
        if spec.kind == "classification":
            assert target.shape == (5,) and target.dtype == torch.int64
            assert bool(((target >= 0) & (target < spec.size)).all())
        else:
            assert target.shape == (5, spec.size) and target.dtype == torch.float32


@pytest.mark.parametrize("first", ["essl_aug.family", "essl_aug.augment.crop"])
def test_no_import_cycle_whatever_is_imported_first(first) -> None:
    code = (
        f"import {first}\n"
        "import essl_aug\n"
        "from essl_aug.augment.base import TargetSpec\n"
        "assert essl_aug.Rotation().target_spec == TargetSpec('classification', 4)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr


# -- Params and the drawing helpers -------------------------------------------------------------------


@dataclass(frozen=True)
class _Shifted(Params):
    shift: torch.Tensor


def test_params_are_frozen_and_move_every_tensor() -> None:
    params = _Shifted(applied=torch.tensor([True, False]), shift=torch.tensor([1.0, 2.0]))
    assert params.batch == 2
    with pytest.raises(FrozenInstanceError):
        params.shift = torch.zeros(2)  # type: ignore[misc]
    moved = params.to("cpu")
    assert isinstance(moved, _Shifted) and torch.equal(moved.shift, params.shift)


def test_uniform_bernoulli_and_rand_draw_reproducibly_in_range() -> None:
    u = uniform(2000, -1.0, 3.0, "cpu", torch.Generator().manual_seed(0))
    assert u.dtype == torch.float32 and bool(((u >= -1) & (u < 3)).all()) and abs(float(u.mean()) - 1.0) < 0.1
    assert torch.equal(u, uniform(2000, -1.0, 3.0, "cpu", torch.Generator().manual_seed(0)))
    assert not torch.equal(u, uniform(2000, -1.0, 3.0, "cpu", torch.Generator().manual_seed(1)))
    b = bernoulli(4000, 0.25, "cpu", torch.Generator().manual_seed(0))
    assert b.dtype == torch.bool and abs(float(b.float().mean()) - 0.25) < 0.03
    r = rand((3, 4, 2), "cpu", torch.Generator().manual_seed(0))
    assert r.shape == (3, 4, 2) and torch.equal(r, rand((3, 4, 2), "cpu", torch.Generator().manual_seed(0)))
    assert draw_device("cpu", None) == torch.device("cpu")
    assert draw_device("cuda", torch.Generator()) == torch.device("cpu")  # the generator's device draws


def test_select_keeps_rows_bit_identical_in_a_new_tensor() -> None:
    old, new = torch.rand(3, 2, 2), torch.rand(3, 2, 2)
    out = select(torch.tensor([True, False, True]), new, old)
    assert torch.equal(out[1], old[1]) and torch.equal(out[0], new[0]) and torch.equal(out[2], new[2])
    assert out.data_ptr() not in (old.data_ptr(), new.data_ptr())


def test_argument_checks_name_the_argument() -> None:
    assert check_probability(1) == 1.0
    with pytest.raises(ValueError, match="`q` is a probability"):
        check_probability(1.2, "q")
    assert batch_shape(torch.Size([2, 3, 4, 5])) == (2, 3, 4, 5)
    with pytest.raises(ValueError, match="`shape` must be a batch shape"):
        batch_shape((3, 4, 5))
    with pytest.raises(ValueError, match="at least one pixel"):
        batch_shape((3, 4, 0, 5))
    params = Params(torch.ones(2, dtype=torch.bool))
    check_params(params, Params, torch.rand(2, 1, 3, 3))
    with pytest.raises(TypeError, match="`p` must be a _Shifted"):
        check_params(params, _Shifted, torch.rand(2, 1, 3, 3), name="p")
    with pytest.raises(ValueError, match="`params` was drawn for B=2 images, `x` has 1"):
        check_params(params, Params, torch.rand(1, 1, 3, 3))


def test_the_base_class_is_abstract_and_calls_check_sample_apply() -> None:
    with pytest.raises(TypeError):
        Augmentation()  # type: ignore[abstract]
    flip = HorizontalFlip(p=1.0)
    with pytest.raises(ValueError, match="`x` must have 4 dimensions"):
        flip(torch.rand(3, 4, 4))
    y, params = flip(torch.arange(4.0).view(1, 1, 1, 4))
    assert y.flatten().tolist() == [3.0, 2.0, 1.0, 0.0] and params.applied.tolist() == [True]
    assert repr(flip) == "HorizontalFlip(p=1.0)"
