"""Objectives added to an SSL loss, each with its own weight, in one API (:mod:`~essl_aug.objectives.base`).

- :class:`ESSL`: E-SSL on an extra view, as the paper defines it for a family (cross-entropy), or by regression for a
  continuous transformation (rotation by any angle, blur sigma, a random zoom); :class:`ESSLOnViews`: the same
  element on both SSL views, predicted from their features (no extra view, no extra backbone pass);
- :class:`AugSelf`: the difference of the two SSL views' augmentation parameters from their features (AugSelf);
- :class:`PredictorEquivariance`: one view's embedding predicted from the other's and the relative parameters.

:class:`Objectives` sums several and prefixes their logs with their names.
"""

from essl_aug import _deprecated
from essl_aug.objectives.augself import AugSelf
from essl_aug.objectives.base import Objective, ObjectiveOutput, Objectives, StepInputs
from essl_aug.objectives.essl import ESSL, ESSLOnViews
from essl_aug.objectives.predictor import PredictorEquivariance

__all__ = [
    "ESSL",
    "AugSelf",
    "ESSLOnViews",
    "Objective",
    "ObjectiveOutput",
    "Objectives",
    "PredictorEquivariance",
    "StepInputs",
]

__getattr__ = _deprecated.aliases(
    "essl_aug.objectives",
    {"DiscreteESSL": "essl_aug.objectives.essl:ESSL", "ContinuousESSL": "essl_aug.objectives.essl:ContinuousESSL"},
)
