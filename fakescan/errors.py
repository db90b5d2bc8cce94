"""Domain exceptions. Library code raises these; only ``fakescan.cli`` turns them into exit codes.

Each class has a stable ``code`` (used in scan error rows and in messages) so scripts can
match on it instead of on wording.
"""

from __future__ import annotations


class FakescanError(Exception):
    """Base class: a problem the user can fix, reported as one line, exit status 2."""

    code = "error"
    exit_code = 2


class UsageError(FakescanError):
    """An option or argument that does not make sense."""

    code = "usage"


class ClusterError(FakescanError):
    """A compute cluster (Ray) that cannot be reached, refuses this client, or fails mid-run."""

    code = "cluster"


class DataError(FakescanError):
    """A dataset that cannot be read: missing folder, empty class, unknown layout."""

    code = "data"


class ManifestError(DataError):
    """A CSV manifest that is malformed."""

    code = "manifest"


class ArchitectureError(FakescanError):
    """An unknown architecture name or bad architecture options."""

    code = "architecture"


class ModelError(FakescanError):
    """A model folder or file that cannot be resolved or loaded safely."""

    code = "model"


class WeightsUnavailableError(ModelError):
    """Pretrained weights that are neither cached nor downloadable (offline machine)."""

    code = "weights_unavailable"
