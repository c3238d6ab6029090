"""FIT file import (and a writer for simulators).

Public API::

    read(source, *, strict=False, sink=None, fast=True) -> FitImport
        .batches .record_count .message_count .summary .developer_fields .problems
        .decoder ("fast" | "fitdecode") .fallback_reason .valid_bytes .device_id .samples
        .developer_values  # {(dev_data_index, field_number): DeveloperSeries(t_us, values)}
    FitError(ValueError)   # .offset .kind .problems
    Problem(kind, offset, message), ProblemKind
    FitSummary, DeveloperField
    write_activity(...) -> bytes   # protocols.fit.writer, needs garmin-fit-sdk

docs/fit-import.md describes streams, units, problems and the fast path.
"""

from .errors import FitError, Problem, ProblemKind
from .reader import DeveloperSeries, FitImport, read
from .summary import DeveloperField, FitSummary

__all__ = ["DeveloperField", "DeveloperSeries", "FitError", "FitImport", "FitSummary", "Problem", "ProblemKind", "read"]
