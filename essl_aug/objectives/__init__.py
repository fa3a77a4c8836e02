"""Objectives added to an SSL loss, each with its own weight, in one API (:mod:`~essl_aug.objectives.base`).

- :class:`ESSL`: E-SSL on an extra view, as the paper defines it for a family (cross-entropy), or by regression for a
  continuous transformation (rotation by any angle, blur sigma, a random zoom); :class:`ESSLOnViews`: the same
  element on both SSL views, predicted from their features (no extra view, no extra backbone pass);
- :class:`AugSelf`: the difference of the two SSL views' augmentation parameters from their features (AugSelf);
- :class:`RelativePredictor`: one view's representation predicted from the other's and the relative parameters;
- :class:`EquiMod`: each view's embedding predicted from the un-augmented image's and the view's absolute parameters
  (EquiMod);
- :class:`SIE`: SIE's whole loss on a representation split into an invariant and an equivariant part (SIE);
- :class:`SER`: soft equivariance of an intermediate feature map under quarter turns, flips and scaling applied in
  feature space (SER);
- :class:`AtLayer`: any of them read at an intermediate layer of the backbone (SER's layer decoupling).

:class:`Objectives` sums several and prefixes their logs with their names.
"""

from essl_aug import _deprecated
from essl_aug.objectives.augself import AugSelf
from essl_aug.objectives.base import Objective, ObjectiveOutput, Objectives, StepInputs
from essl_aug.objectives.equimod import EquiMod
from essl_aug.objectives.essl import ESSL, ESSLOnViews
from essl_aug.objectives.layered import AtLayer
from essl_aug.objectives.predictor import RelativePredictor
from essl_aug.objectives.ser import SER
from essl_aug.objectives.sie import SIE

__all__ = [
    "ESSL",
    "SER",
    "SIE",
    "AtLayer",
    "AugSelf",
    "ESSLOnViews",
    "EquiMod",
    "Objective",
    "ObjectiveOutput",
    "Objectives",
    "RelativePredictor",
    "StepInputs",
]

__getattr__ = _deprecated.aliases(
    "essl_aug.objectives",
    {
        "DiscreteESSL": "essl_aug.objectives.essl:ESSL",
        "ContinuousESSL": "essl_aug.objectives.essl:ContinuousESSL",
        "PredictorEquivariance": "essl_aug.objectives.predictor:RelativePredictor",
    },
)
