// The terminal emulator of a service's Terminal panel: xterm.js
// (ui/lib/xterm.js and ui/lib/xterm.css, bundled from npm by web/build.sh),
// loaded when the first session starts, never with the overview.
//
// The page's Content-Security-Policy refuses inline styles, and xterm.js
// writes some: a <style> element per terminal for its colours and cell size,
// and style attributes for 24-bit colours. Both are turned into what they
// stand for through the CSSOM, which the policy does not restrict because
// only this page's own script can use it: a <style> made with
// document.createElement becomes a constructed stylesheet (adopted while the
// element lives), setAttribute('style', …) sets element.style.cssText. The
// page's own code writes neither (dom.js refuses style), so nothing else
// changes, and markup injected into the page still gets no style.

let loading = null;

// loadXterm resolves to the bundle's exports ({Terminal, FitAddon}) once
// its stylesheet applies.
export function loadXterm() {
  loading ??= (async () => {
    cssomStyles();
    try {
      const [lib] = await Promise.all([import('./lib/xterm.js'), stylesheet(new URL('./lib/xterm.css', import.meta.url))]);
      return lib;
    } catch (e) {
      throw new Error('the terminal could not be loaded (a binary built without the dashboard\'s npm bundles has none: make build builds them): ' + e.message);
    }
  })();
  loading.catch(() => { loading = null; });
  return loading;
}

function stylesheet(href) {
  return new Promise((resolve, reject) => {
    const link = document.createElement('link');
    link.rel = 'stylesheet';
    link.href = href;
    link.addEventListener('load', resolve, { once: true });
    link.addEventListener('error', () => reject(new Error('no ' + href)), { once: true });
    document.head.append(link);
  });
}

let patched = false;

function cssomStyles() {
  if (patched) return;
  patched = true;
  const doc = document;
  const create = Document.prototype.createElement;
  doc.createElement = function createElement(tag, options) {
    if (String(tag).toLowerCase() !== 'style') return create.call(this, tag, options);
    return sheetElement(create.call(this, 'panelx-style'));
  };
  const setAttribute = Element.prototype.setAttribute;
  Element.prototype.setAttribute = function setAttributeCSSOM(name, value) {
    if (String(name).toLowerCase() === 'style' && this.style) {
      this.style.cssText = String(value);
      return;
    }
    setAttribute.call(this, name, value);
  };
}

// sheetElement stands in for a <style>: an inert, hidden element whose
// textContent is a constructed stylesheet of the document while the element
// is not removed.
function sheetElement(el) {
  const sheet = new CSSStyleSheet();
  let text = '';
  el.hidden = true;
  Object.defineProperty(el, 'textContent', {
    configurable: true,
    get: () => text,
    set: (v) => {
      text = v == null ? '' : String(v);
      sheet.replaceSync(text);
    },
  });
  document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
  const remove = el.remove.bind(el);
  el.remove = () => {
    document.adoptedStyleSheets = document.adoptedStyleSheets.filter((s) => s !== sheet);
    remove();
  };
  return el;
}

// bufferText is the terminal's text, line by line (the test reads a
// session's output with it).
export function bufferText(term) {
  const b = term.buffer.active;
  const out = [];
  for (let i = 0; i < b.length; i++) out.push(b.getLine(i)?.translateToString(true) ?? '');
  return out.join('\n').trimEnd();
}
