"""How channels are scored: first-order Taylor (STAMP), per-group normalisation, FLOPs and parameter costs.

The Taylor score of channel c is ``sum over (batch, space) of a * dL/da`` for the activation ``a`` that
carries the channel, summed over the batches seen since the last reset. It is collected during the normal
training iterations (no extra passes), and where it can be, without touching the activations at all:

* **from parameter gradients** (every group of a PlainConvUNet, and a ResEnc U-Net's conv blocks and transposed
  convs): when the activation is positively homogeneous of degree 1 in the parameters ``theta_c`` that make
  channel c (``a(t theta_c) = t a(theta_c)`` for ``t > 0``; a norm's affine ``gamma_c, beta_c`` followed by
  (Leaky)ReLU or nothing; a conv's weight slice and bias with no norm after it) and those parameters reach the
  loss only through channel c, Euler's theorem gives ``sum a_c dL/da_c = d/dt L|_{t=1} = sum theta_c dL/dtheta_c``:
  the products of C parameters with the gradients autograd computes anyway, read as each gradient is
  accumulated. No hook runs in the forward pass, nothing of activation size is multiplied, and the network can
  be ``torch.compile``-d while it is scored (:attr:`TaylorScorer.compiles`);
* **from the activations** (a ResEnc residual stream, whose channels are the sum of several blocks' outputs):
  forward hooks on the group's activation modules register a gradient hook on their output.

The running sums stay on the training device; they are read (one copy) only at a pruning step or a
checkpoint. A batch whose terms are not finite for a group (fp16 gradients overflowed: the GradScaler skips that
optimizer step too) is left out of that group's scores.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

from nnunet_pruning.core.groups import ChannelGroup, GroupHooks, in_channels, is_transposed, out_channels

__all__ = ["TaylorScorer", "taylor_parameters", "normalise", "conv_voxels", "channel_costs"]

#: activations positively homogeneous of degree 1 in their input (``f(t y) = t f(y)``, ``t > 0``)
_HOMOGENEOUS = (nn.ReLU, nn.LeakyReLU, nn.Identity, nn.modules.dropout._DropoutNd)
_AFFINE_NORMS = (nn.modules.batchnorm._NormBase, nn.GroupNorm)


def taylor_parameters(group: ChannelGroup) -> list[tuple[nn.Parameter, int]] | None:
    """``(parameter, channel dim)`` pairs whose products ``theta * dL/dtheta``, summed per channel, equal the
    group's Taylor term ``sum a * dL/da`` exactly (see the module's docstring); ``None`` where no such
    parameters exist (several activations, e.g. a residual stream; a norm without affine; another nonlinearity).
    """
    if len(group.activations) != 1:
        return None
    module = group.activations[0]
    if is_transposed(module):
        if module.groups != 1:
            return None
        return [(module.weight, 1)] + ([(module.bias, 0)] if module.bias is not None else [])
    ops = list(getattr(module, "all_modules", ()))  # dynamic_network_architectures' ConvDropoutNormReLU
    if not ops or ops[0] is not group.producers[0].conv:
        return None
    scaling = [(ops[0].weight, 0), (ops[0].bias, 0)]
    for op in ops[1:]:
        if isinstance(op, _AFFINE_NORMS):
            if getattr(op, "weight", None) is None or getattr(op, "bias", None) is None:
                return None  # normalised and not rescaled: nothing is homogeneous in the channel's parameters
            scaling = [(op.weight, 0), (op.bias, 0)]
        elif not isinstance(op, _HOMOGENEOUS):
            return None
    return [(p, dim) for p, dim in scaling if p is not None]


class TaylorScorer(GroupHooks):
    """Accumulates first-order Taylor scores for every group while the network trains.

    Args:
        groups: the network's channel groups.
        grad_scale: returns the current loss scale (GradScaler; a float or a tensor on the device, which
            avoids a host sync per group and batch) so scaled gradients are divided back.
        absolute_per_batch: sum ``|term|`` of every batch (Molchanov et al.) instead of the signed terms
            (the STAMP reference, which takes the absolute value only when it ranks).
        from_parameters: read the terms off parameter gradients where that is exact (:func:`taylor_parameters`);
            ``False`` hooks every activation (the same scores, slower; for tests and benchmarks).
    """

    def __init__(self, groups: Sequence[ChannelGroup], grad_scale: Callable[[], float | torch.Tensor] = lambda: 1.0,
                 absolute_per_batch: bool = False, from_parameters: bool = True):
        super().__init__(groups)
        self.grad_scale = grad_scale
        self.absolute_per_batch = absolute_per_batch
        self.from_parameters = from_parameters
        self.scores: dict[str, torch.Tensor] = {}
        self._pending: dict[str, tuple[int, torch.Tensor]] = {}  # a group's parameters seen so far in a backward
        self.reset()

    @property
    def compiles(self) -> bool:
        """No hook of this scorer runs in the forward pass: ``torch.compile`` sees none of it."""
        return self.from_parameters and all(taylor_parameters(g) is not None for g in self.groups)

    def reset(self) -> None:
        self.scores = {g.name: torch.zeros(g.width, dtype=torch.float64) for g in self.groups}
        self._pending = {}

    def attach(self) -> None:
        self.detach()
        for group in self.groups:
            parameters = taylor_parameters(group) if self.from_parameters else None
            if parameters is None:
                for module in group.activations:
                    self._handles.append(module.register_forward_hook(self._hook(group.name)))
                continue
            for parameter, dim in parameters:
                self._handles.append(parameter.register_post_accumulate_grad_hook(
                    self._parameter_hook(group.name, group.activations[0], dim, len(parameters))))

    def _add(self, name: str, term: torch.Tensor) -> None:
        """One batch's term of group ``name``: left out unless finite; divided by the loss scale."""
        if self.absolute_per_batch:
            term = term.abs()
        score = self.scores[name]
        if score.device != term.device:  # scores live where the network trains: no copy, no sync
            score = score.to(term.device, _score_dtype(term.device))
        term = term.to(score.dtype) / self.grad_scale()
        self.scores[name] = score + torch.where(torch.isfinite(term).all(), term, torch.zeros_like(term))

    def _hook(self, name: str):
        def hook(module, inputs, output):
            if not (torch.is_grad_enabled() and module.training and output.requires_grad):
                return
            activation = output.detach()

            def grad_hook(grad):
                dims = [0] + list(range(2, grad.dim()))
                self._add(name, (_wide(activation) * _wide(grad)).sum(dim=dims))

            output.register_hook(grad_hook)
        return hook

    def _parameter_hook(self, name: str, module: nn.Module, dim: int, parts: int):
        def hook(parameter):
            if not module.training or parameter.grad is None:
                return
            product = _wide(parameter.detach()) * _wide(parameter.grad)
            others = [d for d in range(product.dim()) if d != dim]
            product = product.sum(dim=others) if others else product
            seen, total = self._pending.pop(name, (0, None))
            total = product if total is None else total + product
            if seen + 1 < parts:
                self._pending[name] = (seen + 1, total)
            else:  # every parameter of the channel has its gradient: the batch's term is complete
                self._add(name, total)
        return hook

    def keep(self, name: str, kept: Sequence[int]) -> None:
        """After a removal: keep the scores of the surviving channels."""
        self.scores[name] = self.scores[name][list(kept)]
        self._pending.pop(name, None)

    def state_dict(self) -> dict:
        """The running scores on the CPU in float64 (the only place they are copied off the device)."""
        return {k: v.detach().to("cpu", torch.float64).clone() for k, v in self.scores.items()}

    def load_state_dict(self, state: dict) -> None:
        self.scores = {k: v.to(torch.float64).cpu() for k, v in state.items()}
        self._pending = {}


def _wide(tensor: torch.Tensor) -> torch.Tensor:
    """float32, or float64 where the network computes in it (fp16/bf16 products would round away small terms)."""
    return tensor if tensor.dtype == torch.float64 else tensor.float()


def _score_dtype(device: torch.device) -> torch.dtype:
    """float64 where the device has it (Apple's MPS does not)."""
    return torch.float32 if device.type == "mps" else torch.float64


def normalise(scores: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """STAMP's per-group normalisation: ``|s| / ||s||_2`` (n equally useful channels get 1/sqrt(n) each)."""
    result = {}
    for name, score in scores.items():
        magnitude = score.abs()
        norm = magnitude.norm()
        result[name] = magnitude / norm if norm > 0 else torch.full_like(magnitude, 1.0 / max(1, len(score)) ** 0.5)
    return result


def conv_voxels(network: nn.Module, input_shape: Sequence[int]) -> dict[nn.Module, int]:
    """Per conv module: voxels of its output (transposed convs: of its input), for one sample of
    ``input_shape`` (``(channels, *spatial)``), as the network predicts (deep supervision off, so the unused
    segmentation heads are absent: they cost nothing at inference). See :func:`~nnunet_pruning.core.measure.conv_voxels`."""
    from nnunet_pruning.core.measure import conv_voxels as voxels_by_name

    modules = dict(network.named_modules())
    return {modules[name]: v for name, v in voxels_by_name(network, input_shape[0], input_shape[1:]).items()}


def channel_costs(group: ChannelGroup, voxels: dict[nn.Module, int] | None = None) -> float:
    """What one channel of ``group`` costs: parameters, or FLOPs (2 per multiply-add) when ``voxels`` given.

    Sums the producer's per-output-channel slice (+ bias, norm affine) and every consumer's per-input-
    channel slice at the current shapes.
    """
    total = 0.0
    for producer in group.producers:
        conv = producer.conv
        per_channel = conv.weight.numel() / out_channels(conv)
        if voxels is None:
            total += per_channel + (1 if conv.bias is not None else 0)
            if producer.norm is not None and getattr(producer.norm, "weight", None) is not None:
                total += 2
        else:
            total += 2 * per_channel * voxels.get(conv, 0)
    for consumer in group.consumers:
        conv = consumer.conv
        per_channel = conv.weight.numel() / in_channels(conv)
        total += per_channel if voxels is None else 2 * per_channel * voxels.get(conv, 0)  # 0: not run
    return total
