// Sparklines: a small inline SVG line of the newest samples, built with
// createElementNS (no library, no inline style: the look comes from
// classes in app.css and SVG presentation attributes).

const NS = 'http://www.w3.org/2000/svg';
const W = 300;
const H = 64;

function svg(tag, attrs) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  return el;
}

// Sparkline keeps up to `keep` points and draws them scaled to the window's
// maximum (at least `floor`, so an idle service is a flat line at the
// bottom, not noise blown up to full height). The newest point is at the
// right edge; until `slots` points came, each takes 1/slots of the width
// (a fresh line is short, not stretched), then the line fills the width.
export class Sparkline {
  constructor({ label, keep = 120, floor = 1, slots = 30 }) {
    this.keep = keep;
    this.floor = floor;
    this.slots = Math.min(slots, keep);
    this.points = [];
    this.el = svg('svg', {
      class: 'spark', viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none',
      role: 'img', 'aria-label': label, width: '100%', height: H,
    });
    this.title = svg('title');
    this.title.textContent = label;
    this.grid = svg('line', { class: 'spark-base', x1: 0, x2: W, y1: H - 1, y2: H - 1 });
    this.area = svg('polygon', { class: 'spark-area', points: '' });
    this.line = svg('polyline', { class: 'spark-line', points: '', fill: 'none' });
    this.el.append(this.title, this.grid, this.area, this.line);
    this.el.dataset.points = '0';
  }

  push(v) {
    this.points.push(Number.isFinite(v) ? v : 0);
    if (this.points.length > this.keep) this.points.splice(0, this.points.length - this.keep);
    this.draw();
  }

  get max() {
    return this.points.reduce((m, v) => Math.max(m, v), 0);
  }

  draw() {
    const n = this.points.length;
    const top = Math.max(this.floor, this.max * 1.15);
    const step = W / Math.max(Math.max(n, this.slots) - 1, 1);
    const x0 = W - (n - 1) * step;
    const xy = this.points.map((v, i) => [x0 + i * step, H - 2 - (v / top) * (H - 6)]);
    const pts = xy.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(' ');
    this.line.setAttribute('points', pts);
    this.area.setAttribute('points', n ? `${x0.toFixed(1)},${H} ${pts} ${W},${H}` : '');
    this.el.dataset.points = String(n);
  }

  describe(text) {
    this.title.textContent = text;
    this.el.setAttribute('aria-label', text);
  }
}
