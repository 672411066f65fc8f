"""A training run's curves as a small SVG beside the model (no plotting library needed):
training loss and train / validation accuracy per epoch."""
from pathlib import Path
from xml.sax.saxutils import escape


def _polyline(points: list[tuple[float, float]], color: str) -> str:
    return f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in points)}"/>'


def write_curves_svg(history: list[dict], path: Path, title: str) -> None:
    """history: one dict per epoch with epoch, loss, trainAccuracy, validationAccuracy."""
    width, height, left, right, top, panel, gap = 720, 470, 60, 150, 40, 170, 50
    plot_w = width - left - right
    epochs = [h["epoch"] for h in history] or [1]
    last = max(epochs[-1], 2)
    x = lambda e: left + plot_w * (e - 1) / (last - 1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
             '<rect width="100%" height="100%" fill="white"/>',
             f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="14">{escape(title)}</text>']
    panels = [
        ("training loss", [("loss", "#d95f02", "loss")], 0.0, max([h["loss"] for h in history] + [1e-9]) * 1.05, "{:.2f}"),
        ("accuracy %", [("train", "#7570b3", "trainAccuracy"), ("validation", "#1b9e77", "validationAccuracy")],
         min([100 * h["validationAccuracy"] for h in history] + [100.0]) // 5 * 5, 100.0, "{:.0f}"),
    ]
    for i, (label, series, low, high, fmt) in enumerate(panels):
        y0 = top + i * (panel + gap)
        y = lambda v: y0 + panel - panel * (v - low) / ((high - low) or 1)
        parts.append(f'<text x="14" y="{y0 + panel / 2}" transform="rotate(-90 14 {y0 + panel / 2})" text-anchor="middle">{label}</text>')
        for k in range(5):
            v = low + (high - low) * k / 4
            parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#eee"/>')
            parts.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{fmt.format(v)}</text>')
        for j, (name, color, key) in enumerate(series):
            scale = 100 if key != "loss" else 1
            parts.append(_polyline([(x(h["epoch"]), y(scale * h[key])) for h in history], color))
            final = f" {scale * history[-1][key]:.2f}" if history else ""
            parts.append(f'<text x="{left + plot_w + 8}" y="{y0 + 14 + 16 * j}" fill="{color}">{name}{final}</text>')
        for e in range(1, last + 1, max(1, last // 10)):
            parts.append(f'<text x="{x(e):.1f}" y="{y0 + panel + 15}" text-anchor="middle">{e}</text>')
    parts.append(f'<text x="{left + plot_w / 2}" y="{height - 8}" text-anchor="middle">epoch</text></svg>')
    path.write_text("\n".join(parts) + "\n")
