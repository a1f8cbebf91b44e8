"""CIFAR-100 scale-up: data, models, training and distillation."""
