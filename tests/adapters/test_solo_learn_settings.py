"""The solo-learn adapter's settings and import contract: no solo-learn, Lightning or omegaconf needed."""

from __future__ import annotations

import doctest
import subprocess
import sys

import pytest
from essl_aug.adapters import solo_learn
from essl_aug.adapters.solo_learn import DEFAULTS, EsslSettings, equivariant, install


def test_importing_the_adapter_imports_no_framework() -> None:
    code = (
        "import sys, essl_aug.adapters.solo_learn, essl_aug.adapters.solo_learn_swap_plugin as _;"
        "print(sorted(m for m in ('solo', 'omegaconf', 'lightning', 'pytorch_lightning') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


def test_docstring_examples() -> None:
    result = doctest.testmod(solo_learn, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 1 and result.failed == 0


def test_defaults_are_the_reference_objective() -> None:
    s = EsslSettings.from_mapping({})
    assert (s.lambda_, s.transform, s.mode, s.source, s.view, s.hidden, s.num_classes) == (
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
    assert (s.lambda_, s.view, s.hidden) == (0.1, 1, (64, 32))
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
