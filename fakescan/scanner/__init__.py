"""The scan: inputs, probing, decoders, runtimes, the per-batch core, output files.

Where things happen: ``inputs`` (paths, folders, lists), ``probe`` (reading, sniffing, error
codes), ``decoders`` (PIL pool, DALI), ``runtimes`` (torch, onnxruntime), ``engine`` (the
core and the streaming driver), ``output`` (CSV/JSONL/JSON, resume, lock), ``rows``.
"""
