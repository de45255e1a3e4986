"""The fast NumPy backend: fused, pooled, BLAS-tuned kernels run by one executor."""
