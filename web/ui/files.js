// The volume file browser of a service's page: the files of each Volume the
// service mounts, through the files API (GET …/volumes/<v>/files/<path> is a
// directory's listing or a file's bytes, PUT writes a file). Browse into
// directories, download a file, upload one into the directory shown (a file
// of the same name is replaced, and the button says so). What the API
// refuses (a path it will not take, a role too low, a file too large) is
// shown in its own words.
//
// Names are whatever the container wrote: they are only ever text nodes
// (in <bdi>, so one name's direction cannot reorder the row), and a path
// becomes a URL one encodeURIComponent'd segment at a time, never by
// concatenating raw names.

import { open, projectPath, request } from './api.js';
import { h, timeEl } from './dom.js';
import { errorBox } from './parts.js';

// filesURL: the files API's URL of a path (segments) in a volume.
export const filesURL = (project, volume, segments) =>
  projectPath(project, 'volumes', encodeURIComponent(volume), 'files', ...segments.map(encodeURIComponent)) +
  (segments.length ? '' : '/');

const TYPE_LABEL = { dir: 'folder', file: 'file', symlink: 'link', other: 'other' };

export function filesPanel({ project, section, failure, signal }) {
  const pick = h('select', { id: 'files-volume', 'aria-label': 'Volume' });
  const only = h('span', { id: 'files-volume-name' }); // the one volume, when there is one
  const reload = h('button', { type: 'button', class: 'secondary small', id: 'files-reload' }, 'Reload');
  const where = h('nav', { class: 'files-path', id: 'files-path', 'aria-label': 'Folder' });
  const listStatus = h('p', { class: 'muted', role: 'status' }, 'Loading…');
  const body = h('tbody');
  const table = h('div', { class: 'table-wrap' }, h('table', { class: 'table files-table', id: 'files-table' },
    h('thead', {}, h('tr', {}, [['Name'], ['Type', 'c-type'], ['Size'], ['Modified'], ['Mode', 'c-mode'], ['']]
      .map(([c, cls]) => h('th', { scope: 'col', class: cls }, c)))),
    body));
  const chooser = h('input', { type: 'file', id: 'files-upload-file' });
  const upload = h('button', { type: 'submit', id: 'files-upload', disabled: true }, 'Upload');
  const uploadForm = h('form', { class: 'files-upload', id: 'files-upload-form' },
    h('label', { for: 'files-upload-file' }, 'Upload into this folder'), chooser, upload);
  const result = h('div', { class: 'action-result', id: 'files-result', 'aria-live': 'polite' });
  const others = h('ul', { class: 'files-others' });
  const el = section('files', 'Volume files',
    h('div', { class: 'toolbar' }, h('strong', {}, 'Volume'), pick, only, reload), where, listStatus, table, uploadForm, result, others);
  el.classList.add('wide');

  let volume = '';
  let mounts = []; // [{name, mountPath, readOnly}] of Volume objects
  let segments = [];
  let items = [];
  let loadCtl = null;
  let mountsKey = '';

  const show = (node) => result.replaceChildren(node);
  const refused = (e, what) => {
    if (!failure(e)) show(errorBox(e, what));
  };

  function crumbs() {
    const m = mounts.find((x) => x.name === volume);
    const parts = [h('button', { type: 'button', class: 'link', 'data-depth': '0' }, h('bdi', {}, m ? m.mountPath : '/'))];
    segments.forEach((s, i) => parts.push(h('span', { 'aria-hidden': 'true' }, ' / '),
      i === segments.length - 1
        ? h('span', { 'aria-current': 'location' }, h('bdi', {}, s))
        : h('button', { type: 'button', class: 'link', 'data-depth': String(i + 1) }, h('bdi', {}, s))));
    where.replaceChildren(...parts);
  }
  where.addEventListener('click', (ev) => {
    const b = ev.target.closest('button[data-depth]');
    if (b) go(segments.slice(0, Number(b.dataset.depth)));
  });

  function row(item) {
    const path = [...segments, item.name];
    let name;
    if (item.type === 'dir') {
      name = h('button', { type: 'button', class: 'link file-name', 'data-name': item.name, 'aria-label': 'Open folder ' + item.name },
        h('bdi', {}, item.name + '/'));
      name.addEventListener('click', () => go(path));
    } else {
      name = h('span', { class: 'file-name', 'data-name': item.name }, h('bdi', {}, item.name));
    }
    let action = null;
    if (item.type === 'file') {
      action = h('button', { type: 'button', class: 'secondary small', 'data-download': item.name, 'aria-label': 'Download ' + item.name }, 'Download');
      action.addEventListener('click', () => download(path, item, action));
    }
    const mtime = new Date(item.mtime);
    return h('tr', { 'data-type': item.type },
      h('td', {}, name, item.linkTarget ? h('span', { class: 'muted' }, ' → ', h('bdi', {}, item.linkTarget)) : null),
      h('td', { class: 'c-type' }, TYPE_LABEL[item.type] || item.type),
      h('td', { class: 'num' }, item.type === 'file' ? formatBytes(item.size) : ''),
      h('td', {}, Number.isNaN(mtime.getTime()) ? '' : timeEl(item.mtime)),
      h('td', { class: 'c-mode' }, h('code', {}, item.mode || '')),
      h('td', {}, action));
  }

  async function go(path) {
    segments = path;
    crumbs();
    if (loadCtl) loadCtl.abort();
    loadCtl = new AbortController();
    const mine = loadCtl;
    listStatus.className = 'muted';
    listStatus.textContent = 'Loading…';
    try {
      const list = await request('GET', filesURL(project, volume, segments), { signal: AbortSignal.any([signal, mine.signal]) });
      if (mine !== loadCtl) return;
      items = [...(list.items || [])].sort((a, b) => (a.type === 'dir') === (b.type === 'dir') ? a.name.localeCompare(b.name) : a.type === 'dir' ? -1 : 1);
      const parent = segments.length
        ? h('tr', {}, h('td', { colspan: '6', class: 'up' }, (() => {
          const up = h('button', { type: 'button', class: 'link', id: 'files-up' }, '↑ Up one folder');
          up.addEventListener('click', () => go(segments.slice(0, -1)));
          return up;
        })()))
        : null;
      body.replaceChildren(...[parent, ...items.map(row)].filter(Boolean));
      table.hidden = !parent && !items.length;
      listStatus.className = items.length ? 'sr-only' : 'muted';
      listStatus.textContent = items.length
        ? `${items.length} entr${items.length === 1 ? 'y' : 'ies'}${list.truncated ? ' (the folder has more: not all are listed)' : ''}`
        : 'This folder is empty.';
      if (list.truncated) listStatus.className = 'notice';
      syncUpload();
    } catch (e) {
      if (mine !== loadCtl || signal.aborted || e.name === 'AbortError') return;
      body.replaceChildren();
      listStatus.className = '';
      if (!failure(e)) listStatus.replaceChildren(errorBox(e, 'Listing'));
    }
  }

  async function download(path, item, button) {
    button.disabled = true;
    show(h('p', { class: 'muted' }, `Downloading ${item.name}…`));
    try {
      const res = await open(filesURL(project, volume, path), { accept: 'application/octet-stream', signal });
      const blob = await res.blob();
      const url = URL.createObjectURL(blob);
      const a = h('a', { href: url, download: item.name, hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
      show(h('p', { class: 'notice', role: 'status' }, `Downloaded ${item.name} (${formatBytes(blob.size)}).`));
    } catch (e) {
      if (!signal.aborted && e.name !== 'AbortError') refused(e, 'Download');
    } finally {
      button.disabled = false;
    }
  }

  function syncUpload() {
    const f = chooser.files && chooser.files[0];
    const m = mounts.find((x) => x.name === volume);
    upload.disabled = !f;
    upload.textContent = f && items.some((i) => i.name === f.name && i.type === 'file') ? `Replace ${f.name}` : 'Upload';
    if (m && m.readOnly) upload.title = 'The service mounts this volume read-only; the volume itself can still be written here.';
  }
  chooser.addEventListener('change', syncUpload);

  uploadForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const f = chooser.files && chooser.files[0];
    if (!f) return;
    const replacing = items.some((i) => i.name === f.name);
    upload.disabled = true;
    show(h('p', { class: 'muted' }, `Uploading ${f.name} (${formatBytes(f.size)})…`));
    try {
      await request('PUT', filesURL(project, volume, [...segments, f.name]), { body: f, contentType: 'application/octet-stream', signal });
      show(h('p', { class: 'notice', role: 'status' }, `${replacing ? 'Replaced' : 'Uploaded'} ${f.name} (${formatBytes(f.size)}).`));
      chooser.value = '';
      await go(segments);
    } catch (e) {
      if (!signal.aborted && e.name !== 'AbortError') refused(e, 'Upload');
    } finally {
      syncUpload();
    }
  });

  reload.addEventListener('click', () => go(segments));
  pick.addEventListener('change', () => {
    volume = pick.value;
    result.replaceChildren();
    go([]);
  });

  return {
    el,
    update(s) {
      const vols = s.spec.volumes || [];
      mounts = vols.filter((v) => v.name).map((v) => ({ name: v.name, mountPath: v.mountPath, readOnly: !!v.readOnly }));
      el.hidden = vols.length === 0;
      const key = JSON.stringify([mounts, vols.length]);
      if (key === mountsKey) return;
      mountsKey = key;
      // The other kinds of mount are not volumes of the project: the files
      // API does not reach them.
      others.replaceChildren(...vols.filter((v) => !v.name).map((v) => h('li', { class: 'muted' },
        h('code', {}, v.mountPath), ': ',
        v.hostPath ? 'a host path' : v.dockerVolume ? 'an external Docker volume' : v.secret ? 'a file of a Secret' : v.tmpfs ? 'a tmpfs' : 'not a volume',
        ' (not browsable here)')));
      const label = (m) => `${m.name} (at ${m.mountPath}${m.readOnly ? ', read-only' : ''})`;
      pick.replaceChildren(...mounts.map((m) => h('option', { value: m.name }, label(m))));
      pick.hidden = mounts.length < 2;
      only.hidden = mounts.length !== 1;
      only.textContent = mounts.length === 1 ? label(mounts[0]) : '';
      for (const x of [where, listStatus, table, uploadForm, reload]) x.hidden = mounts.length === 0;
      if (!mounts.length) return;
      if (!mounts.some((m) => m.name === volume)) {
        volume = mounts[0].name;
        pick.value = volume;
        go([]);
      }
    },
  };
}

// formatBytes: "0 B", "512 B", "1.5 KiB", "230 MiB".
export function formatBytes(n) {
  if (!Number.isFinite(n) || n <= 0) return '0 B';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n >= 100 || i === 0 ? Math.round(n) : n.toFixed(1)} ${units[i]}`;
}
