"""Training: the typed config, the trainer and its run folder, checkpoints, and the runtime (devices, processes, memory)."""
