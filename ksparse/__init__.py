"""ksparse: k-sparse autoencoders (Makhzani & Frey, 2014) in NumPy/CuPy with hand-written gradients."""

__version__ = "0.2.0"

__all__ = ["KSparseAutoencoder", "KSparseClassifier", "__version__"]


def __getattr__(name):
    """Import the scikit-learn estimators on first use, so ``import ksparse`` stays light."""
    if name == "KSparseAutoencoder":
        from ksparse.estimators.autoencoder import KSparseAutoencoder

        return KSparseAutoencoder
    if name == "KSparseClassifier":
        from ksparse.estimators.classifier import KSparseClassifier

        return KSparseClassifier
    raise AttributeError(f"module 'ksparse' has no attribute {name!r}")
