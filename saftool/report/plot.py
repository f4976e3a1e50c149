"""Figures for `report`: each function draws one table (a list of row dicts from report.sql.scores,
or from report.seeds.across_seeds with `score` set to the mean over seeds) and writes it as PNG and
SVG. matplotlib loads inside the functions, with the Agg backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

Rows = list[dict[str, Any]]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, out: Path, stem: str) -> list[Path]:
    paths = [out / f"{stem}.png", out / f"{stem}.svg"]
    for path in paths:
        fig.savefig(path, dpi=120 if path.suffix == ".png" else None, bbox_inches="tight")
    return paths


def _errors(rows: Rows) -> list[list[float]]:
    """Error bar lengths; a row without an interval (one seed of a seed-group chart) gets none."""
    return [
        [r["score"] - r["low"] if r["low"] is not None else 0 for r in rows],
        [r["high"] - r["score"] if r["high"] is not None else 0 for r in rows],
    ]


def _seed_dots(ax, rows: Rows) -> None:
    """Each seed's own score, as a dot over its group's mean (rows across seeds carry `scores`)."""
    for x, r in enumerate(rows):
        values = r.get("scores") or []
        if len(values) > 1:
            ax.plot([x] * len(values), values, "k.", markersize=4, alpha=0.7, zorder=3)


def conservativeness_bars(rows: Rows, eval_set: str, out: Path, stem: str, note: str = "") -> list[Path]:
    """The study's Fig1: % of safe prompts refused, one bar per model, with 95% intervals."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(rows) + 2), 4.5))
    names = [r["model"] for r in rows]
    bars = ax.bar(names, [r["score"] for r in rows], yerr=_errors(rows), color="skyblue", capsize=4)
    ax.bar_label(bars, labels=[f"{r['score']:.2f}" for r in rows], padding=3, fontsize=8)
    _seed_dots(ax, rows)
    ax.set_title(f"Conservativeness score (%) by model - {eval_set}{note}")
    ax.set_xlabel("Model")
    ax.set_ylabel("Safe prompts refused (%)")
    ax.tick_params(axis="x", rotation=15)
    paths = _save(fig, out, stem)
    plt.close(fig)
    return paths


def safety_lines(rows: Rows, eval_set: str, out: Path, stem: str, note: str = "") -> list[Path]:
    """The study's Figs 2-4: safety score across models for one harmful eval set, with intervals."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(rows) + 2), 4.5))
    x = list(range(len(rows)))
    scores = [r["score"] for r in rows]
    ax.errorbar(x, scores, yerr=_errors(rows), marker="o", capsize=4, label=eval_set)
    for xi, score in zip(x, scores):
        ax.annotate(
            f"{score:.2f}", (xi, score), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8
        )
    _seed_dots(ax, rows)
    ax.set_xticks(x, [r["model"] for r in rows], rotation=15)
    ax.set_ylim(0, 105)
    ax.grid(True, alpha=0.4)
    ax.legend(loc="lower right")
    ax.set_title(f"Safety score (%) by model - {eval_set}{note}")
    ax.set_xlabel("Model")
    ax.set_ylabel("Safe answers (%)")
    paths = _save(fig, out, stem)
    plt.close(fig)
    return paths


def safety_vs_conservativeness(rows: Rows, out: Path, stem: str) -> list[Path]:
    """One point per model: mean safety (x) against conservativeness (y), with 95% intervals.

    `rows` hold model, safety, safety_low, safety_high, conservativeness, cons_low, cons_high."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 5))
    for r in rows:
        ax.errorbar(
            r["safety"],
            r["conservativeness"],
            xerr=[[r["safety"] - r["safety_low"]], [r["safety_high"] - r["safety"]]],
            yerr=[[r["conservativeness"] - r["cons_low"]], [r["cons_high"] - r["conservativeness"]]],
            marker="o",
            capsize=3,
            label=r["model"],
        )
    ax.set_xlabel("Safety score (%), harmful eval sets pooled")
    ax.set_ylabel("Conservativeness score (%), benign eval sets pooled")
    ax.set_title("Safety vs conservativeness")
    ax.grid(True, alpha=0.4)
    ax.legend(fontsize=8, loc="best")
    paths = _save(fig, out, stem)
    plt.close(fig)
    return paths
