"""``bcpd-sim cifar100`` sub-commands, one module each."""
