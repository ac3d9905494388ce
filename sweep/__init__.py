import os

# numpy's OpenBLAS keeps its threads spinning between calls; on a busy machine they take the cores
# from the fits' thousands of small L-BFGS-B steps (the Epoch fit took 4-7 s instead of 0.6 s on 2
# shared cores, a 20,000-run refit 0.9 s instead of 0.08 s). Set before numpy loads; a user's own
# setting wins. torch's CPU kernels do not use OpenBLAS.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("scaling-sweep")
except PackageNotFoundError:  # run from a checkout that was never installed
    __version__ = "0+unknown"


def __getattr__(name: str):
    """`from sweep import Sweep`, imported on first use: `import sweep` (and the CLI's start) stays light."""
    if name == "Sweep":
        from sweep.handle import Sweep

        return Sweep
    raise AttributeError(f"module 'sweep' has no attribute {name!r}")
