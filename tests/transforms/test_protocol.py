"""One protocol battery over every transformation of the catalogue (torchvision's ``check_transform`` /
``check_kernel``): dtypes and layouts kept, rows not applied bit-identical, the input untouched, parameters on the
input's device and reproducible with a generator, targets shaped as their specs, unbatched and empty batches,
``apply(x, sample(x.shape)) == t(x)``, the fast forms' bits and autograd."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from typing import Any

import pytest
import torch
from torch import Tensor

import essl_aug
from essl_aug import _fast
from essl_aug._cache import PlanCache
from essl_aug._fast import lookups
from essl_aug._kernels import permute_pixels
from essl_aug.transforms import Family, LabelParams, Params, Transformation
from tests.transforms.catalogue import (
    ENTRIES,
    EPS,
    PIXEL_MOVES,
    Entry,
    accepts,
    bits,
    build,
    entry,
    exported_transformations,
    images,
    largest,
    shape_for,
    unapplied_params,
)

ENTRY = pytest.mark.parametrize("e", ENTRIES, ids=repr)
LAYOUTS = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}
#: A signalling NaN with a payload in each float dtype (arithmetic would quiet it or rewrite the payload).
SIGNALLING_NAN = {
    torch.bfloat16: 0x7F81,
    torch.float16: 0x7C01,
    torch.float32: 0x7F800001,
    torch.float64: 0x7FF0000000000001,
}


def fields(params: Params) -> dict[str, Tensor]:
    return {f.name: getattr(params, f.name) for f in dataclasses.fields(params)}


def dtype_cases() -> list[Any]:
    cases = []
    for e in ENTRIES:
        for dtype in build(e).dtypes:
            cases.append(pytest.param(e, dtype, id=f"{e.id}-{str(dtype).replace('torch.', '')}"))
    return cases


def low_precision_bound(e: Entry, dtype: torch.dtype, reference: Tensor) -> float:
    """How far the result in ``dtype`` may lie from the float64 result: exact for pixel moves; else one rounding of
    a float32 computation (a few float32 ulps at float32, one ulp of the dtype below it), and for uint8 the
    truncations after each op (torchvision's colour jitter truncates after each of its four ops)."""
    if e.pixel_move or not (dtype.is_floating_point or dtype == torch.uint8):
        return 0.0
    if dtype == torch.uint8:
        return e.uint8_steps
    scale = max(1.0, largest(reference))
    return (32 if dtype == torch.float32 else 2) * EPS[dtype] * scale


def test_the_catalogue_covers_every_exported_transformation() -> None:
    exported = set(exported_transformations())
    assert len(exported) == 16  # 15 classes and Product
    assert {type(build(e)) for e in ENTRIES} == exported
    assert {type(f) for e in ENTRIES for f in getattr(build(e), "families", ())} <= exported


# -- dtypes, layouts, rows not applied, input untouched -------------------------------------------------------------


@pytest.mark.parametrize(("e", "dtype"), dtype_cases())
def test_every_declared_dtype_and_layout(e: Entry, dtype: torch.dtype) -> None:
    """Contiguous and channels-last batches: dtype, device, memory format and shape kept, a new tensor, the input
    untouched, the rows not applied bit-identical, the others changed, and the values those of the float64 op
    (exact for pixel moves and integer dtypes; within one rounding otherwise)."""
    t = build(e)
    shape = shape_for(e, 4, 10, 12)
    if not accepts(t, shape, dtype):  # a normalised-space inversion refuses uint8 (tested in test_errors)
        assert dtype == torch.uint8 and getattr(t, "mean", None) is not None
        return
    params = unapplied_params(t, shape, seed=2)
    results = {}
    for layout, memory_format in LAYOUTS.items():
        x = images(shape, seed=1, dtype=dtype).contiguous(memory_format=memory_format)
        before = bits(x).clone()
        y = t.apply(x, params)
        results[layout] = y
        assert y.dtype == dtype and y.device == x.device
        assert tuple(y.shape) == t.output_shape(x.shape)
        assert y.is_contiguous(memory_format=memory_format)
        assert y.data_ptr() != x.data_ptr()
        assert torch.equal(bits(x), before)  # the input is never modified
        kept = ~params.applied
        if y.shape == x.shape:
            assert torch.equal(bits(y)[kept], before[kept])
            if dtype != torch.bool:
                assert not torch.equal(y[params.applied], x[params.applied])  # the applied rows do change
        if dtype.is_floating_point or dtype == torch.uint8:
            scaled = x.double() / 255 if dtype == torch.uint8 else x.double()
            reference = t.apply(scaled, params) * (255 if dtype == torch.uint8 else 1)
            rounded = reference.round() if dtype == torch.uint8 else reference.to(dtype).double()
            assert largest(y.double() - rounded) <= low_precision_bound(e, dtype, reference)
        else:  # integers and bools: a pixel move gives the move of the values
            assert torch.equal(y.double(), t.apply(x.double(), params))
    contiguous, channels_last = results["contiguous"], results["channels_last"]
    if e.pixel_move or dtype not in (torch.float16, torch.bfloat16):
        assert torch.equal(bits(contiguous), bits(channels_last))
    else:  # PyTorch's half-precision CPU arithmetic rounds by layout (torchvision's results differ alike)
        assert largest(contiguous.double() - channels_last.double()) <= EPS[dtype]


@ENTRY
def test_rows_not_applied_keep_every_bit_and_pixel_moves_move_bits(e: Entry) -> None:
    """NaNs with payloads (signalling, with the sign bit) and -0.0 in the rows not applied come back bit for bit,
    in every float dtype, with and without autograd; a pixel move gives the bits of the same move on the integer
    view."""
    t = build(e)
    for dtype in SIGNALLING_NAN:
        if dtype in t.dtypes:
            _check_special_values(t, e, dtype)


def _check_special_values(t: Any, e: Entry, dtype: torch.dtype) -> None:
    shape = shape_for(e, 6, 10, 12)
    x = images(shape, seed=3, dtype=dtype)
    ints = bits(x)
    nan = torch.tensor(SIGNALLING_NAN[dtype], dtype=ints.dtype)
    sign = torch.tensor(-1, dtype=ints.dtype) << (8 * x.element_size() - 1)
    specials = torch.stack([nan, nan | 2, nan | sign, sign])  # the last one is -0.0
    gen = torch.Generator().manual_seed(4)
    pick = specials[torch.randint(0, 4, shape, generator=gen)]
    x = torch.where(torch.rand(shape, generator=gen) < 0.2, pick, ints).view(dtype)
    before = bits(x).clone()
    params = unapplied_params(t, shape, seed=5)
    for grad in (False, True):
        source = x.clone().requires_grad_(grad)
        y = t.apply(source, params)
        assert y.requires_grad == grad
        if y.shape == x.shape:
            kept = ~params.applied
            assert torch.equal(bits(y)[kept], before[kept])
        if e.pixel_move:
            assert torch.equal(bits(y), t.apply(bits(x), params))
    assert torch.equal(bits(x), before)


@ENTRY
def test_strided_input_gives_the_result_of_the_contiguous_copy(e: Entry) -> None:
    t = build(e)
    b, c, h, w = shape_for(e, 3, 10, 12)
    base = images((2 * b, c, 2 * h, 2 * w), seed=6)
    x = base[::2, :, ::2, 1::2]  # contiguous in no format
    params = t.sample(x.shape, generator=torch.Generator().manual_seed(7))
    assert torch.equal(t.apply(x, params), t.apply(x.contiguous(), params))
    if isinstance(t, Family):
        assert torch.equal(t.apply_all(x), t.apply_all(x.contiguous()))


@ENTRY
def test_the_input_is_never_modified_by_any_entry_point(e: Entry) -> None:
    t = build(e)
    shape = shape_for(e, 4, 8, 8)
    for layout in LAYOUTS.values():
        x = images(shape, seed=8).contiguous(memory_format=layout)
        before = x.clone()
        t(x, torch.Generator().manual_seed(0))
        t(x[0])
        t.apply(x, t.sample(x.shape))
        if isinstance(t, Family):
            t.apply_all(x)
            labels = torch.arange(4) % t.num_classes
            labels_before = labels.clone()
            t.apply(x, labels)
            assert torch.equal(labels, labels_before)
            for mode in ("random", "all"):
                essl_aug.EquivariantTransform(t, mode=mode)(x)
        assert torch.equal(x, before) and x.stride() == before.stride()


# -- parameters: device, generator, reproducibility -------------------------------------------------------------------


@ENTRY
def test_parameters_are_drawn_on_the_input_device(e: Entry) -> None:
    """On the meta device (no data, any machine): ``t(x)`` draws on ``x.device``; ``sample`` on the device asked for,
    also with a CPU generator (drawn there, then moved)."""
    t = build(e)
    shape = shape_for(e, 3, 10, 12)
    x = torch.empty(shape, device="meta")
    y, params = t(x)
    assert y.device.type == "meta" and tuple(y.shape) == t.output_shape(shape)
    assert {v.device.type for v in fields(params).values()} == {"meta"}
    drawn = t.sample(shape, "meta", torch.Generator().manual_seed(0))
    assert {v.device.type for v in fields(drawn).values()} == {"meta"}
    assert {v.device.type for v in fields(t.sample(shape)).values()} == {"cpu"}


@ENTRY
def test_sample_is_reproducible_with_a_generator_and_seeds_differ(e: Entry) -> None:
    t = build(e)
    shape = shape_for(e, 64, 10, 12)

    def draw(seed: int) -> Params:
        return t.sample(shape, "cpu", torch.Generator().manual_seed(seed))

    first, again, other = draw(11), draw(11), draw(12)
    assert type(first) is t.params_type
    for name, value in fields(first).items():
        assert value.shape[0] == 64 and value.device.type == "cpu", name
        assert torch.equal(value, fields(again)[name]), name
    assert first.applied.dtype == torch.bool and first.applied.shape == (64,)
    assert any(not torch.equal(v, fields(other)[n]) for n, v in fields(first).items())
    x = images(shape, seed=13)
    y1, p1 = t(x, torch.Generator().manual_seed(14))
    y2, p2 = t(x, torch.Generator().manual_seed(14))
    assert torch.equal(y1, y2) and all(
        torch.equal(a, b) for a, b in zip(fields(p1).values(), fields(p2).values(), strict=True)
    )


@ENTRY
def test_a_generator_leaves_the_global_rng_alone(e: Entry) -> None:
    t = build(e)
    x = images(shape_for(e, 4, 10, 12), seed=15)
    torch.manual_seed(3)
    state = torch.get_rng_state()
    t(x, torch.Generator().manual_seed(0))
    assert torch.equal(torch.get_rng_state(), state)


@ENTRY
def test_call_is_apply_of_sample_with_the_same_generator_state(e: Entry) -> None:
    t = build(e)
    x = images(shape_for(e, 5, 10, 12), seed=16)
    y, params = t(x, torch.Generator().manual_seed(17))
    drawn = t.sample(x.shape, x.device, torch.Generator().manual_seed(17))
    assert all(torch.equal(a, b) for a, b in zip(fields(params).values(), fields(drawn).values(), strict=True))
    assert torch.equal(bits(y), bits(t.apply(x, drawn)))
    torch.manual_seed(18)  # without a generator: the global RNG, the same draws after re-seeding
    y_global, _ = t(x)
    torch.manual_seed(18)
    assert torch.equal(bits(y_global), bits(t.apply(x, t.sample(x.shape))))


# -- targets ---------------------------------------------------------------------------------------------------------


def _check_target(value: Tensor, spec: Any, batch: int) -> None:
    if spec.kind == "classification":
        assert value.shape == (batch,) and value.dtype == torch.int64
        assert bool(((value >= 0) & (value < spec.size)).all())
    else:
        assert value.shape == (batch, spec.size) and value.dtype == torch.float32
        assert bool(torch.isfinite(value).all())


@pytest.mark.parametrize("batch", [0, 1, 7])
@ENTRY
def test_target_and_relative_follow_their_specs(e: Entry, batch: int) -> None:
    t = build(e)
    shape = shape_for(e, batch, 10, 12)
    a = t.sample(shape, generator=torch.Generator().manual_seed(19))
    b = t.sample(shape, generator=torch.Generator().manual_seed(20))
    spec, relative_spec = t.target_spec, t.relative_spec
    assert not spec.names or len(spec.names) == spec.size
    _check_target(t.target(a), spec, batch)
    _check_target(t.relative(a, b), relative_spec, batch)
    if spec.ranges:  # the ranges bound the targets: normalised, they lie in [0, 1]
        normalised = spec.normalize(t.target(a))
        assert normalised.dtype == torch.float32
        assert bool(((normalised >= -1e-6) & (normalised <= 1 + 1e-6)).all())
    same = t.relative(a, a)  # one view against itself: the identity (label 0, no difference, angle 0)
    if spec.circular:
        assert torch.allclose(same, torch.tensor([[1.0, 0.0]]).expand(batch, 2))
    else:
        assert torch.equal(same, torch.zeros_like(same))


@ENTRY
def test_output_shape_is_the_shape_of_the_output(e: Entry) -> None:
    t = build(e)
    for h, w in ((10, 12), (16, 16), (24, 20)):
        shape = shape_for(e, 2, h, w)
        y, _ = t(images(shape, seed=21))
        assert tuple(y.shape) == t.output_shape(shape) == t.output_shape(torch.Size(shape))


# -- unbatched images and empty batches ------------------------------------------------------------------------------


@ENTRY
def test_one_unbatched_image(e: Entry) -> None:
    t = build(e)
    x = images(shape_for(e, 1, 10, 12), seed=22)
    y, params = t(x[0], torch.Generator().manual_seed(23))
    assert params.batch == 1 and tuple(y.shape) == t.output_shape(x.shape)[1:]
    assert torch.equal(y, t.apply(x, params)[0])
    assert torch.equal(t.apply(x[0], params), y)
    if isinstance(t, Family):
        label = params.labels[0]
        assert torch.equal(t.apply(x[0], label), y)  # a 0-d label for one image
        assert torch.equal(t.apply_all(x[0]), t.apply_all(x))


@ENTRY
def test_an_empty_batch(e: Entry) -> None:
    t = build(e)
    _, c, h, w = shape_for(e, 0, 10, 12)
    for dtype in (torch.float32, torch.uint8):
        x = torch.empty(0, c, h, w, dtype=dtype)
        if not accepts(t, x.shape, dtype):
            continue
        y, params = t(x)
        assert tuple(y.shape) == t.output_shape(x.shape) and y.dtype == dtype and params.batch == 0
        assert t.target(params).shape[0] == 0
        if isinstance(t, Family):
            assert t.apply_all(x).shape == (0, c, h, w)
            assert t.apply(x, torch.zeros(0, dtype=torch.long)).shape == x.shape


# -- autograd ----------------------------------------------------------------------------------------------------------


def differentiable() -> list[Entry]:
    return [e for e in ENTRIES if torch.float64 in build(e).dtypes]


@pytest.mark.parametrize("e", differentiable(), ids=repr)
def test_gradcheck_in_float64(e: Entry) -> None:
    """Randomised (fast-mode) gradcheck of ``apply`` with drawn parameters (every row applied), and of ``apply_all``;
    the rows not applied pass the gradient through unchanged."""
    t = build(e)
    shape = shape_for(e, 2, 6, 6)
    x = images(shape, seed=24, dtype=torch.float64).requires_grad_(True)
    params = unapplied_params(t, shape, seed=25)
    params = dataclasses.replace(params, applied=torch.ones(2, dtype=torch.bool))
    if isinstance(params, LabelParams):
        params = LabelParams.of(torch.tensor([t.num_classes - 1, 1]))
    if e.grad_params is not None:
        params = e.grad_params(params)
    assert torch.autograd.gradcheck(lambda v: t.apply(v, params), (x,), fast_mode=True)
    if isinstance(t, Family):
        assert torch.autograd.gradcheck(t.apply_all, (x[:1].detach().requires_grad_(True),), fast_mode=True)
    mixed = unapplied_params(t, shape, seed=26)
    out = t.apply(x, mixed)
    if out.shape == x.shape:
        (grad,) = torch.autograd.grad(out.sum(), x)
        assert torch.equal(grad[~mixed.applied], torch.ones_like(grad[~mixed.applied]))


@pytest.mark.parametrize("name", ["color-jitter", "color-jitter-pairs"])
def test_gradients_flow_through_the_float32_hue(name: str) -> None:
    t = build(entry(name))
    x = images((3, 3, 6, 6), seed=27).requires_grad_(True)
    params = t.sample(x.shape, generator=torch.Generator().manual_seed(28))
    params = dataclasses.replace(params, applied=torch.ones(3, dtype=torch.bool))
    (grad,) = torch.autograd.grad((t.apply(x, params) * torch.arange(x.numel()).view_as(x)).sum(), x)
    assert bool(torch.isfinite(grad).all()) and grad.abs().sum() > 0


# -- the fast forms: the same bits ---------------------------------------------------------------------------------


FAST_DTYPES = (torch.float32, torch.float16, torch.uint8, torch.int64, torch.bool)


@pytest.mark.parametrize("layout", list(LAYOUTS), ids=str)
@pytest.mark.parametrize("e", PIXEL_MOVES, ids=repr)
def test_fast_forms_give_the_same_bits(e: Entry, layout: str) -> None:
    """Random labels, odd and large sizes (runs of 8 pixels and more take the run lookup), batches of 0, 1 and 5,
    several dtypes; ``apply`` and ``apply_all``."""
    t = build(e)
    for i, (h, w) in enumerate([(7, 9), (16, 24), (24, 24)]):
        for batch in (0, 1, 5):
            dtype = FAST_DTYPES[(i + batch) % len(FAST_DTYPES)]
            shape = shape_for(e, batch, h, w)
            x = images(shape, seed=h + batch, dtype=dtype).contiguous(memory_format=LAYOUTS[layout])
            labels = torch.randint(t.num_classes, (batch,), generator=torch.Generator().manual_seed(w))
            plain, plain_all = t.apply(x, labels), t.apply_all(x)
            with essl_aug.fast_forms():
                assert _fast.active(x)
                fast, fast_all = t.apply(x, labels), t.apply_all(x)
            assert torch.equal(bits(fast), bits(plain)) and fast.stride() == plain.stride()
            assert torch.equal(bits(fast_all), bits(plain_all))


def test_the_switch_is_explicit_and_scoped() -> None:
    x = torch.rand(2, 3, 4, 4)
    assert not _fast.active(x)
    with essl_aug.fast_forms():
        assert _fast.active(x)
        assert not _fast.active(x.clone().requires_grad_(True))  # autograd takes the plain form
        with essl_aug.fast_forms(False):
            assert not _fast.active(x)
        assert _fast.active(x)
    assert not _fast.active(x)
    previous = essl_aug.set_fast_forms(True)
    try:
        assert previous is False and _fast.active(x)
    finally:
        essl_aug.set_fast_forms(previous)
    assert not _fast.active(x)

    @essl_aug.fast_forms()
    def decorated() -> bool:
        return _fast.active(x)

    assert decorated() and not _fast.active(x)
    for bad in (1, "yes", None):
        with pytest.raises(TypeError, match=r"`enabled` must be True or False"):
            essl_aug.set_fast_forms(bad)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"`enabled` must be True or False"):
            essl_aug.fast_forms(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["rotation90", "d4", "hflip", "rotation90-x-vflip", "rotation90-x-hflip"])
def test_the_strided_lookup_matches_the_gather_at_the_storage_edges(name: str) -> None:
    """The row-and-column lookup reads a strided view that can pass the end of the storage: the last images are
    copied first. Every case gives the gather's bits."""
    t = build(entry(name))
    plan = lookups.plan(PlanCache(), "key", lambda: t.table(8, 8), 8, torch.device("cpu"))
    assert plan.offsets is not None  # these tables split into row and column offsets
    gen = torch.Generator().manual_seed(0)
    base = torch.rand(6, 3, 8, 8, generator=gen)
    labels = torch.randint(0, t.num_classes, (6,), generator=gen)
    cases = {
        "whole storage": base,
        "inside a larger storage": base[:4],
        "from the second image": base[2:],
        "channels last": base.contiguous(memory_format=torch.channels_last),
        "one image": base[5:],
        "columns two apart": torch.rand(2, 3, 8, 16, generator=gen)[:, :, :, ::2],
    }
    for case, x in cases.items():
        lab = labels[: x.shape[0]]
        assert torch.equal(lookups.lookup_pixels(x, lab, plan), permute_pixels(x, lab, plan.table)), case


@pytest.mark.parametrize("name", ["vflip", "jigsaw", "translation", "jigsaw-clockwise"])
def test_the_run_lookup_matches_the_gather(name: str) -> None:
    t = build(entry(name))
    plan = lookups.plan(PlanCache(), "key", lambda: t.table(16, 16), 16, torch.device("cpu"))
    assert plan.units is not None and plan.run >= lookups.MIN_RUN  # runs of pixels move intact
    labels = torch.randint(0, t.num_classes, (5,), generator=torch.Generator().manual_seed(1))
    for dtype in (torch.float32, torch.float16, torch.uint8, torch.float64):
        for x in (
            images((5, 3, 16, 16), seed=2, dtype=dtype),
            images((5, 3, 16, 16), seed=2, dtype=dtype).contiguous(memory_format=torch.channels_last),
            images((5, 4, 16, 16), seed=2, dtype=dtype)[:, :3],  # neither format: the gather
        ):
            expected = permute_pixels(x, labels, plan.table)
            got = lookups.lookup_rows(x, labels, plan.units, plan.run)
            assert torch.equal(bits(got), bits(expected)) and got.stride() == expected.stride()


def test_the_jigsaw_does_not_split_into_row_and_column_offsets() -> None:
    assert lookups.separable_split(build(entry("jigsaw")).table(4, 4), 4, 4) is None
    assert lookups.separable_split(build(entry("rotation90")).table(4, 4), 4, 4) is not None


# -- copies ------------------------------------------------------------------------------------------------------------


@ENTRY
def test_pickle_and_deepcopy_travel_without_caches_and_give_the_same_result(e: Entry) -> None:
    t = build(e)
    x = images(shape_for(e, 3, 10, 12), seed=29)
    params = t.sample(x.shape, generator=torch.Generator().manual_seed(30))
    expected = t.apply(x, params)
    for clone in (pickle.loads(pickle.dumps(t)), copy.deepcopy(t)):
        assert isinstance(clone, Transformation) and type(clone) is type(t)
        for cache in (v for v in vars(clone).values() if isinstance(v, PlanCache)):
            assert len(cache) == 0
        assert torch.equal(clone.apply(x, params), expected)
        assert repr(clone) == repr(t)
