"""Slow, exact float64 oracles for Sec. 3 of the paper: ITI, OMP, K-SVD, coherence, Thm 3.1.

Not installed with the package; ``ksparse`` never imports it. Run from the repository
root, e.g. ``python -m reference.theorem31 --out docs``.

Modules
-------
coherence  mutual coherence Eq. (8), Welch bound, Babel function, Thm 3.1's condition
iti        iterative thresholding with inversion, Eqs. (2)-(3), and its first step, Eq. (4)
omp        orthogonal matching pursuit: plain, and batch OMP with progressive Cholesky
ksvd       K-SVD and approximate K-SVD with atom replacement
frames     test dictionaries: Gaussian, two orthonormal bases, alternating projection
learned    MNIST dictionaries trained with ksparse, compared with ITI and OMP
theorem31  the experiment behind docs/theorem31.md and docs/theory.md (plots: theorem31_plots)
"""
