"""Runnable training scripts: ``python -m mmbook.examples.train_av_digits`` (one process)
or under ``torchrun`` (DistributedDataParallel, several processes, GPUs or nodes)."""
