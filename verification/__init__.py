"""gsbref's verification suite: every (distribution, f, estimator, options) row checked against the
exact oracle, with a report (``gsbref verify``).

Why a second top-level package of the same distribution
-------------------------------------------------------
The suite is a *consumer* of the library: it imports ``gsbref.estimators``, ``gsbref.oracle`` and
``gsbref.testing``, and nothing in those layers may import it (DESIGN §2: dependencies point
downwards).  Keeping it outside the ``gsbref`` package makes that rule structural -- an
``import verification`` inside ``gsbref/estimators`` or ``gsbref/oracle`` would stand out in review
-- while shipping it in the same wheel (``[tool.setuptools.packages.find] include`` lists
``"verification*"``) means a plain ``pip install gsbref`` gives a working ``gsbref verify``.  The
only edge pointing up is the CLI: ``gsbref/cli.py`` imports ``verification`` lazily, inside the
``verify`` subcommand, so ``import gsbref`` never loads the suite (nor matplotlib, nor Dask).

Layout: :mod:`~verification.rows` (the table: data), :mod:`~verification.checks` (identities,
sampling, seeds, the oracle bundle of a case), :mod:`~verification.variants` (seeded wrong
estimators: power), :mod:`~verification.runner` (phases, executors, Holm), :mod:`~verification.toy`
(the paper's toy-problem curves), :mod:`~verification.report` and :mod:`~verification.figures`.

>>> import verification
>>> len(verification.ROWS) > 100
True
"""

from .rows import ROWS, Row, make_row, row, rows
from .runner import DEFAULT_ALPHA, DEFAULT_SEED, RunResult, SerialExecutor, run

__all__ = ["run", "Row", "ROWS", "make_row", "row", "rows", "RunResult", "SerialExecutor", "DEFAULT_SEED",
           "DEFAULT_ALPHA", "main"]


def main(argv=None) -> int:
    """``python -m verification ...`` = ``gsbref verify ...``."""
    from gsbref.cli import main as cli_main

    return cli_main(["verify", *(argv if argv is not None else __import__("sys").argv[1:])])
