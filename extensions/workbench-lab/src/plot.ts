/** A small SVG line plot of a job's metrics: one line per metric name, no chart library. */
import {
  formatTick,
  pathData,
  project,
  scaleFor,
  type Series
} from './logic';

const SVG = 'http://www.w3.org/2000/svg';
const WIDTH = 300;
const HEIGHT = 170;
const PAD = 28;
const COLORS = ['#1976d2', '#e65100', '#2e7d32', '#6a1b9a', '#c62828', '#00838f'];

function el<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | number>
): SVGElementTagNameMap[K] {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) {
    node.setAttribute(k, String(v));
  }
  return node;
}

/**
 * Draws `series` into a fresh `svg.wb-metric-plot` (with `data-points`, the total number of
 * points, and one `path.wb-metric-line[data-metric]` per metric) and its legend.
 */
export function renderPlot(series: Series): HTMLElement {
  const box = document.createElement('div');
  box.className = 'wb-metric-box';
  let total = 0;
  for (const points of series.values()) {
    total += points.length;
  }
  const svg = el('svg', {
    class: 'wb-metric-plot',
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
    role: 'img',
    'data-points': total,
    'data-series': series.size
  });
  box.appendChild(svg);
  if (total === 0) {
    const empty = document.createElement('div');
    empty.className = 'wb-metric-empty';
    empty.textContent = 'No metrics yet — log them with workbench.jobs.log_metric(name, value, step).';
    box.appendChild(empty);
    return box;
  }
  const s = scaleFor(series, WIDTH, HEIGHT, PAD);
  svg.appendChild(
    el('rect', {
      class: 'wb-metric-frame',
      x: PAD,
      y: PAD,
      width: WIDTH - 2 * PAD,
      height: HEIGHT - 2 * PAD
    })
  );
  const label = (x: number, y: number, text: string, anchor: string) => {
    const t = el('text', { x, y, 'text-anchor': anchor, class: 'wb-metric-tick' });
    t.textContent = text;
    svg.appendChild(t);
  };
  label(PAD - 3, PAD + 4, formatTick(s.y1), 'end');
  label(PAD - 3, HEIGHT - PAD, formatTick(s.y0), 'end');
  label(PAD, HEIGHT - PAD + 12, formatTick(s.x0), 'start');
  label(WIDTH - PAD, HEIGHT - PAD + 12, formatTick(s.x1), 'end');

  const legend = document.createElement('div');
  legend.className = 'wb-metric-legend';
  let i = 0;
  for (const [name, points] of series) {
    const color = COLORS[i++ % COLORS.length];
    const path = el('path', {
      class: 'wb-metric-line',
      d: pathData(points, s),
      stroke: color,
      fill: 'none',
      'data-metric': name,
      'data-points': points.length
    });
    svg.appendChild(path);
    if (points.length === 1) {
      const q = project(points[0], s);
      svg.appendChild(el('circle', { cx: q.x, cy: q.y, r: 2.5, fill: color }));
    }
    const item = document.createElement('span');
    item.className = 'wb-metric-key';
    item.dataset.metric = name;
    const last = points[points.length - 1];
    item.style.color = color;
    item.textContent = `${name}: ${formatTick(last.y)} (step ${last.x})`;
    legend.appendChild(item);
  }
  box.appendChild(legend);
  return box;
}
