// Tiny DOM builders. Text from the API only ever becomes a Text node or an attribute value,
// never markup, so a VM or node named `<img onerror=…>` shows as those characters.

const SVG_NS = 'http://www.w3.org/2000/svg';

function build(el, attrs, children) {
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') el.addEventListener(name.slice(2), value);
    else if (name === 'style' && typeof value === 'object') {
      for (const [prop, v] of Object.entries(value)) el.style.setProperty(prop, String(v));
    } else el.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** An HTML element: h('button', { class: 'x', onclick }, 'text', otherNode). */
export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

/** An SVG element, same calling convention as h(). */
export function s(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

/** Replaces a container's content only when its data changed, so open menus and focus survive polls. */
export function patch(container, key, render) {
  if (container.dataset.key === key) return;
  container.dataset.key = key;
  container.replaceChildren(...[render()].flat().filter((child) => child !== null && child !== undefined));
}

export function fmt(n, digits = 1) {
  return typeof n === 'number' && Number.isFinite(n) ? n.toFixed(digits) : '–';
}

export function pct(fraction, digits = 0) {
  return typeof fraction === 'number' && Number.isFinite(fraction)
    ? `${(fraction * 100).toFixed(digits)}%`
    : '–';
}

export function ago(ms, now) {
  if (typeof ms !== 'number') return '';
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  return `${Math.floor(s / 3600)}h ago`;
}
