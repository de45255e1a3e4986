"""Diagnostics of a built network: gradient flow through time, covariate shift,
and finite-difference gradient checks."""
