"""The ``essl:`` block (``essl_aug.config``): every key, its checks and errors, and what it builds (the objectives by
name, the views, the extra view)."""

from __future__ import annotations

import pickle
from typing import Any

import pytest
import torch
from torch import nn

from essl_aug import config
from essl_aug.config import (
    DEFAULTS,
    OBJECTIVES,
    ESSLConfig,
    build_objectives,
    check_provided,
    log_keys,
    parse_json,
    register_objective,
)
from essl_aug.objectives import (
    ESSL,
    AugSelf,
    Objective,
    ObjectiveOutput,
    Objectives,
    RelativePredictor,
    StepInputs,
)
from essl_aug.transforms import ColorJitter, RandomResizedCrop, RandomRotation, RandomRotation90
from essl_aug.views import IMAGENET_NORMALIZE, TwoViews, ViewPipeline


class Probe(Objective):
    """An objective registered for the tests: it records what its constructor was given."""

    requires = frozenset({"features"})

    def __init__(
        self, in_features: int, weight: float = 1.0, augmentations: Any = None, embedding_dim: int | None = None
    ) -> None:
        super().__init__(weight)
        self.given = {"in_features": in_features, "augmentations": augmentations, "embedding_dim": embedding_dim}

    def compute(self, inputs: StepInputs) -> ObjectiveOutput:
        return ObjectiveOutput(torch.zeros(()), {})


class Open(Objective):
    """An objective taking any keyword: it gets ``in_features`` from the context and nothing else."""

    def __init__(self, weight: float = 1.0, **options: Any) -> None:
        super().__init__(weight)
        self.options = options

    def compute(self, inputs: StepInputs) -> ObjectiveOutput:
        return ObjectiveOutput(torch.zeros(()), {})


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> dict[str, type[Objective]]:
    """A copy of the registry for the test, with ``probe`` and ``open`` registered."""
    copy = dict(OBJECTIVES)
    monkeypatch.setattr(config, "OBJECTIVES", copy)
    register_objective("probe", Probe)
    register_objective("open", Open)
    return copy


# -- from_mapping: the keys ------------------------------------------------------------------------------------------


def test_defaults_are_the_reference_objective() -> None:
    c = ESSLConfig.from_mapping({})
    assert (c.weight, c.transform, c.mode, c.hidden, c.crop_size, c.crop_scale, c.source, c.view) == (
        0.4,
        "rotation",
        "all",
        (2048, 2048),
        None,
        None,
        "gpu",
        0,
    )
    assert c.views is None and c.objectives == {} and c.num_classes == 4
    assert isinstance(c.transformation, RandomRotation90)
    assert c.active and c.enabled
    assert ESSLConfig.from_mapping(None) == c
    assert set(DEFAULTS) == {
        "lambda",
        "transform",
        "mode",
        "balanced",
        "num_per_batch",
        "batch_fraction",
        "hidden_dim",
        "crop_size",
        "crop_scale",
        "source",
        "view",
        "views",
        "objectives",
        "seed",
        "layer",
    }
    assert c.as_mapping() == {**DEFAULTS, "hidden_dim": [2048, 2048]}


def test_every_key_is_read() -> None:
    block = {
        "lambda": 0.25,
        "transform": {"name": "jigsaw", "permutations": [0, 7, 16, 23]},
        "mode": "random",
        "hidden_dim": [64, 32],
        "crop_size": 12,
        "crop_scale": [0.1, 0.5],
        "source": "gpu",
        "view": 1,
        "views": {"name": "byol", "size": 16},
        "objectives": {"augself": {"weight": 0.5}},
    }
    c = ESSLConfig.from_mapping(block)
    assert (c.weight, c.mode, c.hidden, c.crop_size, c.crop_scale, c.source, c.view) == (
        0.25,
        "random",
        (64, 32),
        12,
        (0.1, 0.5),
        "gpu",
        1,
    )
    assert c.transform == {"name": "jigsaw", "permutations": [0, 7, 16, 23]} and c.num_classes == 4
    assert c.views == {"name": "byol", "size": 16} and c.objectives == {"augself": {"weight": 0.5}}
    with pytest.raises(ValueError, match=r"essl\.source: extra_crop is gone; its successor is essl\.views"):
        ESSLConfig.from_mapping({"source": "extra_crop"})


def test_merge_order_and_round_trip() -> None:
    c = ESSLConfig.from_mapping({"view": 1}, defaults={"lambda": 0.1, "view": 0, "hidden_dim": [64, 32]})
    assert (c.weight, c.view, c.hidden) == (0.1, 1, (64, 32))
    assert ESSLConfig.from_mapping(c.as_mapping()) == c
    assert not ESSLConfig.from_mapping({"lambda": 0}).active
    full = ESSLConfig.from_mapping(
        {
            "lambda": 0.3,
            "transform": "rotation,vflip",
            "crop_scale": [0.2, 1.0],
            "views": "simclr",
            "objectives": {"augself": {"groups": ["crop"]}, "angle": {"objective": "essl", "transform": "zoom"}},
        }
    )
    mapping = full.as_mapping()
    assert mapping["lambda"] == 0.3 and mapping["transform"] == ["rotation", "vflip"]
    assert mapping["crop_scale"] == [0.2, 1.0] and mapping["views"] == {"name": "simclr"}
    assert ESSLConfig.from_mapping(mapping) == full
    mapping["objectives"]["augself"]["groups"].append("color")  # a copy: the config does not change
    assert full.objectives["augself"]["groups"] == ["crop"]


def test_lambda_is_read_by_key_and_is_the_weight() -> None:
    assert ESSLConfig.from_mapping({"lambda": 0.5}).weight == 0.5
    assert ESSLConfig.from_mapping({"lambda": 1}).weight == 1.0
    with pytest.raises(ValueError, match=r"unknown essl setting\(s\) \['weight'\]; valid keys are \[.*'lambda'"):
        ESSLConfig.from_mapping({"weight": 0.5})


@pytest.mark.parametrize(
    ("value", "expected", "classes"),
    [
        ("jigsaw", "jigsaw", 24),
        ("rotation,vflip", ["rotation", "vflip"], 8),
        ("rotation, vflip", ["rotation", "vflip"], 8),
        ('["rotation", "hflip"]', ["rotation", "hflip"], 8),
        ('{"name": "jigsaw", "permutations": [0, 7, 16, 23]}', {"name": "jigsaw", "permutations": [0, 7, 16, 23]}, 4),
        ({"name": "blur"}, {"name": "blur"}, 4),
        (["rotation", "vflip"], ["rotation", "vflip"], 8),
        ("random_rotation", "random_rotation", 2),
        ('{"name": "random_rotation", "degrees": 30}', {"name": "random_rotation", "degrees": 30}, 2),
        ("zoom", "zoom", 4),
    ],
)
def test_transform_specs(value: Any, expected: Any, classes: int) -> None:
    c = ESSLConfig.from_mapping({"transform": value})
    assert c.transform == expected and c.num_classes == classes


@pytest.mark.parametrize(("value", "hidden"), [(64, (64, 64)), ([64], (64,)), ([32, 16, 8], (32, 16, 8))])
def test_hidden_dim_is_one_width_twice_or_a_list(value: Any, hidden: tuple[int, ...]) -> None:
    c = ESSLConfig.from_mapping({"hidden_dim": value})
    assert c.hidden == hidden
    objectives = c.build_objectives(in_features=8)
    assert objectives is not None
    head = objectives.objectives["essl"].head
    widths = [m.out_features for m in head.modules() if isinstance(m, nn.Linear)]
    assert widths == [*hidden, 4]


@pytest.mark.parametrize(
    ("block", "match"),
    [
        ({"lambda": -0.1}, r"essl\.lambda: `weight` must be a finite number >= 0 \(reference: 0\.4\)"),
        ({"lambda": True}, r"essl\.lambda"),
        ({"lambda": float("nan")}, r"essl\.lambda"),
        ({"lambda": "0.4"}, r"essl\.lambda"),
        ({"mode": "every"}, r"essl\.mode must be 'all' or 'random', got 'every'"),
        ({"source": "dataloader"}, r"essl\.source must be one of \['gpu', 'views'\]"),
        ({"view": -1}, r"essl\.view must be a view index >= 0"),
        ({"view": True}, r"essl\.view"),
        ({"crop_size": 1}, r"essl\.crop_size must be null or an integer >= 2 \(reference CIFAR-10: 16\)"),
        ({"crop_size": True}, r"essl\.crop_size"),
        ({"crop_size": 16, "crop_scale": [0.5, 0.2]}, r"essl\.crop_scale must be null or \[lo, hi\]"),
        ({"crop_scale": [0.2, 1.5]}, r"essl\.crop_scale"),
        ({"crop_scale": 0.2}, r"essl\.crop_scale"),
        ({"hidden_dim": 0}, r"essl\.hidden_dim: `hidden` widths must be positive integers"),
        ({"hidden_dim": []}, r"essl\.hidden_dim must be a positive integer or a list of them"),
        ({"hidden_dim": True}, r"essl\.hidden_dim"),
        ({"transform": "spin"}, r"essl\.transform: unknown family name 'spin'; choose one of \["),
        ({"transform": "[rotation"}, r"essl\.transform: '\[rotation' is not valid JSON"),
        ({"lamb": 0.4}, r"unknown essl setting\(s\) \['lamb'\]; valid keys are"),
        (
            {"views": "moco"},
            r"essl\.views: unknown recipe 'moco'; the recipes are \['byol', 'dino', 'simclr', 'swav'\]",
        ),
        ({"views": 3}, r"essl\.views must be null, a recipe name \(byol or dino or simclr or swav\) or a mapping"),
        ({"views": {"name": "simclr", "jitter": 0.5}}, r"essl\.views: .*jitter"),
        ({"views": {"name": "simclr", "blur": 2}}, r"essl\.views: .*probability"),
        ({"views": "simclr", "source": "extra_crop"}, r"essl\.source: extra_crop is gone"),
        ({"objectives": [1]}, r"essl\.objectives must be a mapping \{name: \{option: value\}\}"),
        ({"objectives": "{bad"}, r"essl\.objectives: '\{bad' is not valid JSON"),
        ({"objectives": {"augself": 3}}, r"essl\.objectives\.augself must be a mapping of the objective's options"),
        ({"objectives": {"foo": {}}}, r"essl\.objectives\.foo: unknown objective 'foo'; the objectives are \["),
        ({"objectives": {"x": {"objective": "nope"}}}, r"essl\.objectives\.x: unknown objective 'nope'"),
        ({"objectives": {"essl": {}}}, r"essl\.objectives\.essl: 'essl' is the E-SSL term, set by the block's own"),
        (
            {"views": "simclr", "objectives": {"augself": {"bogus": 1}}},
            r"essl\.objectives\.augself: unknown option\(s\) \['bogus'\]; AugSelf takes \[",
        ),
    ],
)
def test_bad_settings_name_the_key_and_the_fix(block: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ESSLConfig.from_mapping(block)


def test_the_block_and_its_defaults_must_be_mappings() -> None:
    with pytest.raises(TypeError, match="the essl block must be a mapping of settings, got list"):
        ESSLConfig.from_mapping(["lambda", 0.4])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="got str"):
        ESSLConfig.from_mapping({}, defaults="lambda")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"unknown essl setting\(s\) \['lamda'\]"):
        ESSLConfig.from_mapping({}, defaults={"lamda": 0.4})


def test_views_are_checked_by_building_and_kept_as_given() -> None:
    assert ESSLConfig.from_mapping({"views": "simclr"}).views == {"name": "simclr"}
    assert ESSLConfig.from_mapping({"views": '{"name": "byol", "size": 16}'}).views == {"name": "byol", "size": 16}
    spec = {"name": "simclr", "scale": [0.2, 1.0], "normalize": [[0.5, 0.5, 0.5], [0.25, 0.25, 0.25]]}
    assert ESSLConfig.from_mapping({"views": spec}).views == spec
    c = ESSLConfig.from_mapping({"lambda": 0, "views": "byol"})
    assert not c.active and c.enabled  # the views change the run though the E-SSL term is off


@pytest.mark.parametrize("name", ["augself", "predictor"])
def test_objectives_needing_params_need_the_views(name: str) -> None:
    """Both always need the views' parameters (the predictor's ``requires`` depends on its source, but its class
    default says so too)."""
    assert "params" in OBJECTIVES[name].requires
    with pytest.raises(ValueError, match=rf"essl\.objectives\.{name} needs params.*set essl\.views \(simclr or byol\)"):
        ESSLConfig.from_mapping({"objectives": {name: {}}})
    with pytest.raises(ValueError, match=r"essl\.objectives\.mine needs params"):
        ESSLConfig.from_mapping({"objectives": {"mine": {"objective": name}}})
    assert ESSLConfig.from_mapping({"views": "simclr", "objectives": {name: None}}).objectives == {name: {}}


# -- what the block builds ---------------------------------------------------------------------------------------------


def test_the_essl_term_is_built_only_when_lambda_is_positive() -> None:
    c = ESSLConfig.from_mapping({"lambda": 0.3, "transform": "rotation,vflip", "mode": "random", "hidden_dim": 16})
    objectives = c.build_objectives(in_features=8)
    assert isinstance(objectives, Objectives) and list(objectives.objectives) == ["essl"]
    essl = objectives.objectives["essl"]
    assert isinstance(essl, ESSL) and essl.weight == 0.3 and essl.num_classes == 8
    assert essl.transform.mode == "random" and essl.head.in_features == 8
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    out = objectives(StepInputs(backbone=net, extra=torch.rand(4, 3, 8, 8)))
    assert sorted(out.logs) == ["essl/acc", "essl/ce", "essl/loss"]
    assert ESSLConfig.from_mapping({"lambda": 0}).build_objectives(in_features=8) is None
    only_others = ESSLConfig.from_mapping({"lambda": 0, "views": "simclr", "objectives": {"augself": {}}})
    built = only_others.build_objectives(in_features=8)
    assert built is not None and list(built.objectives) == ["augself"]


def test_a_continuous_transform_builds_the_regression_term() -> None:
    c = ESSLConfig.from_mapping({"transform": "random_rotation", "hidden_dim": [16]})
    objectives = c.build_objectives(in_features=8)
    assert objectives is not None
    essl = objectives.objectives["essl"]
    assert isinstance(essl, ESSL) and isinstance(essl.transform, RandomRotation) and essl.spec.circular
    with pytest.raises(ValueError, match=r"essl\.transform: .*never varies"):
        ESSLConfig.from_mapping({"transform": {"name": "random_rotation", "degrees": [5, 5]}}).build_objectives(8)


def test_objectives_by_name_with_objective_selecting_the_class() -> None:
    c = ESSLConfig.from_mapping(
        {
            "lambda": 0,
            "views": "simclr",
            "objectives": {
                "augself": {"weight": 0.5, "groups": ["crop", "flip"]},
                "angle": {"objective": "essl", "transform": "random_rotation", "hidden": [8], "weight": 0.2},
                "eq": {"objective": "predictor", "dim": 4, "hidden": [8]},
            },
        }
    )
    built = c.build_objectives(in_features=8)
    assert built is not None and list(built.objectives) == ["augself", "angle", "eq"]
    augself, angle, eq = (built.objectives[k] for k in ("augself", "angle", "eq"))
    assert isinstance(augself, AugSelf) and augself.weight == 0.5 and list(augself.groups) == ["crop", "flip"]
    assert isinstance(angle, ESSL) and isinstance(angle.transform, RandomRotation) and angle.weight == 0.2
    assert isinstance(eq, RelativePredictor) and eq.in_features == 8
    assert c.objectives["angle"]["objective"] == "essl"  # kept as given


def test_context_fills_the_arguments_the_options_do_not_set(registry: dict[str, type[Objective]]) -> None:
    views = TwoViews(ViewPipeline([RandomResizedCrop(8)]))
    spec = {"probe": {"weight": 0.5}, "open": {"scale": 2}}
    built = build_objectives(spec, {"in_features": 8, "embedding_dim": 4, "augmentations": views, "other": 1})
    probe, open_ = built["probe"], built["open"]
    assert isinstance(probe, Probe) and isinstance(open_, Open)
    assert probe.given == {"in_features": 8, "augmentations": views, "embedding_dim": 4} and probe.weight == 0.5
    assert open_.options == {"in_features": 8, "scale": 2}  # a **kwargs constructor: in_features only
    mine = build_objectives({"probe": {"in_features": 5}}, {"in_features": 8})["probe"]
    assert isinstance(mine, Probe) and mine.given["in_features"] == 5  # the options win


def test_source_embeddings_takes_the_embedding_width() -> None:
    context = {"in_features": 8, "embedding_dim": 6}
    built = build_objectives(
        {
            "emb": {"objective": "predictor", "source": "embeddings", "split": 2},
            "feat": {"objective": "predictor", "source": "features", "dim": 4, "hidden": [8]},
        },
        context,
    )
    emb, feat = built["emb"], built["feat"]
    assert isinstance(emb, RelativePredictor) and emb.in_features == 6 and emb.requires == {"embeddings", "params"}
    assert isinstance(feat, RelativePredictor) and feat.in_features == 8
    c = ESSLConfig.from_mapping({"lambda": 0, "views": "simclr", "objectives": {"predictor": {"source": "embeddings"}}})
    objectives = c.build_objectives(in_features=8, embedding_dim=6)
    assert objectives is not None and objectives.objectives["predictor"].in_features == 6


def test_constructor_errors_are_reraised_under_the_objectives_key(registry: dict[str, type[Objective]]) -> None:
    with pytest.raises(ValueError, match=r"essl\.objectives\.augself: AugSelf: `groups` must name at least one of"):
        build_objectives({"augself": {"groups": ["zoomz"]}}, {"in_features": 8})
    with pytest.raises(ValueError, match=r"essl\.objectives\.angle: unknown family name 'spin'"):
        build_objectives({"angle": {"objective": "essl", "transform": "spin"}}, {"in_features": 8})
    with pytest.raises(ValueError, match=r"essl\.objectives\.probe: .*in_features"):
        build_objectives({"probe": {}}, {})  # a required argument nobody gave
    c = ESSLConfig.from_mapping({"views": "simclr", "objectives": {"augself": {"weight": -1}}})
    with pytest.raises(ValueError, match=r"essl\.objectives\.augself: `weight` must be a finite number >= 0"):
        c.build_objectives(in_features=8)


def test_build_views() -> None:
    c = ESSLConfig.from_mapping({"views": "byol"})
    two = c.build_views(32)
    assert isinstance(two, TwoViews) and [p["solarize"].p for p in two.pipelines] == [0.0, 0.2]
    assert two.pipelines[0]["resized_crop"].size == (32, 32)
    sized = ESSLConfig.from_mapping({"views": {"name": "simclr", "size": 16, "scale": [0.2, 1.0]}}).build_views(32)
    assert sized is not None
    crop = sized.pipelines[0]["resized_crop"]
    assert isinstance(crop, RandomResizedCrop) and crop.size == (16, 16) and crop.scale == (0.2, 1.0)  # the block's
    normalize = [[0.5, 0.5, 0.5], [0.25, 0.25, 0.25]]
    custom = ESSLConfig.from_mapping({"views": {"name": "simclr", "normalize": normalize, "jitter_strength": 0.5}})
    built = custom.build_views(16)
    assert built is not None and built.pipelines[0].normalize == ((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    jitter = built.pipelines[0]["color_jitter"]
    assert isinstance(jitter, ColorJitter) and jitter.brightness == pytest.approx((0.6, 1.4))
    assert ESSLConfig.from_mapping({}).build_views(32) is None
    with pytest.raises(ValueError, match=r"essl\.views needs the crops' size: give it in the block"):
        c.build_views(None)


def test_extra_view_follows_crop_size_and_crop_scale() -> None:
    reference = ESSLConfig.from_mapping({}).extra_view(32, photometric=True)
    assert reference.names == ("resized_crop", "hflip", "color_jitter", "grayscale") and reference.normalize is None
    crop = reference["resized_crop"]
    assert isinstance(crop, RandomResizedCrop) and crop.size == (16, 16) and crop.scale == (0.2, 1.0)
    imagenet = ESSLConfig.from_mapping({}).extra_view(224, photometric=True, normalize=IMAGENET_NORMALIZE)
    assert imagenet["resized_crop"].size == (96, 96) and imagenet.normalize == IMAGENET_NORMALIZE
    assert "gaussian_blur" in imagenet.names
    c = ESSLConfig.from_mapping({"crop_size": 12, "crop_scale": [0.3, 0.9]})
    pipe = c.extra_view(32, photometric=False)
    assert pipe.names == ("resized_crop", "hflip")
    crop = pipe["resized_crop"]
    assert isinstance(crop, RandomResizedCrop) and crop.size == (12, 12) and crop.scale == (0.3, 0.9)
    view, _ = pipe(torch.rand(2, 3, 32, 32))
    assert view.shape == (2, 3, 12, 12)
    with pytest.raises(ValueError, match=r"essl\.crop_size: `main_size` must be the SSL views' crop size"):
        ESSLConfig.from_mapping({}).extra_view(1, photometric=True)


def test_check_provided_names_the_missing_input_and_how_to_provide_it(registry: dict[str, type[Objective]]) -> None:
    objectives = Objectives(
        {
            "augself": AugSelf(8, groups=("crop",)),
            "pred": RelativePredictor(8, source="embeddings", split=2),
            "probe": Probe(8),
        }
    )
    check_provided(objectives, frozenset({"features", "embeddings", "params"}))  # all there: no error
    with pytest.raises(ValueError, match=r"essl\.objectives\.augself needs params \(the views' augmentation"):
        check_provided(objectives, frozenset({"features", "embeddings"}))
    with pytest.raises(ValueError, match=r"essl\.objectives\.pred needs embeddings \(the projector's outputs"):
        check_provided(objectives, frozenset({"features", "params"}))
    with pytest.raises(ValueError, match=r"essl\.objectives\.probe needs features \(features: not provided"):
        check_provided(Objectives({"probe": Probe(8)}), frozenset({"params"}))


def test_register_objective(registry: dict[str, type[Objective]]) -> None:
    assert registry["probe"] is Probe and config.OBJECTIVES is registry
    c = ESSLConfig.from_mapping({"objectives": {"probe": {"weight": 0.25}}})  # needs no params: no views needed
    built = c.build_objectives(in_features=8)
    assert built is not None and isinstance(built.objectives["probe"], Probe)
    assert built.objectives["probe"].weight == 0.25
    for name in ("", "a/b", "a.b", 3):
        with pytest.raises(ValueError, match=r"`name` must be a non-empty string without '/' or '\.'"):
            register_objective(name, Probe)  # type: ignore[arg-type]
    for cls in (int, Probe(8), nn.Linear):
        with pytest.raises(TypeError, match="`cls` must be an essl_aug Objective class"):
            register_objective("x", cls)  # type: ignore[arg-type]


def test_the_registry_holds_the_objectives() -> None:
    assert OBJECTIVES["essl"] is ESSL and OBJECTIVES["augself"] is AugSelf
    assert OBJECTIVES["predictor"] is RelativePredictor and set(OBJECTIVES) >= {"essl", "augself", "predictor"}


def test_log_keys_and_parse_json() -> None:
    logs = {"augself/loss": torch.tensor(1.0), "essl/acc": torch.tensor(0.5)}
    keys = log_keys(logs, "train")
    assert list(keys) == ["train_augself_loss", "train_essl_acc"] and keys["train_essl_acc"] is logs["essl/acc"]
    assert parse_json("[1, 2]", "essl.x") == [1, 2] and parse_json(' {"a": 1}', "essl.x") == {"a": 1}
    assert parse_json("rotation", "essl.x") == "rotation" and parse_json(3, "essl.x") == 3
    with pytest.raises(ValueError, match=r"essl\.x: '\[1,' is not valid JSON"):
        parse_json("[1,", "essl.x")


def test_balanced_and_num_per_batch_reach_the_essl_term() -> None:
    c = ESSLConfig.from_mapping({"transform": "jigsaw", "mode": "all", "num_per_batch": 4})
    essl = c.build_objectives(in_features=8).objectives["essl"]
    assert essl.transform.num_per_batch == 4 and c.as_mapping()["num_per_batch"] == 4
    balanced = ESSLConfig.from_mapping({"mode": "random", "balanced": True}).build_objectives(in_features=8)
    assert balanced.objectives["essl"].transform.balanced is True
    for block, match in (
        ({"balanced": "yes"}, r"essl\.balanced must be true or false"),
        ({"num_per_batch": 0}, r"essl\.num_per_batch must be null or a positive integer"),
        ({"num_per_batch": True}, r"essl\.num_per_batch must be null or a positive integer"),
    ):
        with pytest.raises(ValueError, match=match):
            ESSLConfig.from_mapping(block)


@pytest.mark.parametrize(
    ("transform", "flips"),
    [
        ("rotation", True),
        ("vflip", True),
        ("jigsaw", True),
        ("blur", True),
        ("random_rotation", True),
        ("hflip", False),
        ("d4", False),
        (["rotation", "vflip"], False),  # the dihedral group holds the horizontal mirror (rot180 then vflip)
        (["hflip", "invert"], False),
    ],
)
def test_the_extra_view_is_not_flipped_when_the_family_holds_the_mirror(transform: object, flips: bool) -> None:
    names = ESSLConfig.from_mapping({"transform": transform}).extra_view(32, photometric=True).names
    assert ("hflip" in names) is flips


def test_a_step_with_its_own_params_may_declare_objectives_that_read_them() -> None:
    with pytest.raises(ValueError, match=r"essl\.objectives\.augself needs params"):
        ESSLConfig.from_mapping({"objectives": {"augself": {}}})
    c = ESSLConfig.from_mapping({"objectives": {"augself": {}}}, has_params=True)
    assert list(c.objectives) == ["augself"]


@pytest.mark.parametrize("transform", ["rotation", "random_rotation", "gaussian_blur", "zoom"])
def test_every_objective_built_by_name_pickles_with_its_weights(transform: str) -> None:
    """DDP spawn and checkpoints pickle the model: no local function may hide in an objective."""
    spec = {
        "extra": {"objective": "essl", "transform": transform, "hidden": [16]},
        "augself": {"hidden": [16]},
        "pred": {"objective": "predictor", "dim": 8, "hidden": [16]},
    }
    objectives = Objectives(build_objectives(spec, {"in_features": 8}))
    copy = pickle.loads(pickle.dumps(objectives))
    assert list(copy.state_dict()) == list(objectives.state_dict())
    pairs = zip(copy.state_dict().values(), objectives.state_dict().values(), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)


@pytest.mark.parametrize(("kind", "cls"), [("AugSelf", AugSelf), ("RelativePredictor", RelativePredictor)])
def test_an_objective_is_selected_by_its_class_name_too(kind: str, cls: type) -> None:
    built = build_objectives({"mine": {"objective": kind}}, {"in_features": 8})
    assert type(built["mine"]) is cls
    assert type(build_objectives({kind: None}, {"in_features": 8})[kind]) is cls


def test_views_normalize_in_a_block_is_checked_by_the_views() -> None:
    flat = {"views": {"name": "simclr", "normalize": [0.5, 0.5, 0.5, 0.2, 0.2, 0.2]}}
    with pytest.raises(ValueError, match=r"essl.views: `normalize` must be a pair \(mean, std\)"):
        ESSLConfig.from_mapping(flat).build_views(16)
    for given in ([[0.5] * 3, [0.2] * 3], {"mean": [0.5] * 3, "std": [0.2] * 3}):  # a pair, or lightly's dict
        block = ESSLConfig.from_mapping({"views": {"name": "simclr", "normalize": given}})
        assert block.build_views(16).pipelines[0].normalize == ((0.5,) * 3, (0.2,) * 3)


@pytest.mark.parametrize("seed", [-1, 1.5, True, "3"])
def test_a_bad_seed_names_the_key(seed: object) -> None:
    with pytest.raises(ValueError, match=r"essl\.seed must be null or an integer >= 0"):
        ESSLConfig.from_mapping({"seed": seed})
