"""The names renamed in this release: each old name warns (``DeprecationWarning``) and resolves to its new object."""

from __future__ import annotations

import importlib

import essl_aug.adapters.loader as L
import pytest
import torch

import essl_aug
import essl_aug.augment
import essl_aug.transforms as T
import essl_aug.views as V
from essl_aug import functional as EF

TOP_LEVEL = {
    "Rotation": T.RandomRotation90,
    "VerticalFlip": T.RandomVerticalFlip,
    "HorizontalFlip": T.RandomHorizontalFlip,
    "Jigsaw": T.RandomJigsaw,
    "BlurLevels": T.RandomBlurLevels,
    "Inversion": T.RandomInvert,
    "Grayscale": T.RandomGrayscale,
    "PeriodicTranslation": T.RandomPeriodicTranslation,
    "D4": T.RandomD4,
    "TransformFamily": T.Family,
    "GroupFamily": T.Group,
    "PixelPermutationFamily": T.PixelMove,
}

AUGMENT = {
    "Augmentation": T.Transformation,
    "HorizontalFlip": T.RandomHorizontalFlip,
    "GaussianBlur": T.RandomGaussianBlur,
    "Solarize": T.RandomSolarize,
    "FlipParams": T.LabelParams,
    "GrayscaleParams": T.LabelParams,
    "SolarizeParams": T.Params,
    "BlurParams": T.BlurParams,
    "ColorJitter": T.ColorJitter,
    "ColorJitterParams": T.ColorJitterParams,
    "CropParams": T.CropParams,
    "Params": T.Params,
    "RandomGrayscale": T.RandomGrayscale,
    "RandomResizedCrop": T.RandomResizedCrop,
    "RandomRotation": T.RandomRotation,
    "RotationParams": T.RotationParams,
    "TargetSpec": T.TargetSpec,
    "IMAGENET_NORMALIZE": V.IMAGENET_NORMALIZE,
    "RECIPES": V.RECIPES,
    "TwoViews": V.TwoViews,
    "ViewPipeline": V.ViewPipeline,
    "Views": V.Views,
    "ViewsDataset": L.ViewsDataset,
    "byol": V.byol,
    "collate_views": L.collate_views,
    "recipe": V.recipe,
    "simclr": V.simclr,
}


@pytest.mark.parametrize(("old", "new"), list(TOP_LEVEL.items()), ids=list(TOP_LEVEL))
def test_top_level_aliases_warn_and_resolve(old: str, new: object) -> None:
    with pytest.warns(DeprecationWarning, match=rf"essl_aug\.{old} is deprecated .*; use essl_aug\.transforms\."):
        assert getattr(essl_aug, old) is new
    assert old not in essl_aug.__all__


@pytest.mark.parametrize(("old", "new"), list(AUGMENT.items()), ids=list(AUGMENT))
def test_augment_aliases_warn_and_resolve(old: str, new: object) -> None:
    with pytest.warns(DeprecationWarning, match=rf"essl_aug\.augment\.{old} is deprecated"):
        assert getattr(essl_aug.augment, old) is new


@pytest.mark.parametrize(("module", "home"), [("pipeline", "essl_aug.views"), ("recipes", "essl_aug.views")])
def test_augment_submodules_are_the_new_modules(module: str, home: str) -> None:
    new = importlib.import_module(f"{home}.{module}")
    assert importlib.import_module(f"essl_aug.augment.{module}") is new
    assert getattr(essl_aug.augment, module) is new


def test_unknown_names_still_raise_attribute_errors() -> None:
    with pytest.raises(AttributeError, match=r"module 'essl_aug' has no attribute 'Rotations'"):
        essl_aug.Rotations  # noqa: B018
    with pytest.raises(AttributeError, match=r"module 'essl_aug.augment' has no attribute 'Flip'"):
        essl_aug.augment.Flip  # noqa: B018


def test_the_old_rotation_classes_still_work() -> None:
    x = torch.rand(2, 3, 4, 4)
    with pytest.warns(DeprecationWarning):
        rotation = essl_aug.Rotation()
    assert torch.equal(rotation.apply(x, torch.tensor([1, 3])), T.RandomRotation90().apply(x, torch.tensor([1, 3])))


def test_rotate_with_integer_labels_warns_and_turns_by_quarter_turns() -> None:
    x = torch.rand(3, 2, 5, 5)
    labels = torch.tensor([0, 1, 3])
    with pytest.warns(
        DeprecationWarning, match=r"rotate\(x, labels\) with integer quarter-turn labels is now .*rotate90"
    ):
        turned = EF.rotate(x, labels)
    assert torch.equal(turned, EF.rotate90(x, labels))
