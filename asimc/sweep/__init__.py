"""Design-space exploration: `asimc sweep`."""
