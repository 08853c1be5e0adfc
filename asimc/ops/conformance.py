"""Moved to ``asimc.conformance`` (the harness imports the frontend and the runtime, so it does
not belong in the op layer). ``python -m asimc.ops.conformance`` still runs it."""
if __name__ == "__main__":
    import runpy

    runpy.run_module("asimc.conformance", run_name="__main__", alter_sys=True)
