"""Training: the loss wrapper, the loop, distributed set-up and logging."""
