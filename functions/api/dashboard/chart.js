// The imbalance chart: coefficient of variation over time as an inline SVG line, with the
// balancer's runs marked along the time axis.
import { s } from './dom.js';

const W = 360;
const H = 150;
const PAD = { left: 34, right: 10, top: 10, bottom: 20 };
const MAX_WINDOW_MS = 5 * 60 * 1000;
const MIN_WINDOW_MS = 60 * 1000;

function niceStep(max) {
  for (const step of [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1]) if (max / step <= 5) return step;
  return 1;
}

/** samples: [{ t, cv }] ascending; runs: [{ t, moves }]. */
export function cvChart(samples, runs, now) {
  // The window grows with the history, from one minute up to five.
  const oldest = samples.length ? samples[0].t : now;
  const span = Math.min(MAX_WINDOW_MS, Math.max(MIN_WINDOW_MS, now - oldest));
  const from = now - span;
  const points = samples.filter((p) => p.t >= from);
  const maxCv = Math.max(0.12, ...points.map((p) => p.cv)) * 1.1;
  const x = (t) => PAD.left + ((t - from) / span) * (W - PAD.left - PAD.right);
  const y = (cv) => H - PAD.bottom - (cv / maxCv) * (H - PAD.top - PAD.bottom);

  const grid = [];
  const step = niceStep(maxCv);
  for (let v = 0; v <= maxCv + 1e-9; v += step) {
    grid.push(s('line', { class: 'grid', x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v) }));
    grid.push(
      s(
        'text',
        { class: 'tick', x: PAD.left - 4, y: y(v) + 3, 'text-anchor': 'end' },
        `${Math.round(v * 100)}%`,
      ),
    );
  }
  for (let m = 0; m <= 4; m++) {
    const back = (span * (4 - m)) / 4;
    const label =
      m === 4 ? 'now' : back >= 60_000 ? `-${+(back / 60_000).toFixed(1)}m` : `-${Math.round(back / 1000)}s`;
    grid.push(s('text', { class: 'tick', x: x(now - back), y: H - 5, 'text-anchor': 'middle' }, label));
  }

  const target = s('g', { class: 'target' }, [
    s('line', { x1: PAD.left, x2: W - PAD.right, y1: y(0.1), y2: y(0.1) }),
    s('text', { x: W - PAD.right - 2, y: y(0.1) - 3, 'text-anchor': 'end' }, 'target 10%'),
  ]);

  const marks = runs
    .filter((r) => r.t >= from)
    .map((r) =>
      s(
        'line',
        {
          class: r.moves > 0 ? 'run moved' : 'run',
          x1: x(r.t),
          x2: x(r.t),
          y1: H - PAD.bottom,
          y2: H - PAD.bottom - 6,
        },
        s('title', {}, `run: ${r.moves} move${r.moves === 1 ? '' : 's'}`),
      ),
    );

  const parts = [...grid, target, ...marks];
  if (points.length > 0) {
    const d = points.map((p, i) => `${i ? 'L' : 'M'}${x(p.t).toFixed(1)},${y(p.cv).toFixed(1)}`).join(' ');
    const first = points[0];
    const last = points[points.length - 1];
    parts.push(
      s('path', {
        class: 'area',
        d: `${d} L${x(last.t).toFixed(1)},${y(0)} L${x(first.t).toFixed(1)},${y(0)} Z`,
      }),
      s('path', { class: 'line', d }),
      s('circle', { class: 'dot', cx: x(last.t), cy: y(last.cv), r: 3 }),
    );
  }
  return s(
    'svg',
    {
      viewBox: `0 0 ${W} ${H}`,
      role: 'img',
      'aria-label': 'coefficient of variation of node loads over time',
    },
    parts,
  );
}
