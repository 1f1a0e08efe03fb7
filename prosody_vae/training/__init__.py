"""Training: the loss wrapper, the run's state and set-up, one step, the loop, distributed set-up and logging."""
