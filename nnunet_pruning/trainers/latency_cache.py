"""The latency target's width -> time table of a fold: measured once, saved in the fold folder, reused by
``--c`` and restarts when :meth:`~nnunet_pruning.core.latency.LatencyTable.serves` says it fits (the one rule)."""

from __future__ import annotations

import json
import os

import torch

from nnunet_pruning.core.files import write_json
from nnunet_pruning.core.groups import find_groups
from nnunet_pruning.core.latency import LatencyDevice, LatencyModel, LatencyTable, build_latency_table
from nnunet_pruning.core.runtime_forward import runtime_setting

__all__ = ["LatencyTableCache", "LATENCY_TABLE"]

#: the latency target's measured table, in the fold folder
LATENCY_TABLE = "latency_table.json"


class LatencyTableCache:
    """Mixin of the pruning trainer: where latency is measured, and the fold's table."""

    def latency_where(self) -> LatencyDevice:
        """Where the latency target is measured: the schedule's device (default: the training device); on the
        CPU with the backend that will run the model (``nnUNet_pruning_backend``: a runtime it names; PyTorch for
        ``torch`` and for ``auto``, the default, whose choice is made per network when it predicts -- measured,
        docs/results.md: the backend timed while pruning changed which channels went, not the time)."""
        s = self.pruning_schedule
        device = s.latency_device or self.device.type
        threads = (s.latency_threads or torch.get_num_threads()) if device == "cpu" else 0
        backend = runtime_setting()[0] if device == "cpu" else "torch"
        backend = "torch" if backend == "auto" else backend
        return LatencyDevice(device, threads, backend=backend)

    def latency_model(self, shape) -> LatencyModel:
        """The latency table of this fold: read from ``latency_table.json`` when it was measured for the same
        device, threads, backend, patch and network (``--c``, or a restart), else measured now and saved there."""
        where = self.latency_where()
        path = os.path.join(self.output_folder, LATENCY_TABLE)
        groups = find_groups(self._module())
        widths = {g.name: g.width for g in groups}
        table = None
        if os.path.isfile(path):
            with open(path) as f:
                cached = LatencyTable.from_dict(json.load(f))
            if cached.serves(where, shape, widths):
                table = cached
                self.print_to_log_file(f"latency: reusing {LATENCY_TABLE} (measured on {where.describe()}, "
                                       f"unpruned network {table.base_seconds * 1e3:.1f} ms per forward pass)")
        if table is None:
            self.print_to_log_file(f"latency: measuring the width -> time table on {where.describe()} at patch "
                                   f"{'x'.join(map(str, shape[1:]))} ({len(widths)} groups)")
            floors = {g.name: self.pruning_schedule.min_width_of(g.level) for g in groups}
            table = build_latency_table(self._module(), shape, where, floors, progress=self.print_to_log_file)
            if self.local_rank == 0:
                write_json(table.as_dict(), path, indent=1)
            self.print_to_log_file(f"latency: table measured in {table.build_seconds:.1f} s, saved as {LATENCY_TABLE};"
                                   f" unpruned network {table.base_seconds * 1e3:.1f} ms per forward pass")
        unpruned = self.build_network_architecture(self.plans_manager, self.configuration_manager,
                                                   self.num_input_channels, self.label_manager.num_segmentation_heads,
                                                   False)  # the reference every measurement is timed against
        return LatencyModel(table, where, shape, reference=unpruned)
