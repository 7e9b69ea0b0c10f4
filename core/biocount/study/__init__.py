"""The study before any model: the declared design, encoders run on training rows, one grid, the split."""
