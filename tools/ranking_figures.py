"""The figures of the final ranking report (matplotlib, no display): rank distributions as a blob plot, the
significance map, and the teams' ranks by severity."""
import io

import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

DPI = 200  # pasted into a paper
ANNOTATE_UP_TO = 15  # teams; beyond that the map's cells are too small for numbers


def png_bytes(fig: Figure) -> bytes:
    """The figure as PNG."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    return buffer.getvalue()


def blob_plot(names: list[str], replicate_ranks: np.ndarray) -> Figure:
    """Teams in official order (names, columns of replicate_ranks (B, m)) against the rank they take in each bootstrap
    replicate: a blob's area is the share of replicates, the cross the median, the bar the 95% range."""
    n_boot, m = replicate_ranks.shape
    fig = Figure(figsize=(max(4.5, 0.6 * m + 2), max(3.5, 0.45 * m + 1.5)))
    ax = fig.subplots()
    for x in range(m):
        taken, counts = np.unique(replicate_ranks[:, x], return_counts=True)
        ax.scatter(np.full(taken.size, x + 1), taken, s=600 * counts / n_boot, color="#4c72b0", alpha=0.7,
                   edgecolors="none")
        low, median, high = np.percentile(replicate_ranks[:, x], [2.5, 50, 97.5], method="lower")
        ax.plot([x + 1, x + 1], [low, high], color="black", linewidth=1)
        ax.plot(x + 1, median, marker="x", color="black", markersize=7)
    ax.plot([1, m], [1, m], color="grey", linewidth=0.5, linestyle=":")
    ax.set_xticks(range(1, m + 1), [f"{i}. {name}" for i, name in enumerate(names, start=1)], rotation=40,
                  ha="right")
    ax.set_yticks(range(1, m + 1))
    ax.set_ylim(m + 0.6, 0.4)
    ax.set_xlim(0.4, m + 0.6)
    ax.set_xlabel("team (official place)")
    ax.set_ylabel("rank by degraded macro-F1\nin bootstrap replicates")
    ax.grid(axis="y", linewidth=0.3)
    return fig


def significance_map(names: list[str], adjusted: np.ndarray, primary: np.ndarray, alpha: float) -> Figure:
    """Teams in official order on both axes (adjusted: (m, m) Holm-adjusted p-values, primary: (m,) scores in the same
    order): a cell is dark when the row's team is significantly better than the column's, light when worse."""
    m = len(names)
    better = (adjusted < alpha) & (primary[:, None] > primary[None, :])
    worse = (adjusted < alpha) & (primary[:, None] < primary[None, :])
    codes = np.where(better, 2, np.where(worse, 0, 1)).astype(float)
    np.fill_diagonal(codes, np.nan)
    fig = Figure(figsize=(max(4.5, 0.55 * m + 2.5), max(4, 0.55 * m + 1.5)))
    ax = fig.subplots()
    ax.imshow(codes, cmap=ListedColormap(["#c6dbef", "#eeeeee", "#08519c"]), vmin=0, vmax=2)
    if m <= ANNOTATE_UP_TO:
        for i in range(m):
            for j in range(m):
                if i != j:
                    ax.text(j, i, f"{adjusted[i, j]:.3f}", ha="center", va="center", fontsize=7,
                            color="white" if codes[i, j] == 2 else "black")
    ax.set_xticks(range(m), names, rotation=40, ha="right")
    ax.set_yticks(range(m), names)
    ax.set_xlabel("compared with")
    ax.set_title(f"dark: row team better, light: worse\n(Holm-adjusted p < {alpha:g}); numbers: adjusted p",
                 fontsize=9)
    return fig


def rank_lines(names: list[str], scheme_titles: list[str], scheme_ranks: np.ndarray) -> Figure:
    """Each team's rank (scheme_ranks: (schemes, m), teams in official order) across the schemes, one line each."""
    n_schemes, m = scheme_ranks.shape
    fig = Figure(figsize=(max(6, 1.3 * n_schemes + 2.5), max(3.5, 0.4 * m + 1.5)))
    ax = fig.subplots()
    x = np.arange(n_schemes)
    for team, name in enumerate(names):
        ax.plot(x, scheme_ranks[:, team], marker="o", linewidth=1.2)
        ax.annotate(f"{team + 1}. {name}", (x[-1], scheme_ranks[-1, team]), xytext=(6, 0),
                    textcoords="offset points", va="center", fontsize=8)
    ax.set_xticks(x, scheme_titles, rotation=20, ha="right")
    ax.set_yticks(range(1, m + 1))
    ax.set_ylim(m + 0.5, 0.5)
    ax.set_ylabel("rank")
    ax.grid(axis="y", linewidth=0.3)
    return fig
