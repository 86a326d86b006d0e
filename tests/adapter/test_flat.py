import copy

import pytest

from nnunet_pruning.adapter.architectures import unet_spec
from nnunet_pruning.core.errors import PruningError
from nnunet_pruning.adapter.flat import flat_arch_kwargs, make_flat_plans


@pytest.mark.parametrize("architecture", ["plain", "resenc"])
@pytest.mark.parametrize("width", [None, 16, 64])
def test_flat_kwargs(architecture, width):
    spec = unet_spec(architecture, dim=3, n_stages=5)
    before = copy.deepcopy(spec.network_arch_init_kwargs)
    flat = flat_arch_kwargs(spec.network_arch_class_name, spec.network_arch_init_kwargs, width)
    assert flat["features_per_stage"] == [width or 32] * 5
    assert spec.network_arch_init_kwargs == before  # input untouched
    assert {k: v for k, v in flat.items() if k != "features_per_stage"} == \
        {k: v for k, v in before.items() if k != "features_per_stage"}


def test_unsupported_architecture():
    with pytest.raises(PruningError, match="not a U-Net nnunet_pruning supports"):
        flat_arch_kwargs("some.module.SwinUNETR", {"n_stages": 2, "features_per_stage": [1, 2]})


@pytest.mark.parametrize("width", [0, -3, 2.5, True, 1025])
def test_bad_width(width):
    spec = unet_spec()
    with pytest.raises(PruningError, match="width must be a whole number from 1 to 1024"):
        flat_arch_kwargs(spec.network_arch_class_name, spec.network_arch_init_kwargs, width)


def test_flat_plans_reuse_preprocessed_data():
    spec = unet_spec("plain", dim=3, n_stages=4)
    arch = {"network_class_name": spec.network_arch_class_name, "arch_kwargs": spec.network_arch_init_kwargs,
            "_kw_requires_import": spec.network_arch_init_kwargs_req_import}
    plans = {"plans_name": "nnUNetPlans", "configurations": {
        "3d_fullres": {"data_identifier": "nnUNetPlans_3d_fullres", "architecture": arch},
        "3d_cascade_fullres": {"inherits_from": "3d_fullres", "previous_stage": "3d_lowres"},
    }}
    flat = make_flat_plans(plans, 32)
    assert flat["plans_name"] == "nnUNetPlansFlat32"
    config = flat["configurations"]["3d_fullres"]
    assert config["data_identifier"] == "nnUNetPlans_3d_fullres"
    assert config["architecture"]["arch_kwargs"]["features_per_stage"] == [32] * 4
    assert flat["configurations"]["3d_cascade_fullres"] == plans["configurations"]["3d_cascade_fullres"]
    assert plans["configurations"]["3d_fullres"]["architecture"]["arch_kwargs"]["features_per_stage"] == \
        [32, 64, 128, 256]
