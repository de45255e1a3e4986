"""The torch backend: the same IR run with PyTorch, on a CPU or a GPU.

Parameters stay where every backend keeps them, in the flat NumPy arrays of
`specc.backend.graph.Network` (so optimizers, clipping, checkpoints and resume
are the same code, and one checkpoint serves every backend). On the CPU the
kernels read them through tensors that share that memory; on a GPU the network
copies them to the device before each forward pass and the gradients back after
each backward pass.

Each op is a small class, one module per family as in `specc.backend.reference`
(whose semantics, masks included, these mirror): `forward(params, state, xs,
mask, train, rng) -> (y, cache)` with torch operations. Backward is autograd:
`_run` keeps the autograd graph as the trace and `_backward` asks autograd for
the gradients of the parameters (and, when watched, of each recurrent layer's
hidden states). PyTorch is an optional extra: these modules import without it,
and building a network without it raises an `OptionError` that says what to
install.
"""
