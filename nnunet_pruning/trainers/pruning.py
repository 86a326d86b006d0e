"""STAMP and random-largest pruning trainers: nnU-Net's trainer with a :class:`~nnunet_pruning.core.pruner.Pruner`.

They change only what pruning needs: the network is resizable (so every checkpoint loads), pruning runs
at epoch ends, checkpoints carry the pruning state and are written atomically (:mod:`.pruning_checkpoints`), and
each fold folder gets ``pruning_log.json`` and ``pruning_progress.png``; the latency target's table is cached in
the fold folder (:mod:`.latency_cache`), and the network is compiled when it no longer changes
(:mod:`.compile_policy`). Data, augmentation, loss, SGD + poly LR, validation and checkpoint names are nnU-Net's
own.
"""

from __future__ import annotations

import os
import zlib

import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from torch._dynamo import OptimizedModule

from nnunet_pruning.adapter.pruning_logs import PRUNING_LOG, describe_status, target_status
from nnunet_pruning.core.files import write_json
from nnunet_pruning.core.groups import find_groups
from nnunet_pruning.core.onednn import use_onednn_convolutions
from nnunet_pruning.core.pruner import Pruner
from nnunet_pruning.core.resizable import make_resizable
from nnunet_pruning.core.schedule import PruningSchedule
from nnunet_pruning.core.wrappers import unwrap
from .compile_policy import CompilePolicy
from .guards import TrainerError, TrainerGuards
from .inference_backend import with_inference_backend
from .latency_cache import LATENCY_TABLE, LatencyTableCache
from .memory_format import ChannelsLastOnCpu
from .progress_plot import plot_pruning_progress
from .pruning_checkpoints import PruningCheckpoints

__all__ = ["nnUNetTrainerPruningBase"]


class nnUNetTrainerPruningBase(PruningCheckpoints, CompilePolicy, LatencyTableCache, TrainerGuards,
                               ChannelsLastOnCpu, nnUNetTrainer):
    """Base of the pruning trainers; subclasses set ``pruning_schedule`` (see docs/methods.md)."""

    pruning_schedule = PruningSchedule()

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        self.pruner: Pruner | None = None
        self._loaded_pruning_state: dict | None = None
        self._latency = None  # the latency target's LatencyModel, measured at train start
        super().__init__(plans, configuration, fold, dataset_json, device)

    def check_settings(self) -> None:
        self.pruning_schedule.validate()

    @staticmethod
    def build_network_architecture(plans_manager, configuration_manager, num_input_channels, num_output_channels,
                                   enable_deep_supervision: bool = True):
        network = nnUNetTrainer.build_network_architecture(plans_manager, configuration_manager, num_input_channels,
                                                           num_output_channels, enable_deep_supervision)
        return with_inference_backend(use_onednn_convolutions(make_resizable(network)))

    def make_pruner(self, sync=None) -> Pruner:
        """The pruner of this run: the trainer's network, schedule, patch shape, and a seed from the fold
        (with the latency target: and the measured width -> time table, built or read from the fold folder)."""
        shape = (self.num_input_channels, *self.configuration_manager.patch_size)
        latency = None
        if self.pruning_schedule.target_metric == "latency":
            latency = self._latency if self._latency is not None else self.latency_model(shape)
        return Pruner(self._module(), self.pruning_schedule, shape, seed=self._pruning_seed(), sync=sync,
                      latency=latency)

    def score_with_loss_scale(self, pruner: Pruner) -> None:
        """Scores divide AMP's loss scale back out: read as a tensor on the GPU (``get_scale()`` syncs with the
        host, once per group and batch)."""
        if pruner.scorer is not None and self.grad_scaler is not None:
            pruner.scorer.grad_scale = getattr(self.grad_scaler, "_get_scale_async", self.grad_scaler.get_scale)

    def check_network(self) -> None:
        """A U-Net this package can prune, and a target that ``min_width`` leaves reachable (latency: a device
        that exists; the table is measured when training starts)."""
        if self.pruning_schedule.target_metric == "latency":
            if self.is_ddp:
                raise TrainerError("the latency target times the network on each GPU, and ranks would choose "
                                   "different channels; train latency-targeted models on one GPU")
            find_groups(self._module())
            self.latency_where().validate()
            return
        self.make_pruner().check_reachable()

    def _module(self):
        """The network itself, inside the DDP wrapper (several GPUs) or the torch.compile wrapper."""
        return unwrap(self.network)

    def _rewrap_ddp(self) -> None:
        """After surgery the DDP reducer still holds the old tensors: free it, then wrap again."""
        import gc

        from torch.nn.parallel import DistributedDataParallel as DDP

        module = self.network.module
        self.network = None
        gc.collect()
        self.network = DDP(module, device_ids=[self.local_rank])

    # -- training -----------------------------------------------------------------------------------------
    def _pruning_seed(self) -> int:
        return zlib.crc32(f"fold-{self.fold}".encode())

    def on_train_start(self):
        floor_warning = None
        if self.pruning_schedule.target_metric == "latency":
            if not self.was_initialized:
                self.initialize()
            # measured before nnU-Net starts its data-augmentation workers, which share the CPU
            self._latency = self.latency_model((self.num_input_channels, *self.configuration_manager.patch_size))
            if self._loaded_pruning_state is None:  # a fresh run (a resumed one was told at its start)
                floor_warning = self.make_pruner().floor_warning()
        super().on_train_start()
        sync = None
        if self.is_ddp:
            from nnunet_pruning.core.distributed import RankSync

            sync = RankSync()
        self.pruner = self.make_pruner(sync)
        if self._loaded_pruning_state is not None:
            self.pruner.load_state_dict(self._loaded_pruning_state)
        self.score_with_loss_scale(self.pruner)
        self.pruner.attach()
        s = self.pruning_schedule
        self.print_to_log_file(
            f"pruning: method {s.method}, target keep <= {s.keep_fraction:.0%} of {s.target_metric}, warm-up "
            f"{s.warmup_epochs} epochs, a step every {s.every_epochs} epochs removing {s.step_fraction:.0%} of the "
            f"original {s.target_metric}; unpruned network {self.pruner.original['params']:,} params, "
            f"{self.pruner.original['gflops']:.2f} GFLOPs at the patch size"
            + (f", {self.pruner.original['latency'] * 1e3:.1f} ms per forward pass ({self.latency_where().describe()})"
               if "latency" in self.pruner.original else ""))
        if floor_warning:
            self.print_to_log_file(f"{floor_warning} (by name: _keep<P>, _minw<M>, _fullres<F>)")
        if s.last_pruning_epoch() >= self.num_epochs:
            self.print_to_log_file(
                f"WARNING: this schedule reaches its target only after epoch {s.last_pruning_epoch() + 1}, but "
                f"training "
                f"has {self.num_epochs} epochs: the model will miss its target (count and compare will flag it); "
                f"name the budget instead, e.g. -tr nnUNetTrainer<METHOD>_{self.num_epochs}epochs, whose schedule is "
                f"fitted to it")
        self._write_pruning_files()
        if self.compile_while_pruning():
            self._compile_for_pruning("from the start")
        self.compile_when_final()  # a resumed run whose target was reached before

    def on_epoch_end(self):
        ema = self.logger.get_value("ema_fg_dice", step=-1)
        record = self.pruner.maybe_step(self.current_epoch, self.optimizer, ema_pseudo_dice=float(ema))
        if record is not None and self.is_ddp:
            self._rewrap_ddp()
        if record is not None:
            groups = len(record['groups'])
            self.print_to_log_file(
                f"pruning step {record['step']} after epoch {record['epoch']}: removed {record['channels_removed']} "
                f"channels from {groups} group{'s' if groups != 1 else ''} -> {record['params']:,} params "
                f"({record['params_fraction']:.1%}), {record['gflops']:.2f} GFLOPs ({record['gflops_fraction']:.1%})"
                + (f", {record['latency'] * 1e3:.1f} ms measured ({record['latency_fraction']:.1%})"
                   if "latency" in record else "")
                + f"{', target reached' if record['target_reached'] else ''}"
                + (f", {record['stopped']} (target <= {self.pruning_schedule.keep_fraction:.0%} of the "
                   f"{self.pruning_schedule.target_metric})" if "stopped" in record else "")
                + f"; the step took {record['seconds']:.2f} s"
                f"{' (scoring and targeted dropout now off)' if self.pruner.finished else ''}")
            self._write_pruning_files()
            self.apply_channels_last()  # the surgery made new (contiguous) tensors
            if isinstance(self.network, OptimizedModule):  # compiled while pruning: the old graph is stale
                self._compile_for_pruning(f"recompiled after step {record['step']}")
            self.compile_when_final()
        super().on_epoch_end()

    def on_train_end(self):
        if self.pruner is not None:
            self.pruner.end()  # before nnU-Net writes checkpoint_final: it carries the outcome
            if not self.pruner.target_reached:
                status = target_status(self._pruning_summary())
                self.print_to_log_file(f"pruning: {describe_status(status)}")
        super().on_train_end()
        if self.pruner is not None:
            self.pruner.detach()
            self._write_pruning_files()

    def _write_pruning_files(self) -> None:
        if self.local_rank != 0 or self.pruner is None:
            return
        write_json(self._pruning_summary(), os.path.join(self.output_folder, PRUNING_LOG))
        plot_pruning_progress(self.pruner.log, os.path.join(self.output_folder, "pruning_progress.png"),
                              self.num_epochs)

    def _pruning_summary(self) -> dict:
        """What ``pruning_log.json`` holds: the schedule, the unpruned sizes, the outcome (``target_reached`` only
        when it was; ``outcome``: a key of :data:`~nnunet_pruning.core.pruner.OUTCOMES`, null while pruning) and
        every step."""
        summary = {"schedule": self.pruning_schedule.as_dict(), "original": self.pruner.original,
                   "target_reached": self.pruner.target_reached, "outcome": self.pruner.outcome,
                   "steps": self.pruner.log}
        if self.pruner.latency is not None:
            summary["latency"] = {"device": self.pruner.latency.where.describe(), "table": LATENCY_TABLE,
                                  "unit": "seconds per batch-1 forward pass at the patch size (median)"}
        return summary
