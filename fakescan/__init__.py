"""fakescan: find AI-generated face images in large collections.

``fakescan.scan(paths, model=...)`` yields one verdict row per input (see
``fakescan.scanner.driver.scan``). Importing the package stays light: torch, DALI and
onnxruntime load only when a scan starts.
"""

__version__ = "0.1.0"


def scan(paths, model, **options):
    """Yield one ``Row`` per input (files or folders); options as ``ScanOptions``."""
    from fakescan.scanner.driver import scan as _scan

    return _scan(paths, model, **options)


__all__ = ["scan", "__version__"]
