"""Front-end passes, each taking the previous stage's IR: resolve, validate, shapes."""
