"""Training: task preparation, the loop, optimizers, checkpoints and the memory guard."""
