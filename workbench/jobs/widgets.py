"""`job.monitor()`: an ipywidgets view of a job for people who stay in the notebook — its state
and elapsed time, a live plot of its metrics (SVG, no plotting library needed) and its log tail,
refreshed from a background thread until the job ends."""

from __future__ import annotations

import html
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workbench.jobs.client import Job

ENDED = ("succeeded", "failed", "cancelled", "lost")
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")


def metric_svg(
    series: dict[str, list[tuple[int, float]]], width: int = 420, height: int = 160
) -> str:
    """One polyline per metric, each scaled to its own range (names in the legend)."""
    if not series:
        return "<em>no metrics yet</em>"
    pad = 24
    lines, legend = [], []
    for i, (name, points) in enumerate(sorted(series.items())):
        colour = COLOURS[i % len(COLOURS)]
        steps = [s for s, _ in points]
        values = [v for _, v in points]
        lo, hi = min(values), max(values)
        s0, s1 = min(steps), max(steps)
        xy = " ".join(
            f"{pad + (s - s0) / ((s1 - s0) or 1) * (width - 2 * pad):.1f},"
            f"{height - pad - (v - lo) / ((hi - lo) or 1) * (height - 2 * pad):.1f}"
            for s, v in points
        )
        lines.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{xy}"/>')
        legend.append(
            f'<text x="{pad + 110 * i}" y="14" fill="{colour}" font-size="12">'
            f"{html.escape(name)} {values[-1]:.4g}</text>"
        )
    return (
        f'<svg width="{width}" height="{height}" class="wb-metric-plot">'
        f'<rect width="{width}" height="{height}" fill="white" stroke="#ccc"/>'
        + "".join(lines + legend)
        + "</svg>"
    )


class JobMonitor:
    """The widget; displayed by Jupyter through `_repr_mimebundle_`."""

    def __init__(self, job: Job, poll: float = 2.0) -> None:
        import ipywidgets as w

        self.job = job
        self.poll = poll
        self.state = w.HTML()
        self.plot = w.HTML()
        self.log = w.Textarea(layout=w.Layout(width="100%", height="12em"), disabled=True)
        self.view = w.VBox([self.state, self.plot, self.log])
        self._series: dict[str, list[tuple[int, float]]] = {}
        self._after = 0
        self._stop = threading.Event()
        self.update()
        threading.Thread(target=self._run, daemon=True).start()

    def update(self) -> None:
        j = self.job.refresh().data
        for m in self.job.metrics(self._after):
            self._series.setdefault(m["name"], []).append((m["step"], m["value"]))
            self._after = m["id"]
        error = f" — {html.escape(j['error'])}" if j.get("error") else ""
        self.state.value = (
            f"<b>job {j['id']}</b> {html.escape(j['name'])} for {html.escape(j['tenant'])}: "
            f"<b>{j['state']}</b>, {j.get('elapsed_seconds') or 0:.0f} s, "
            f"{j.get('gpu_hours', 0):.3f} GPU-h{error}"
        )
        self.plot.value = metric_svg(self._series)
        self.log.value = self.job.logs(8192)

    def _run(self) -> None:
        while not self._stop.wait(self.poll):
            try:
                self.update()
            except Exception as e:  # the widget shows it; the thread keeps trying
                self.state.value += f" <em>(update failed: {html.escape(str(e))})</em>"
            if self.job.state in ENDED:
                return

    def close(self) -> None:
        self._stop.set()

    def _repr_mimebundle_(self, **kw: Any) -> Any:
        return self.view._repr_mimebundle_(**kw)
