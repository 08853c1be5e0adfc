"""asimc: compile ONNX models onto SRAM analog compute-in-memory chips and simulate them bit by
bit.

    import asimc
    chip = asimc.load_chip("chips/asim-bitserial-255.acim")
    program = asimc.compile("examples/models/digits_cnn.onnx", chip)
    result = program.run(x, mode="acim", seed=0)

    program = asimc.compile(torch_module, chip, example_inputs=x)   # a torch.nn.Module
    chip_model = program.module(mode="acim")                        # torch in, torch out
    asimc.finetune(torch_module, chip, loader, example_inputs=x, epochs=5)
"""
import os

__version__ = "0.1.0"

# OpenMP threads that spin while they wait (the default) stall badly as soon as another process
# shares the cores: a 2-thread run became ten times slower than a 1-thread one on a busy machine.
# Sleeping waiters cost next to nothing on an idle one. Set before torch loads its OpenMP runtime
# (a user's own setting wins).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def __getattr__(name):
    # Lazy: `import asimc` stays cheap and the CLI starts fast.
    if name == "compile":
        from .compiler import compile
        return compile
    if name == "finetune":
        import importlib                 # the package is callable (asimc.finetune.train)
        return importlib.import_module(".finetune", __name__)
    if name == "on_chip":
        from .compiler import on_chip
        return on_chip
    if name == "load_program":
        from .artifact import load_program
        return load_program
    if name in ("load_chip", "parse_chip", "format_chip"):
        from . import chip
        return getattr(chip, name)
    if name == "evaluate_chip":
        from .evaluation import evaluate_chip
        return evaluate_chip
    if name == "calibrate_adc_ranges":
        from .adc_calibration import calibrate_adc_ranges
        return calibrate_adc_ranges
    if name == "metrics":
        import importlib
        return importlib.import_module(".metrics", __name__)
    if name in ("Program", "MatrixLayer"):
        from . import program
        return getattr(program, name)
    raise AttributeError(f"module 'asimc' has no attribute {name!r}")
