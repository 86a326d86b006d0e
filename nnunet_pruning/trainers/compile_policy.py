"""When a pruning run compiles its network (``torch.compile``): once it no longer changes, or while pruning
when steps are far enough apart that recompiling after each one pays (measured on an H100)."""

from __future__ import annotations

import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from torch._dynamo import OptimizedModule

__all__ = ["CompilePolicy", "RECOMPILE_BREAK_EVEN_ITERATIONS"]

#: Training iterations between two pruning steps from which recompiling after every step pays: measured on an
#: H100 (docs/benchmarks/gpu_h100_128.json, "recompile"): 33-36 s to compile each new shape of the 6-stage
#: 128^3 U-Net, 23-25 ms saved per compiled training step, break-even after 1400-1475 iterations.
RECOMPILE_BREAK_EVEN_ITERATIONS = 1500


class CompilePolicy:
    """Mixin of the pruning trainer (it reads ``self.pruner`` and ``self.pruning_schedule``)."""

    def _do_i_compile(self):
        # nnU-Net compiles in initialize(). While pruning, the network changes shape and carries the scoring and
        # dropout hooks, so the pruning trainers compile later: see compile_when_final.
        return False

    def compile_when_final(self) -> bool:
        """``torch.compile`` the network once it no longer changes (target reached, hooks detached), where
        nnU-Net would compile it (its ``_do_i_compile`` rules: CUDA, ``nnUNet_compile``); single GPU only.

        Before that the run stays eager (unless :meth:`compile_while_pruning` says a recompile after every step
        pays): no hooks inside a compiled graph, and no compile (~35 s on an H100) per short pruning interval.
        Returns whether it compiled now.
        """
        if self.pruner is None or not self.pruner.finished or self.is_ddp or isinstance(self.network, OptimizedModule):
            return False
        if self._scoring_hooks() and self.pruning_schedule.score_after_target:
            return False  # the activation hooks stay attached: keep them out of a compiled graph
        if not nnUNetTrainer._do_i_compile(self):
            return False
        self.print_to_log_file("Using torch.compile (the pruning target is reached: the network no longer changes)")
        self.network = torch.compile(self.network)
        return True

    def _scoring_hooks(self) -> bool:
        """The pruner scores channels with hooks on activations (a ResEnc residual stream): they would break a
        compiled graph. Scores read off parameter gradients (every PlainConvUNet) and targeted dropout's forward
        hooks compile into one graph."""
        return self.pruner.scorer is not None and not self.pruner.scorer.compiles

    def compile_while_pruning(self) -> bool:
        """Whether to train compiled *while* pruning, recompiling after every step: where nnU-Net would compile
        (single GPU), nothing of the method breaks a graph (random-largest; STAMP where its scores come from
        parameter gradients), and a step comes only every ``RECOMPILE_BREAK_EVEN_ITERATIONS`` training
        iterations or more, so that the compiled steps repay each recompile (measured on an H100)."""
        if self.pruner is None or self.pruner.finished or self.is_ddp or self._scoring_hooks():
            return False
        interval = self.pruning_schedule.every_epochs * self.num_iterations_per_epoch
        return interval >= RECOMPILE_BREAK_EVEN_ITERATIONS and nnUNetTrainer._do_i_compile(self)

    def _compile_for_pruning(self, reason: str) -> None:
        """(Re)compile the network after it changed shape: a fresh graph, not guards failing one by one."""
        from torch import _dynamo

        _dynamo.reset()
        self.network = torch.compile(self._module())
        self.print_to_log_file(f"Using torch.compile while pruning ({reason}; a step every "
                               f"{self.pruning_schedule.every_epochs * self.num_iterations_per_epoch} iterations "
                               f"repays a recompile from {RECOMPILE_BREAK_EVEN_ITERATIONS} on)")
