// The dashboard: polls the API, draws the cluster, and sends the operator's actions.
import { ApiError, adoptTokenFromUrl, api, clearToken, getToken, items, setToken } from './api.js';
import { cvChart } from './chart.js';
import { ago, h, patch } from './dom.js';
import { buildView, runParts, runTime } from './model.js';
import { signIn, signOut, startSignIn } from './sign-in.js';
import { migrationsList, nodeCard, proposalView, runsList, summary, suspendedList } from './view.js';

const POLL_MS = 1500;
const $ = (id) => document.getElementById(id);

const state = {
  data: null,
  updatedAt: 0,
  samples: [],
  openedAt: Date.now(),
  proposal: null,
  openRuns: new Set(),
  timer: 0,
  polling: false,
  again: false,
};

function toast(text, kind = 'info') {
  const el = h('div', { class: `toast ${kind}` }, text);
  $('toasts').append(el);
  setTimeout(() => el.remove(), kind === 'error' ? 8000 : 4000);
}

function askToken(message) {
  clearTimeout(state.timer);
  // Signed in through a provider: its sign-in page replaces the token dialog.
  if (state.session?.mode === 'oidc') return void signIn();
  const dialog = $('token-dialog');
  $('token-error').hidden = !message;
  $('token-error').textContent = message ?? '';
  $('token-input').value = '';
  if (!dialog.open) dialog.showModal();
}

async function fetchAll() {
  // The imbalance is computed here from the nodes, as GET /v1/cluster does, saving it a second scan.
  const [nodes, vms, runs, migrations] = await Promise.all([
    api('GET', '/v1/nodes'),
    listAllVms(),
    api('GET', '/v1/runs?limit=10').catch(() => null),
    api('GET', '/v1/migrations?limit=10').catch(() => null),
  ]);
  return { nodes: items(nodes), vms, runs: items(runs), migrations: items(migrations) };
}

async function listAllVms() {
  const all = [];
  let cursor;
  for (let page = 0; page < 20; page++) {
    const query = cursor ? `?limit=500&cursor=${encodeURIComponent(cursor)}` : '?limit=500';
    const data = await api('GET', `/v1/vms${query}`);
    all.push(...items(data));
    cursor = data?.cursor ?? data?.next;
    if (!cursor) break;
  }
  return all;
}

function record(view, runs, now) {
  state.samples.push({ t: now, cv: view.cv });
  // Runs from before the page opened fill the chart's history (runs that paired nobody saw too
  // few nodes to say anything about the cluster).
  for (const run of runs) {
    const t = runTime(run);
    const parts = runParts(run);
    const before = parts.before?.cv;
    if (run.dryRun || !parts.pairs.length || !(t < state.openedAt)) continue;
    if (typeof before === 'number' && !state.samples.some((p) => p.t === t)) {
      state.samples.push({ t, cv: before });
    }
  }
  state.samples.sort((a, b) => a.t - b.t);
  const keepFrom = now - 6 * 60 * 1000;
  while (state.samples.length && state.samples[0].t < keepFrom) state.samples.shift();
}

function render(now) {
  const { data } = state;
  if (!data) return;
  const view = buildView(data, now, state.proposal && runParts(state.proposal.result));
  const realRuns = data.runs.filter((r) => !r.dryRun);
  $('summary').replaceChildren(...summary(view, realRuns[0], now).flat());
  $('nodes').replaceChildren(...view.nodes.map((node) => nodeCard(node, view.mean, actions, now)));
  if (!view.nodes.length) $('nodes').replaceChildren(h('p', { class: 'empty' }, 'no nodes registered yet'));
  $('suspended').replaceChildren(...suspendedList(view.suspended, actions));
  patch($('migrations'), JSON.stringify([view.migrations, data.migrations, Math.floor(now / 5000)]), () =>
    migrationsList(view.migrations, data.migrations, now),
  );
  patch($('runs'), JSON.stringify([data.runs.map((r) => r.id ?? runTime(r)), Math.floor(now / 5000)]), () =>
    runsList(data.runs, state.openRuns, now),
  );
  $('chart').replaceChildren(
    cvChart(
      state.samples,
      realRuns.map((r) => ({ t: runTime(r), moves: runParts(r).ordered })),
      now,
    ),
  );
  const panel = $('proposal-panel');
  panel.hidden = !state.proposal;
  if (state.proposal) {
    patch(
      $('proposal'),
      `${state.proposal.at}:${state.proposal.refused ?? ''}:${Math.floor(now / 5000)}`,
      () => proposalView(state.proposal, actions, now),
    );
  }
}

async function poll() {
  // An action's refresh that lands during a poll runs right after it, so it sees the change.
  if (state.polling) {
    state.again = true;
    return;
  }
  state.polling = true;
  state.again = false;
  clearTimeout(state.timer);
  const started = Date.now();
  try {
    state.data = await fetchAll();
    const now = Date.now();
    state.updatedAt = now;
    record(buildView(state.data, now), state.data.runs, now);
    render(now);
    // For the benchmark: when the cluster first appeared on screen, from navigation start.
    if (!performance.getEntriesByName('seesaw:first-render').length) performance.mark('seesaw:first-render');
    $('live').textContent = 'live';
    $('live').className = 'live ok';
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      clearToken();
      askToken('The API did not accept that token.');
      return;
    }
    $('live').textContent = `stale (${ago(state.updatedAt, Date.now()) || 'never updated'})`;
    $('live').className = 'live stale';
    $('live').title = String(error?.message ?? error);
  } finally {
    state.polling = false;
  }
  // Polls start POLL_MS apart however long the answers took, so the page is never staler than that.
  state.timer = setTimeout(poll, state.again ? 0 : Math.max(250, POLL_MS - (Date.now() - started)));
}

/** Runs an action, reports its outcome, and refreshes at once so its effect shows. */
async function act(label, fn) {
  try {
    const result = await fn();
    toast(label, 'ok');
    return result;
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) askToken('The API did not accept that token.');
    else toast(`${label} failed — ${error.message}`, 'error');
    return undefined;
  } finally {
    void poll();
  }
}

const actions = {
  drain: (node, draining) =>
    act(`${draining ? 'draining' : 'undrained'} ${node}`, () =>
      api('PATCH', `/v1/nodes/${encodeURIComponent(node)}`, { draining }),
    ),
  suspend: (vm) =>
    act(`suspending ${vm}`, () => api('POST', `/v1/vms/${encodeURIComponent(vm)}/suspend`, {})),
  resume: (vm) => act(`resuming ${vm}`, () => api('POST', `/v1/vms/${encodeURIComponent(vm)}/resume`, {})),
  migrate: (vm, from) => openMigrate(vm, from),
  /** Orders exactly the reviewed plan's moves; a changed cluster or an expired plan is said in the panel. */
  apply: async (planId) => {
    try {
      const plan = await api('POST', `/v1/plans/${encodeURIComponent(planId)}/apply`, {});
      const written = (plan?.outcome ?? []).filter((o) => o.outcome === 'written').length;
      state.proposal = null;
      toast(`${written} move${written === 1 ? '' : 's'} ordered, as reviewed`, 'ok');
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) askToken('The API did not accept that token.');
      else if (
        state.proposal &&
        error instanceof ApiError &&
        (error.status === 409 || error.status === 410)
      ) {
        state.proposal = { ...state.proposal, refused: `Not applied — ${error.message}` };
        toast('the plan was not applied', 'error');
      } else toast(`applying the plan failed — ${error.message}`, 'error');
    } finally {
      render(Date.now());
      void poll();
    }
  },
  balance: async (dryRun) => {
    const result = await act(dryRun ? 'dry run done' : 'balancer ran', () =>
      api('POST', '/v1/balance', { dryRun }),
    );
    if (result === undefined) return;
    if (dryRun) state.proposal = { at: Date.now(), result };
    else {
      state.proposal = null;
      const moves = runParts(result).ordered;
      toast(`${moves} move${moves === 1 ? '' : 's'} ordered`, 'ok');
    }
    render(Date.now());
  },
};

function openMigrate(vm, from) {
  const dialog = $('migrate-dialog');
  dialog.dataset.vm = vm;
  $('migrate-vm').textContent = vm;
  const targets = (state.data?.nodes ?? [])
    .filter((n) => n.id !== from && !n.draining && n.leaseUntil >= Date.now())
    .map((n) => h('option', { value: n.id }, n.id));
  $('migrate-target').replaceChildren(h('option', { value: 'auto' }, 'auto (least loaded)'), ...targets);
  dialog.showModal();
}

function wire() {
  $('dry-run').addEventListener('click', () => actions.balance(true));
  $('balance-now').addEventListener('click', () => actions.balance(false));
  $('proposal-dismiss').addEventListener('click', () => {
    state.proposal = null;
    render(Date.now());
  });
  $('sign-out').addEventListener('click', () => {
    clearToken();
    if (state.session?.mode === 'oidc') signOut();
    else askToken();
  });
  $('token-form').addEventListener('submit', () => {
    setToken($('token-input').value.trim());
    void poll();
  });
  $('token-dialog').addEventListener('cancel', (event) => event.preventDefault());
  $('migrate-cancel').addEventListener('click', () => $('migrate-dialog').close());
  $('migrate-form').addEventListener('submit', () => {
    const vm = $('migrate-dialog').dataset.vm;
    const to = $('migrate-target').value;
    void act(`migrating ${vm} → ${to}`, () =>
      api('POST', `/v1/vms/${encodeURIComponent(vm)}/migrate`, { to }),
    );
  });
  // A page left in the background catches up as soon as it is looked at again.
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) void poll();
  });
}

adoptTokenFromUrl();
wire();
state.session = await startSignIn().catch((error) => {
  toast(String(error?.message ?? error), 'error');
  return { mode: 'oidc', signedIn: false, failed: true };
});
if (state.session.mode === 'oidc') {
  if (state.session.signedIn) void poll();
  else if (!state.session.failed) void signIn();
} else if (getToken()) void poll();
else askToken();
