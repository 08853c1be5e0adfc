"""Test-session settings that must come before torch is imported."""
import os

# As asimc itself does (asimc/__init__.py): sleeping OpenMP waiters keep a shared machine fast.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
