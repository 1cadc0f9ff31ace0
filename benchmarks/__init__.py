"""Benchmarks: scripts that time ksparse against its peers, run as ``python -m benchmarks.<name>``.

``python -m benchmarks.run_all`` runs the CPU ones and rewrites ``docs/benchmarks.md``;
``python -m benchmarks.gpu`` runs every GPU check and benchmark on a machine with CUDA.
"""
