"""Objectives added to an SSL loss, each with its own weight, in one API (:mod:`~essl_aug.objectives.base`).

- :class:`DiscreteESSL`: E-SSL as the paper defines it, a discrete transformation of an extra view;
- :class:`ContinuousESSL`: its continuous form (rotation by any angle, blur sigma, crop scale) by regression;
- :class:`AugSelf`: the difference of the two SSL views' augmentation parameters from their features (AugSelf);
- :class:`PredictorEquivariance`: one view's embedding predicted from the other's and the relative parameters
  (EquiMod; SIE's invariant/equivariant split with ``split``).

:class:`Objectives` sums several and prefixes their logs with their names.
"""

from essl_aug.objectives.augself import AugSelf
from essl_aug.objectives.base import DiscreteESSL, Objective, ObjectiveOutput, Objectives, StepInputs
from essl_aug.objectives.continuous import ContinuousESSL
from essl_aug.objectives.predictor import PredictorEquivariance

__all__ = [
    "AugSelf",
    "ContinuousESSL",
    "DiscreteESSL",
    "Objective",
    "ObjectiveOutput",
    "Objectives",
    "PredictorEquivariance",
    "StepInputs",
]
