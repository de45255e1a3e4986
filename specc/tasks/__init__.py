"""Tasks: turning a task's data source into batches, metrics and demos."""
