"""Kernel kinds are read off the kernels' names; a profile's shares add up to one (on the CPU: operators)."""

import torch

from scripts.kernel_profile import kernel_kind, profile_forward


def test_kernel_kinds():
    assert kernel_kind("void cudnn::bn_fw_tr_1C11_kernel_NCHW<__half, float>") == "normalisation"
    assert kernel_kind("sm90_xmma_fprop_implicit_gemm_f16f16_f16f32_f32_nhwckrsc_nhwc_tilesize128") == "convolution"
    assert kernel_kind("void cudnn::engines_precompiled::nchwToNhwcKernel<__half>") == "layout conversion"
    assert kernel_kind("void at::native::vectorized_elementwise_kernel<8, leaky_relu_kernel>") == "elementwise"
    assert kernel_kind("some_unknown_kernel") == "other"


def test_profile_forward_on_the_cpu():
    model = torch.nn.Sequential(torch.nn.Conv3d(1, 4, 3, padding=1), torch.nn.InstanceNorm3d(4, affine=True))
    result = profile_forward(model, torch.randn(1, 1, 8, 8, 8), passes=2)
    assert result["kernel_ms_per_forward"] > 0
    assert abs(sum(result["share_by_kind"].values()) - 1) < 1e-6
    assert {"convolution", "normalisation"} <= set(result["share_by_kind"])
    assert 0 < len(result["top_kernels"]) <= 8
