"""Figures for the Theorem 3.1 experiment (small PNGs, matplotlib's Agg backend)."""

import os

import numpy as np

from ksparse.plots import save_figure

METHODS = (("one_step", "one step: supp_k(W^T x)"), ("iti", "ITI, Eqs. (2)-(3)"), ("omp", "OMP"))
MARKERS = {"gaussian": "o", "altproj": "s", "two-ortho": "^"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_recovery_vs_rho(path, rows):
    """Recovery rate against rho = 2 k mu z_1 / z_k, one panel per method; rho <= 1 is the theorem."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4), sharey=True)
    for ax, (key, title) in zip(axes, METHODS, strict=True):
        for kind, marker in MARKERS.items():
            sel = [r for r in rows if r["dict"] == kind]
            if sel:
                ax.scatter([r["rho"] for r in sel], [r[key] for r in sel], marker=marker, s=14,
                           alpha=0.7, label=kind)
        ax.axvline(1.0, color="k", lw=1, ls="--")
        ax.set_xscale("log")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("rho = 2 k mu z_1 / z_k  (theorem: rho <= 1)")
    axes[0].set_ylabel("support recovery rate")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=80)
    plt.close(fig)


def plot_recovery_vs_k(path, rows):
    """Recovery rate against k at dynamic range z_k/z_1 = 1, one line per dictionary."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.6), sharey=True)
    dicts = sorted({(r["dict"], r["d"], r["mu"]) for r in rows}, key=lambda t: -t[2])
    for ax, (key, title) in zip(axes, METHODS, strict=True):
        for kind, d, mu in dicts:
            sel = sorted((r for r in rows if (r["dict"], r["d"]) == (kind, d) and r["r"] == 1.0),
                         key=lambda r: r["k"])
            line, = ax.plot([r["k"] for r in sel], [r[key] for r in sel], marker=MARKERS.get(kind, "o"),
                            ms=4, lw=1, label=f"{kind} d={d}, mu={mu:.3f}")
            held = [r for r in sel if r["holds"]]
            ax.plot([r["k"] for r in held], [r[key] for r in held], ls="none", marker="o", ms=8,
                    mfc="none", color=line.get_color())
        ax.set_xscale("log", base=2)
        ax.set_title(title + ", z_k = z_1", fontsize=10)
        ax.set_xlabel("k (circled: theorem's condition holds)")
    axes[0].set_ylabel("support recovery rate")
    axes[2].legend(fontsize=6, loc="lower left")
    fig.tight_layout()
    save_figure(fig, path, dpi=80)
    plt.close(fig)


def plot_learned(path, rows):
    """Learned MNIST dictionaries: coherence, support agreement with ITI, reconstruction errors."""
    plt = _pyplot()
    ks = [r["k"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4))
    for key, label in (("mu", "mu(W)"), ("mu_used", "mu among used atoms"),
                       ("mean_abs_cos", "mean |cos|"), ("welch", "Welch bound")):
        axes[0].plot(ks, [r[key] for r in rows], marker="o", label=label)
    axes[0].plot(ks, [1.0 / (2 * k) for k in ks], ls="--", color="k", label="1/(2k): Thm 3.1 needs mu below")
    axes[0].set_yscale("log")
    axes[0].set_title("coherence of the learned W", fontsize=10)
    for key, label in (("agree_ae_iti", "supp_k(W^T x + b) = ITI"), ("overlap_ae_iti", "overlap AE / ITI"),
                       ("agree_first_iti", "ITI step 1 = ITI")):
        axes[1].plot(ks, [r[key] for r in rows], marker="o", label=label)
    axes[1].set_ylim(-0.02, 1.02)
    axes[1].set_title("support agreement (training images)", fontsize=10)
    for key, label in (("err_ae", "AE codes"), ("err_ae_lstsq", "AE support + lstsq"),
                       ("err_iti", "ITI"), ("err_omp", "OMP")):
        axes[2].plot(ks, [r[key] for r in rows], marker="o", label=label)
    axes[2].set_title("reconstruction error (D4)", fontsize=10)
    for ax in axes:
        ax.set_xlabel("k")
        ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path, dpi=80)
    plt.close(fig)


def plot_all(folder, synthetic, learned):
    """Write every figure into ``folder``; return their file names."""
    names = ["theorem31_recovery_vs_rho.png", "theorem31_recovery_vs_k.png"]
    plot_recovery_vs_rho(os.path.join(folder, names[0]), synthetic)
    plot_recovery_vs_k(os.path.join(folder, names[1]), synthetic)
    if learned:
        names.append("theorem31_learned.png")
        plot_learned(os.path.join(folder, names[2]), learned)
    assert all(np.isfinite(r["mu"]) for r in synthetic)
    return names
