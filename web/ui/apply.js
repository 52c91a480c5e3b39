// The apply box (#/apply): paste YAML manifests, see what applying them
// would change (POST api/v1/apply?dryRun=true, which writes nothing), then
// apply them in one transaction. With prune, the services of the projects in
// the manifests that the manifests no longer name are deleted (with
// pruneVolumes, their volumes and data too): the diff lists them as
// deletions first. A refusal shows the API's reason and each document's
// field errors ("[1].spec.image: …").

import { APIError, post } from './api.js';
import { h } from './dom.js';
import { errorBox, isAbort, isAuthError, servicePath } from './parts.js';

// The text survives leaving the page (not a reload: it may hold secrets,
// so it is kept in memory only).
let draft = '';

const ACTIONS = {
  created: ['Ready', '+', 'created'],
  configured: ['Progressing', '~', 'configured'],
  unchanged: ['Neutral', '=', 'unchanged'],
  pruned: ['Degraded', '−', 'pruned'],
};

function actionBadge(action, dryRun) {
  const [state, glyph, word] = ACTIONS[action] || ['Neutral', '•', action];
  const label = dryRun ? { created: 'would be created', configured: 'would change', unchanged: 'unchanged', pruned: 'would be pruned' }[action] || action : word;
  return h('span', { class: 'badge s-' + state.toLowerCase(), 'data-action': action },
    h('span', { class: 'glyph', 'aria-hidden': 'true' }, glyph), label);
}

function diffLines(diff) {
  if (!diff) return null;
  return h('pre', { class: 'diff' }, diff.split('\n').map((line) => {
    const cls = { '+': 'd-add', '-': 'd-del', '~': 'd-mod' }[line[0]] || '';
    return h('span', { class: 'd-line ' + cls }, line + '\n');
  }));
}

function objectLink(item, dryRun) {
  const label = item.kind === 'Project' ? `Project ${item.name}` : `${item.kind} ${item.project}/${item.name}`;
  if (dryRun || item.action === 'pruned') return h('span', { class: 'obj' }, label);
  if (item.kind === 'Project') return h('a', { class: 'obj', href: '#/projects/' + encodeURIComponent(item.name) }, label);
  if (item.kind === 'Service') return h('a', { class: 'obj', href: servicePath(item.project, item.name) }, label);
  return h('a', { class: 'obj', href: '#/projects/' + encodeURIComponent(item.project) }, `${item.kind} ${item.project}/${item.name}`);
}

// pruneLines: what a deletion removes, as diff lines.
function pruneLines(it) {
  const what = it.kind === 'Volume' ? 'the volume and all its data' : it.kind === 'Service' ? 'the service and its containers' : 'the object';
  return `- ${it.kind} ${it.project ? it.project + '/' : ''}${it.name}: ${what}`;
}

function results(answer) {
  const items = answer.items || [];
  const dry = !!answer.dryRun;
  const counts = {};
  for (const it of items) counts[it.action] = (counts[it.action] || 0) + 1;
  const sum = Object.entries(counts).map(([a, n]) => `${n} ${dry && a === 'pruned' ? 'to delete' : a}`).join(', ') || 'nothing';
  return h('section', { class: 'panel', 'aria-labelledby': 'apply-result-h', 'data-dry-run': String(dry) },
    h('h2', { id: 'apply-result-h', tabindex: '-1' }, dry ? `Diff: what applying would do (${sum})` : `Applied: ${sum}`),
    dry ? h('p', { class: 'muted' }, 'A dry run: nothing was written. Lines start with + (added), ~ (changed) or - (removed).') : null,
    h('ol', { class: 'apply-items' }, items.map((it) =>
      h('li', { class: 'apply-item' + (it.action === 'pruned' ? ' pruned' : ''), 'data-kind': it.kind, 'data-name': it.name, 'data-action': it.action },
        h('div', { class: 'apply-head' }, actionBadge(it.action, dry), ' ', objectLink(it, dry),
          !dry && it.generation && it.action !== 'pruned' ? h('span', { class: 'muted' }, ` · generation ${it.generation}`) : null),
        diffLines(it.action === 'pruned' ? pruneLines(it) : it.diff)))));
}

export function applyView(env) {
  const { main, setLive, authFailed } = env;
  setLive(null);
  const ctl = new AbortController();
  const area = h('textarea', {
    id: 'manifests', name: 'manifests', rows: 18, wrap: 'off', spellcheck: 'false', autocapitalize: 'off', autocomplete: 'off',
    'aria-describedby': 'manifests-help', placeholder: 'apiVersion: panelx.dev/v1\nkind: Project\nmetadata: {name: shop}\n---\napiVersion: panelx.dev/v1\nkind: Service\n…',
  });
  area.value = draft;
  const prune = h('input', { type: 'checkbox', id: 'apply-prune', 'aria-describedby': 'prune-help' });
  const pruneVolumes = h('input', { type: 'checkbox', id: 'apply-prune-volumes', disabled: true });
  const diffBtn = h('button', { type: 'submit', id: 'apply-diff' }, 'Diff');
  const applyBtn = h('button', { type: 'button', id: 'apply-go', disabled: true }, 'Apply');
  const state = h('span', { class: 'muted', id: 'apply-state', role: 'status' }, 'Diff first: Apply writes what the diff showed.');
  const out = h('div', { id: 'apply-out', 'aria-live': 'polite' });
  const form = h('form', { class: 'apply-form', id: 'apply-form' },
    h('label', { for: 'manifests' }, 'Manifests (YAML or JSON)'),
    area,
    h('p', { id: 'manifests-help', class: 'help' },
      'One or more documents separated by ', h('code', {}, '---'), ', as ', h('code', {}, 'panelx apply -f'), ' reads them. ',
      'Diff is a dry run (nothing is written); Apply writes them all in one transaction, or nothing if one is refused. ',
      'What you paste stays in this tab\'s memory only.'),
    h('fieldset', { class: 'prune' },
      h('legend', {}, 'Prune'),
      h('label', { class: 'check' }, prune, ' Delete the services of these projects that the manifests do not name'),
      h('label', { class: 'check' }, pruneVolumes, ' … and their volumes, with all the data in them'),
      h('p', { id: 'prune-help', class: 'help' }, 'Only projects the manifests name are looked at; Secrets are never deleted. The diff lists what would go.')),
    h('div', { class: 'actions' }, diffBtn, applyBtn, state));
  main.replaceChildren(
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/' }, 'Projects'), h('span', { 'aria-hidden': 'true' }, ' › '),
      h('span', { 'aria-current': 'page' }, 'Apply')),
    h('h1', { tabindex: '-1' }, 'Apply manifests'),
    form, out);

  let diffed = null; // what the last successful diff was of: the text and the prune options

  const request = () => JSON.stringify([area.value, prune.checked, prune.checked && pruneVolumes.checked]);
  const sync = () => {
    draft = area.value;
    pruneVolumes.disabled = !prune.checked;
    const ready = diffed !== null && diffed === request();
    applyBtn.disabled = !ready;
    if (diffed !== null && !ready) state.textContent = 'The text or the prune options changed since the diff: diff again before applying.';
  };
  area.addEventListener('input', sync);
  prune.addEventListener('change', sync);
  pruneVolumes.addEventListener('change', sync);

  async function call(dryRun) {
    const text = area.value;
    if (!text.trim()) {
      out.replaceChildren(h('p', { class: 'problem', role: 'alert' }, 'Paste at least one manifest first.'));
      area.focus();
      return;
    }
    const button = dryRun ? diffBtn : applyBtn;
    const asked = request();
    const query = { dryRun: dryRun ? 'true' : undefined, prune: prune.checked ? 'true' : undefined,
      pruneVolumes: prune.checked && pruneVolumes.checked ? 'true' : undefined };
    diffBtn.disabled = true;
    applyBtn.disabled = true;
    state.textContent = dryRun ? 'Comparing with what the server has…' : 'Applying…';
    try {
      const answer = await post('api/v1/apply', text, { query, contentType: 'application/yaml', signal: ctl.signal });
      out.replaceChildren(results(answer));
      applyBtn.textContent = 'Apply';
      if (dryRun) {
        diffed = asked;
        const items = answer.items || [];
        const changes = items.filter((i) => i.action !== 'unchanged').length;
        const deletions = items.filter((i) => i.action === 'pruned').length;
        if (deletions) applyBtn.textContent = `Apply and delete ${deletions}`;
        state.textContent = changes
          ? `${changes} object${changes === 1 ? '' : 's'} would change${deletions ? `, ${deletions} of them deleted` : ''}: Apply writes them.`
          : 'Nothing would change.';
      } else {
        diffed = null;
        state.textContent = 'Applied. Follow the objects from the links below; Diff again to compare.';
      }
    } catch (e) {
      if (ctl.signal.aborted || isAbort(e)) return;
      if (isAuthError(e)) return authFailed(e);
      diffed = null;
      out.replaceChildren(errorBox(e, dryRun ? 'Diff' : 'Apply'), documentHint(e));
      state.textContent = dryRun ? 'The diff was refused.' : 'Nothing was applied.';
    } finally {
      if (!ctl.signal.aborted) {
        diffBtn.disabled = false;
        sync();
        if (document.activeElement === document.body || document.activeElement === null) (button.disabled ? diffBtn : button).focus();
      }
    }
  }

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    call(true);
  });
  applyBtn.addEventListener('click', () => call(false));
  if (!draft) area.focus();

  return { dispose() { ctl.abort(); } };
}

// documentHint: field paths start with the document's index ([0] is the
// first document).
function documentHint(e) {
  if (!(e instanceof APIError) || !Array.isArray(e.problem.errors) || !e.problem.errors.some((x) => /^\[\d+\]/.test(x.field || ''))) return '';
  return h('p', { class: 'help' }, 'Field paths start with the document\'s index: [0] is the first document.');
}
