"""Version of the numeric model (docs/numeric-model.md) as implemented.

Stored results (``asimc sweep`` databases) are keyed by it: bump it whenever a change alters any
number a program computes (quantisers, noise draws, ADC, kernels), so old rows are recomputed
instead of being mixed with new ones.
"""
NUMERIC_MODEL_VERSION = 1
