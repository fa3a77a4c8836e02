"""The solo-learn adapter's settings and import contract: no solo-learn, Lightning or omegaconf needed."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from essl_aug.adapters import solo_learn
from essl_aug.adapters.solo_learn import DEFAULTS, EsslSettings, equivariant, install, is_equivariant


def test_importing_the_adapter_imports_no_framework() -> None:
    code = (
        f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r});"
        "import essl_aug.adapters.solo_learn, solo_learn_swap_plugin as _;"
        "print(sorted(m for m in ('solo', 'omegaconf', 'lightning', 'pytorch_lightning') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


def test_defaults_are_the_reference_objective() -> None:
    s = EsslSettings.from_mapping({})
    assert (s.weight, s.transform, s.mode, s.source, s.view, s.hidden, s.num_classes) == (
        0.4,
        "rotation",
        "all",
        "gpu",
        0,
        (2048, 2048),
        4,
    )
    assert s.active and s.as_config() == DEFAULTS


def test_merge_order_and_round_trip() -> None:
    s = EsslSettings.from_mapping({"view": 1}, defaults={"lambda": 0.1, "view": 0, "hidden_dim": [64, 32]})
    assert (s.weight, s.view, s.hidden) == (0.1, 1, (64, 32))
    assert EsslSettings.from_mapping(s.as_config()) == s
    assert not EsslSettings.from_mapping({"lambda": 0}).active


@pytest.mark.parametrize(
    ("value", "expected", "classes"),
    [
        ("jigsaw", "jigsaw", 24),
        ("rotation, vflip", ["rotation", "vflip"], 8),
        ('["rotation", "hflip"]', ["rotation", "hflip"], 8),
        ('{"name": "jigsaw", "permutations": [0, 7, 16, 23]}', {"name": "jigsaw", "permutations": [0, 7, 16, 23]}, 4),
        ({"name": "blur"}, {"name": "blur"}, 4),
    ],
)
def test_transform_specs(value, expected, classes: int) -> None:
    s = EsslSettings.from_mapping({"transform": value})
    assert s.transform == expected and s.num_classes == classes


@pytest.mark.parametrize(
    ("block", "match"),
    [
        ({"lambda": -0.1}, "essl.lambda"),
        ({"lambda": True}, "essl.lambda"),
        ({"lambda": float("nan")}, "essl.lambda"),
        ({"lambda": "0.4"}, "essl.lambda"),
        ({"mode": "every"}, "essl.mode"),
        ({"source": "dataloader"}, "essl.source"),
        ({"view": -1}, "essl.view"),
        ({"crop_size": 1}, "essl.crop_size"),
        ({"crop_size": 16, "crop_scale": [0.5, 0.2]}, "essl.crop_scale"),
        ({"crop_scale": [0.2, 1.0]}, "needs essl.crop_size"),
        ({"hidden_dim": 0}, "essl.hidden_dim"),
        ({"hidden_dim": []}, "essl.hidden_dim"),
        ({"transform": "spin"}, "essl.transform: unknown family name 'spin'"),
        ({"transform": "[rotation"}, "not valid JSON"),
        ({"lamb": 0.4}, r"unknown essl setting\(s\) \['lamb'\]"),
    ],
)
def test_bad_settings_name_the_key(block: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        EsslSettings.from_mapping(block)


def test_block_must_be_a_mapping() -> None:
    with pytest.raises(TypeError, match="mapping"):
        EsslSettings.from_mapping(["lambda", 0.4])  # type: ignore[arg-type]


def test_only_solo_learn_method_classes_are_accepted() -> None:
    class NotAMethod:
        pass

    with pytest.raises(TypeError, match="BaseMethod subclass"):
        equivariant(NotAMethod)
    with pytest.raises(TypeError, match="BaseMethod subclass"):
        equivariant(len)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="mutable mapping"):
        install(("simclr",))  # type: ignore[arg-type]
    with pytest.raises(AttributeError):
        solo_learn.NotAnAttribute  # noqa: B018


def test_the_transform_is_built_once_by_the_core() -> None:
    s = EsslSettings.from_mapping({"transform": ["rotation", "vflip"], "mode": "random"})
    assert isinstance(s.equivariant_transform, solo_learn.EquivariantTransform)
    assert s.equivariant_transform.mode == "random" and s.num_classes == s.equivariant_transform.num_classes == 8


class BaseMethod:
    """The smallest class ``equivariant`` accepts: named ``BaseMethod``, with the argparse hook."""

    @staticmethod
    def add_model_specific_args(parser: object) -> object:
        return parser

    def __init__(self, **kwargs: object) -> None:
        self.kwargs = kwargs
        self.num_crops = 2
        self.features_dim = 8


class TinyMethod(BaseMethod):
    pass


def test_classes_are_made_once_and_pickle_as_module_attributes() -> None:
    plain = equivariant(TinyMethod)
    with_defaults = equivariant(TinyMethod, weight=0.3, hidden_dim=16)
    assert equivariant(TinyMethod) is plain and equivariant(plain) is plain
    assert equivariant(TinyMethod, **{"hidden_dim": 16, "lambda": 0.3}) is with_defaults
    assert with_defaults is not plain and is_equivariant(with_defaults) and not is_equivariant(TinyMethod)
    for cls in (plain, with_defaults):
        assert cls.__name__ == "EquivariantTinyMethod" and cls.__module__ == "essl_aug.adapters.solo_learn"
        assert getattr(solo_learn, cls.__qualname__) is cls
        assert pickle.loads(pickle.dumps(cls)) is cls
        assert "__reduce_ex__" not in vars(cls) and "__reduce__" not in vars(cls)
    model = with_defaults(lr=0.1)
    assert model.kwargs == {"lr": 0.1} and model.essl_settings.weight == 0.3 and model.essl.head.num_classes == 4
    clone = pickle.loads(pickle.dumps(model))
    assert type(clone) is with_defaults and clone.essl_settings == model.essl_settings
    assert not plain(lr=0.1).essl_active  # no essl_* arguments and no defaults: the original method
    for cls in (plain, with_defaults):  # a fresh process: the module attribute is not made yet; rebuilt by name
        del vars(solo_learn)[cls.__qualname__]
        rebuilt = getattr(solo_learn, cls.__qualname__)
        assert rebuilt is not cls and rebuilt.__qualname__ == cls.__qualname__
        assert equivariant(TinyMethod, **cls._essl_defaults) is rebuilt
        assert vars(rebuilt)["_essl_base"] is TinyMethod and rebuilt._essl_defaults == cls._essl_defaults
    with pytest.raises(AttributeError):
        solo_learn.EquivariantTinyMethod__7b7d  # noqa: B018  (the key {} names no method)
    with pytest.raises(TypeError, match="not both"):
        equivariant(TinyMethod, weight=0.3, **{"lambda": 0.3})
    with pytest.raises(ValueError, match=r"essl\.lambda"):
        equivariant(TinyMethod, weight=-1)


EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "solo_learn"


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_example_config_header_names_its_own_file(path: Path) -> None:
    commands = [line for line in path.read_text().splitlines() if line.startswith("#") and "--config-name" in line]
    assert commands and all(f"--config-name {path.name}" in line for line in commands)


def test_fixed_input_size_reads_timms_patch_embed() -> None:
    """The contract the adapter reads (``patch_embed.img_size``, ``strict_img_size``) on timm's own ViT."""
    timm_vit = pytest.importorskip("timm.models.vision_transformer")
    torch = pytest.importorskip("torch")
    kwargs = {"patch_size": 8, "embed_dim": 8, "depth": 1, "num_heads": 1, "num_classes": 0}
    assert solo_learn._fixed_input_size(timm_vit.VisionTransformer(img_size=16, **kwargs)) == (16, 16)
    assert (
        solo_learn._fixed_input_size(timm_vit.VisionTransformer(img_size=16, dynamic_img_size=True, **kwargs)) is None
    )
    assert solo_learn._fixed_input_size(torch.nn.Conv2d(3, 8, 3)) is None and solo_learn._fixed_input_size(None) is None
