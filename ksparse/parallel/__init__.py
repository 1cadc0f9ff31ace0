"""Past one process: encoding of Dask arrays and data-parallel training steps on a Dask cluster.

Needs the ``dask`` extra (``pip install -e ".[dask]"``): dask[array] and distributed.
Importing this package imports neither.
"""
