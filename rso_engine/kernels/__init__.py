"""Compiled and vectorised inner loops behind the evaluators; nothing here knows about evaluators.

- :mod:`.forward`: the one forward pass (:func:`~.forward.run_layers`) with a pluggable kernel set
  (:class:`~.forward.Kernels`: the layers' own NumPy/CuPy code, in chunks of a chosen size) and the
  per-channel convolutions the incremental evaluators use;
- :mod:`.numba_layers`: the same kernel set compiled with Numba for the CPU (convolutions, batch norm,
  pooling; batch norm + ReLU and ReLU + max-pool fused);
- :mod:`.dense_sweep`: the Numba sweep of the output layer and its column blocks;
- :mod:`.cuda`: the CUDA sweep of the output layer (a CuPy RawKernel) and the GPU kernel set;
- :mod:`.jit`: whether Numba can be used here.

The submodules are imported on their own (this package imports none of them), so using one kernel set
never loads another's compiler.
"""
