"""Knowledge distillation as a library: the losses (logit and feature KD), the teacher, and the
objective that `edgekit.training.fit` minimises. The distill stage only wires these to the run."""

from __future__ import annotations

from edgekit.distill.losses import FeatureAdapter, build_adapter, feature_loss, features_and_logits, kd_loss
from edgekit.distill.objective import Objective
from edgekit.distill.teacher import check_inputs, check_names, load_teacher

__all__ = [
    "FeatureAdapter",
    "Objective",
    "build_adapter",
    "check_inputs",
    "check_names",
    "feature_loss",
    "features_and_logits",
    "kd_loss",
    "load_teacher",
]
