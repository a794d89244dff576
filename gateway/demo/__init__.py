"""The offline demo: a small vendor site on loopback, so ``make run`` works without internet."""
