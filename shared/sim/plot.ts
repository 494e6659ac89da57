// `--plot FILE.svg`: CV per round and the spread of node loads (min–max over the mean), Seesaw
// against the baselines. Plain SVG, no dependencies.
import type { RoundPoint, SimSeries } from './types.ts';

const COLORS = { seesaw: '#1f77b4', greedy: '#d62728', none: '#7f7f7f' } as const;
const W = 720;
const H = 250;
const PAD = { left: 56, right: 16, top: 28, bottom: 32 };
const TITLE = 24;

/** An SVG document with two panels: CV per round, and max/mean and min/mean per round. */
export function plotSvg(title: string, series: SimSeries): string {
  const panels = [
    panel(TITLE, 'CV of node loads', series, (p) => p.cv),
    panel(
      H,
      'node load spread (max/mean above, min/mean below)',
      series,
      (p) => (p.mean > 0 ? p.maxLoad / p.mean : 1),
      (p) => (p.mean > 0 ? p.minLoad / p.mean : 1),
    ),
  ];
  const legend = (Object.keys(COLORS) as (keyof typeof COLORS)[])
    .map(
      (k, i) =>
        `<g transform="translate(${PAD.left + i * 110},${TITLE + 2 * H + 8})"><rect width="14" height="4" y="-4" fill="${COLORS[k]}"/><text x="20" font-size="12">${k}</text></g>`,
    )
    .join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${TITLE + 2 * H + 20}" viewBox="0 0 ${W} ${TITLE + 2 * H + 20}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
<text x="${PAD.left}" y="16" font-size="14" font-weight="bold">${escapeXml(title)}</text>
${panels.join('\n')}
${legend}
</svg>
`;
}

function panel(
  y0: number,
  label: string,
  series: SimSeries,
  upper: (p: RoundPoint) => number,
  lower?: (p: RoundPoint) => number,
): string {
  const all = Object.values(series).flat() as RoundPoint[];
  const rounds = Math.max(1, ...all.map((p) => p.round));
  const values = all.flatMap((p) => (lower ? [upper(p), lower(p)] : [upper(p)]));
  // A little headroom, so a flat line at the top does not hide under the frame.
  const vmax = Math.max(1e-9, ...values) * 1.08;
  const vmin = lower ? Math.min(0, ...values) : 0;
  const x = (r: number) => PAD.left + (r / rounds) * (W - PAD.left - PAD.right);
  const y = (v: number) => y0 + H - PAD.bottom - ((v - vmin) / (vmax - vmin)) * (H - PAD.top - PAD.bottom);
  const line = (points: RoundPoint[], f: (p: RoundPoint) => number, color: string, dash = '') =>
    points.length === 0
      ? ''
      : `<polyline fill="none" stroke="${color}" stroke-width="1.5"${dash ? ` stroke-dasharray="${dash}"` : ''} points="${points
          .map((p) => `${x(p.round).toFixed(1)},${y(f(p)).toFixed(1)}`)
          .join(' ')}"/>`;
  const lines = (Object.keys(COLORS) as (keyof typeof COLORS)[])
    .map((k) => line(series[k], upper, COLORS[k]) + (lower ? line(series[k], lower, COLORS[k], '4 3') : ''))
    .join('\n');
  const ticks = [vmin, (vmin + vmax) / 2, vmax]
    .map(
      (v) =>
        `<text x="${PAD.left - 6}" y="${y(v) + 4}" font-size="11" text-anchor="end">${v.toFixed(2)}</text>`,
    )
    .join('');
  return `<g>
<text x="${PAD.left}" y="${y0 + PAD.top - 8}" font-size="12">${escapeXml(label)}</text>
<line x1="${PAD.left}" y1="${y(vmin)}" x2="${W - PAD.right}" y2="${y(vmin)}" stroke="#999"/>
<line x1="${PAD.left}" y1="${y0 + PAD.top}" x2="${PAD.left}" y2="${y(vmin)}" stroke="#999"/>
${ticks}
<text x="${W - PAD.right}" y="${y(vmin) + 16}" font-size="11" text-anchor="end">round ${rounds}</text>
${lines}
</g>`;
}

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
