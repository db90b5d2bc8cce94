"""fakescan: find AI-generated face images in large collections."""

__version__ = "0.1.0"
