"""Version of the numeric model (docs/numeric-model.md) as implemented.

Stored results (``asimc sweep`` databases) are keyed by it: bump it whenever a change alters any
number a program computes (quantisers, noise draws, ADC, kernels), so old rows are recomputed
instead of being mixed with new ones.

2: noisy codes drawn from their closed-form distribution, one 32-bit word per conversion
   (docs/numeric-model.md, "Random numbers"): same distribution, new random stream.
"""
NUMERIC_MODEL_VERSION = 2
