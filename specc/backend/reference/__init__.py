"""The reference backend: every op's forward and backward written to be read.

Each op is a small class whose `forward` and `backward` look like the
equations of docs/language.md, with no fusion, no buffer reuse and no BLAS
tricks: this is the backend a student reads, and the one the fast backend
(`specc.backend.numpy`) is tested against, number for number in float64.
Run a spec on it with `specc run FILE --backend reference`.

The contract is the fast backend's, minus its speed promises:
`forward(params, state, xs, mask, train, rng) -> (y, cache)` and
`backward(params, cache, dy, grads) -> [dx per input]`, adding parameter
gradients into `grads`. A mask (B, T) marks real tokens (1) and padding (0);
padding is only ever at the end of a row.
"""
