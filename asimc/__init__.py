"""asimc: compile ONNX models onto SRAM analog compute-in-memory chips and simulate them bit by bit."""
__version__ = "0.1.0"
