"""The algorithm core: pure torch on dynamic-network-architectures modules; never imports nnU-Net.

``groups`` (which channels are coupled), ``surgery`` (remove them), ``resizable`` (networks that take their
shapes from a state dict), ``importance`` (Taylor scores), ``dropout`` (STAMP's targeted dropout),
``strategies`` (the pruning methods), ``schedule`` (when and how much), ``pruner`` (one pruning run),
``measure`` (params, GFLOPs, widths), ``distributed`` (identical decisions on every rank), ``files``
(atomic writes) and ``errors`` (:class:`PruningError`).
"""

__all__: list[str] = []
