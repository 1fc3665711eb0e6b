"""The walk-forward report: a markdown table per series and one PNG of equity curves each."""

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on a server or in CI
import matplotlib.pyplot as plt

from core.timeframes import format_timestamp
from rl.walk_forward import STRATEGIES, WindowResult


def write_report(
    results: Sequence[WindowResult], folder: Path, command: str, notes: Sequence[str]
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Walk-forward evaluation of the RL signal",
        "",
        *reproduce_lines(command),
        *notes,
        "",
    ]
    by_series: dict[str, list[WindowResult]] = {}
    for result in results:
        by_series.setdefault(result.series, []).append(result)
    for series, items in by_series.items():
        image = folder / f"{series.replace('/', '_').replace(' ', '-')}.png"
        _plot(series, items, image)
        lines += [f"## {series}", "", f"![equity curves]({image.name})", ""]
        lines += [
            "| test window | trained on | tested on | model | strategy "
            "| return | Sharpe | max drawdown | trades |",
            "|---|---|---|---|---|---:|---:|---:|---:|",
        ]
        for item in items:
            for name in STRATEGIES:
                perf = item.performance[name]
                lines.append(
                    f"| {item.window} | {_span(item.train_span)} | {_span(item.test_span)} | "
                    f"`{item.model_id}` | {name} | {perf.total_return:+.2%} | {perf.sharpe:+.2f} | "
                    f"{perf.max_drawdown:.2%} | {perf.trades} |"
                )
        lines.append("")
    lines += _summary(results)
    path = folder / "WALK_FORWARD.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def reproduce_lines(command: str) -> list[str]:
    """A report's "Reproduce with" paragraph: the command that wrote it, as a code block."""
    return ["Reproduce with:", "", "```", command, "```", ""]


def _summary(results: Sequence[WindowResult]) -> list[str]:
    lines = [
        "## Summary",
        "",
        "| strategy | mean return per test window | windows where RL beat it |",
        "|---|---:|---:|",
    ]
    for name in STRATEGIES:
        mean = sum(item.performance[name].total_return for item in results) / len(results)
        beaten = sum(
            item.performance["rl"].total_return > item.performance[name].total_return
            for item in results
        )
        won = "—" if name == "rl" else f"{beaten} of {len(results)}"
        lines.append(f"| {name} | {mean:+.2%} | {won} |")
    return [*lines, ""]


def _span(span: tuple[int, int]) -> str:
    return f"{format_timestamp(span[0])[:16]} → {format_timestamp(span[1])[:16]}"


def _plot(series: str, items: Sequence[WindowResult], path: Path) -> None:
    figure, axes = plt.subplots(1, len(items), figsize=(5 * len(items), 3.5), squeeze=False)
    for axis, item in zip(axes[0], items, strict=True):
        for name in STRATEGIES:
            axis.plot(item.curves[name], label=name, linewidth=1)
        axis.set_title(f"{series}: test window {item.window}", fontsize=9)
        axis.set_xlabel("bar")
        axis.set_ylabel("portfolio value")
    axes[0][0].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)
