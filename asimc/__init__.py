"""asimc: compile ONNX models onto SRAM analog compute-in-memory chips and simulate them bit by
bit.

    import asimc
    chip = asimc.load_chip("chips/asim-bitserial-255.acim")
    program = asimc.compile("examples/models/digits_cnn.onnx", chip)
    result = program.run(x, mode="acim", seed=0)
"""
__version__ = "0.1.0"


def __getattr__(name):
    # Lazy: `import asimc` stays cheap and the CLI starts fast.
    if name == "compile":
        from .compiler import compile
        return compile
    if name == "load_program":
        from .artifact import load_program
        return load_program
    if name in ("load_chip", "parse_chip", "format_chip"):
        from . import chip
        return getattr(chip, name)
    if name in ("Program", "MatrixLayer"):
        from . import program
        return getattr(program, name)
    raise AttributeError(f"module 'asimc' has no attribute {name!r}")
