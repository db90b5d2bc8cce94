"""The scan: inputs, probing, decoders, runtimes, the per-batch core, output files.

Where things happen: ``inputs`` (paths, folders, lists), ``probe`` and ``formats`` (reading,
sniffing, declared sizes, error codes), ``guard`` and ``workers`` (per-file isolation: decode
worker processes, timeouts, crash retry), ``decoders`` (PIL pool, DALI), ``runtimes`` (torch,
onnxruntime), ``model`` (what a scan reads of its model), ``options``, ``core`` (one batch in,
one row per input out), ``executors`` (local, per-device, Ray), ``driver`` (the streaming
driver and the Python ``scan()`` API), ``output`` (CSV/JSONL/JSON, resume, lock), ``rows``.
"""
