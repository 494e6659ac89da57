// Renders the page's panels from the view model. Every function returns DOM built with h()/s(),
// so API text is never parsed as markup.
import { ago, fmt, h, pct } from './dom.js';
import { dominantReason, runParts, runTime } from './model.js';

/** What each colour band means, as the legend says it. */
export const BAND_TITLES = {
  under: 'more than 10 % below the mean load',
  even: 'within 10 % of the mean load',
  over: 'more than 10 % above the mean load',
  draining: 'draining: gives its VMs away, takes none',
  dead: 'dead: its lease lapsed',
};

function badge(text, kind, title) {
  return h('span', { class: `badge ${kind}`, title }, text);
}

export function summary(view, lastRun, now) {
  // Each figure is one group, so a narrow header wraps between figures, never inside one.
  const item = (label, value, cls) =>
    h('div', { class: 'figure' }, h('dt', {}, label), h('dd', { class: cls }, value));
  const live = view.nodes.filter((n) => !n.dead).length;
  return [
    item('nodes', `${live}/${view.nodes.length}`),
    item('VMs', `${view.running}/${view.vmCount}`),
    item('imbalance', pct(view.cv, 1), view.cv <= 0.1 ? 'good' : 'bad'),
    item('max/mean', fmt(view.maxOverMean, 2)),
    item('last run', lastRun ? ago(runTime(lastRun), now) || '–' : '–'),
  ];
}

function vmRow(vm, node, actions) {
  const running = vm.state === 'RUNNING' && !vm.migration;
  const badges = [];
  if (vm.state !== 'RUNNING') badges.push(badge(vm.state.toLowerCase(), 'state', vm.reason ?? undefined));
  // A failed guest says why (a backing-off one too, until its retry).
  if (vm.reason && (vm.state === 'FAILED' || vm.state === 'PENDING'))
    badges.push(
      badge(vm.reason, 'failed', vm.state === 'FAILED' ? 'why the guest failed' : 'last failure; retrying'),
    );
  if (vm.pinned) badges.push(badge('pinned', 'pinned'));
  // A real x86 VM says so; the WebAssembly kernel is the default driver and goes unmarked.
  if (vm.guest?.startsWith('qemu:'))
    badges.push(badge(vm.guest, 'driver', 'runs under the qemu driver: one QEMU process'));
  if (vm.migration) {
    badges.push(badge(`→ ${vm.migration.to} · ${vm.migration.phase}`, 'moving', 'migration in flight'));
  }
  if (vm.proposedTo) badges.push(badge(`dry run → ${vm.proposedTo}`, 'proposed', 'proposed by the dry run'));
  return h(
    'li',
    { class: `vm${vm.proposedTo ? ' proposed' : ''}${vm.migration ? ' migrating' : ''}`, 'data-vm': vm.id },
    h('span', { class: 'vm-id' }, vm.id),
    h('span', { class: 'vm-badges' }, badges),
    h(
      'span',
      { class: 'vm-load', title: 'measured load on this node, under its weights' },
      fmt(vm.load),
      typeof vm.targetLoad === 'number'
        ? h(
            'small',
            {
              class: 'vm-target',
              title: 'programmed target load (Fig. 7): guides selection, does not limit',
            },
            ` target ${fmt(vm.targetLoad)}`,
          )
        : null,
      typeof vm.cpuLimit === 'number'
        ? h(
            'small',
            { class: 'vm-limit', title: 'CPU limit, in cores, enforced by the node’s kernel' },
            ` limit ${fmt(vm.cpuLimit)}`,
          )
        : null,
    ),
    h(
      'span',
      { class: 'vm-actions' },
      h(
        'button',
        {
          type: 'button',
          disabled: !running,
          onclick: () => actions.suspend(vm.id),
          title: 'suspend to its image',
        },
        'Suspend',
      ),
      h(
        'button',
        {
          type: 'button',
          disabled: !running || vm.pinned || node.dead,
          onclick: () => actions.migrate(vm.id, node.id),
        },
        'Migrate',
      ),
    ),
  );
}

function bar(node, mean) {
  const scale = Math.max(node.capacity || 1, node.load);
  const segs = node.vms
    .filter((vm) => vm.load > 0)
    .map((vm, i) =>
      h(
        'span',
        {
          class: `seg${i % 2 ? ' alt' : ''}${vm.proposedTo ? ' proposed' : ''}`,
          style: { width: `${((vm.load / scale) * 100).toFixed(2)}%` },
          title: `${vm.id}: ${fmt(vm.load)}`,
        },
        vm.load / scale > 0.07 ? vm.id : '',
      ),
    );
  const marks = [];
  if (mean > 0 && !node.dead && !node.draining) {
    marks.push(
      h('span', { class: 'mean', style: { left: `${Math.min(100, (mean / scale) * 100).toFixed(2)}%` } }),
    );
  }
  if (node.load > node.capacity) {
    marks.push(
      h('span', { class: 'cap', style: { left: `${((node.capacity / scale) * 100).toFixed(2)}%` } }),
    );
  }
  return h(
    'div',
    {
      class: 'bar',
      role: 'meter',
      'aria-label': `${node.id} load`,
      'aria-valuemin': 0,
      'aria-valuemax': node.capacity,
      'aria-valuenow': Number(node.load.toFixed(2)),
    },
    h('div', { class: 'fill' }, segs),
    marks,
  );
}

export function nodeCard(node, mean, actions, now) {
  const badges = [];
  if (node.dead) badges.push(badge('dead', 'dead', 'lease lapsed: the agent stopped renewing it'));
  if (node.draining) badges.push(badge('draining', 'draining', 'gives its VMs away and takes none'));
  if (node.claimed) badges.push(badge('claimed', 'claimed', `booked for an exchange by run ${node.claimed}`));
  if (node.overridden) badges.push(badge('override', 'override', 'load set by an administrator'));
  if (node.load > node.capacity) badges.push(badge('over capacity', 'dead'));
  const card = h(
    'article',
    {
      class: `node band-${node.band}${node.dead ? ' is-dead' : ''}${node.draining ? ' is-draining' : ''}`,
      title: BAND_TITLES[node.band],
      'data-node': node.id,
      'data-band': node.band,
      'data-draining': node.draining ? 'true' : 'false',
      'data-dead': node.dead ? 'true' : 'false',
    },
    h(
      'header',
      {},
      h('h3', {}, node.id),
      h('span', { class: 'badges' }, badges),
      h(
        'span',
        { class: 'node-load' },
        h('strong', {}, fmt(node.load)),
        ` / ${fmt(node.capacity, 1)}`,
        h('small', {}, ` · ${pct(node.capacity ? node.load / node.capacity : 0)}`),
      ),
      h(
        'button',
        {
          type: 'button',
          class: 'drain',
          onclick: () => actions.drain(node.id, !node.draining),
          title: node.draining ? 'let the node take VMs again' : 'move every VM off this node',
        },
        node.draining ? 'Undrain' : 'Drain',
      ),
    ),
    bar(node, mean),
    node.vms.length
      ? h(
          'ul',
          { class: 'vms' },
          node.vms.map((vm) => vmRow(vm, node, actions)),
        )
      : h('p', { class: 'empty' }, node.dead ? 'no VMs (dead)' : 'no VMs'),
    h(
      'footer',
      {},
      `weights cpu ${fmt(node.weights?.cpu, 2)} · io ${fmt(node.weights?.io, 2)} · mem ${fmt(node.weights?.mem, 2)}`,
      typeof node.steal === 'number' && node.steal > 0 ? ` · unserved ${fmt(node.steal)}` : '',
      node.reportAt ? ` · reported ${ago(node.reportAt, now)}` : ' · no report yet',
    ),
  );
  return card;
}

export function suspendedList(vms, actions) {
  if (!vms.length) return [];
  return [
    h('h3', {}, 'Suspended'),
    h(
      'ul',
      { class: 'vms' },
      vms.map((vm) =>
        h(
          'li',
          { class: 'vm', 'data-vm': vm.id },
          h('span', { class: 'vm-id' }, vm.id),
          h('span', { class: 'vm-badges' }, badge(`image on ${vm.owner}`, 'state')),
          h('span', { class: 'vm-load' }, ''),
          h(
            'span',
            { class: 'vm-actions' },
            h('button', { type: 'button', onclick: () => actions.resume(vm.id) }, 'Resume'),
          ),
        ),
      ),
    ),
  ];
}

export function migrationsList(inFlight, history, now) {
  const rows = inFlight.map((m) =>
    h(
      'li',
      { class: 'migration live', 'data-migration': m.vm },
      h('span', { class: 'vm-id' }, m.vm),
      h('span', {}, `${m.from} → ${m.to}`),
      badge(m.phase, m.phase === 'IMAGE_READY' ? 'ready' : 'moving'),
      h('small', {}, ago(m.orderedAt, now)),
    ),
  );
  const done = history.slice(0, 6).map((m) => {
    const bytes = m.bytes ? (m.bytes.precopy ?? 0) + (m.bytes.final ?? 0) : undefined;
    const facts = [
      m.outcome,
      typeof m.downtimeMs === 'number' ? `down ${m.downtimeMs} ms` : '',
      typeof bytes === 'number' ? `${(bytes / 1024).toFixed(0)} KiB` : '',
      ago(m.endedAt, now),
    ];
    return h(
      'li',
      { class: `migration ${m.outcome ?? ''}` },
      h('span', { class: 'vm-id' }, m.vm),
      h('span', {}, `${m.from} → ${m.to}`),
      h('small', {}, facts.filter(Boolean).join(' · ')),
    );
  });
  if (!rows.length && !done.length) return h('p', { class: 'empty' }, 'none yet');
  return [
    rows.length ? h('ul', { class: 'list' }, rows) : h('p', { class: 'empty' }, 'none in flight'),
    done.length ? h('ul', { class: 'list history' }, done) : null,
  ];
}

function pairLine(pair) {
  const code = pair.reason?.code ?? '?';
  return h(
    'li',
    { class: `pair ${code}` },
    h('span', { class: 'pair-nodes' }, `${pair.requester} ↔ ${pair.selected}`),
    h('span', { class: 'pair-loads' }, `${fmt(pair.loads?.requester)} / ${fmt(pair.loads?.selected)}`),
    badge(code, code === 'moved' ? 'moved' : 'reason'),
    h('span', { class: 'pair-detail' }, pair.reason?.detail ?? ''),
    (pair.moves ?? []).length
      ? h('span', { class: 'pair-moves' }, pair.moves.map((m) => `${m.vm} ${m.from} → ${m.to}`).join(', '))
      : null,
  );
}

/** The reason most pairs of a run gave, as "no-gain × 2". */
function reasonBadge(run) {
  const top = dominantReason(run);
  if (!top) return null;
  return h(
    'span',
    { class: `badge reason ${top.code === 'moved' ? 'moved' : ''}`, title: 'the reason most pairs gave' },
    `${top.code} × ${top.count}`,
  );
}

export function runsList(runs, open, now) {
  if (!runs.length) return h('p', { class: 'empty' }, 'no runs yet');
  return h(
    'ul',
    { class: 'runs' },
    runs.map((run, i) => {
      const parts = runParts(run);
      const id = run.id ?? String(i);
      const details = h(
        'details',
        { open: open.has(id), 'data-run': id },
        h(
          'summary',
          {},
          h('span', {}, ago(runTime(run), now) || id),
          run.dryRun ? badge('dry run', 'proposed') : null,
          h('span', {}, `${parts.ordered} move${parts.ordered === 1 ? '' : 's'}`),
          reasonBadge(run),
          parts.pairs.length
            ? h('span', { class: 'cv' }, `CV ${pct(parts.before?.cv, 1)} → ${pct(parts.after?.cv, 1)}`)
            : h('span', { class: 'cv' }, `no pairs · ${parts.skipped.length} left out`),
        ),
        parts.pairs.length
          ? h('ul', { class: 'pairs' }, parts.pairs.map(pairLine))
          : h('p', { class: 'empty' }, 'no pairs'),
        parts.skipped.length
          ? h(
              'p',
              { class: 'skipped' },
              `left out: ${parts.skipped.map((x) => `${x.node} (${x.reason})`).join(', ')}`,
            )
          : null,
      );
      details.addEventListener('toggle', () => (details.open ? open.add(id) : open.delete(id)));
      return h('li', {}, details);
    }),
  );
}

export function proposalView(proposal, actions, now) {
  const parts = runParts(proposal.result);
  const plan = proposal.result?.plan;
  return [
    h(
      'p',
      { class: 'proposal-summary' },
      parts.moves.length
        ? `${parts.moves.length} move${parts.moves.length === 1 ? '' : 's'} would take the CV from ${pct(parts.before?.cv, 1)} to ${pct(parts.after?.cv, 1)}. Nothing has moved yet.`
        : 'The balancer would move nothing now.',
      h('small', {}, ` (asked ${ago(proposal.at, now)})`),
    ),
    parts.moves.length
      ? h(
          'ul',
          { class: 'list moves' },
          parts.moves.map((m) =>
            h(
              'li',
              { class: 'move', 'data-move': m.vm },
              h('span', { class: 'vm-id' }, m.vm),
              h('span', {}, `${m.from} → ${m.to}`),
              h('small', {}, `${fmt(m.loadOnSource)} → ${fmt(m.loadOnTarget)}`),
            ),
          ),
        )
      : null,
    parts.pairs.length ? h('ul', { class: 'pairs' }, parts.pairs.map(pairLine)) : null,
    proposal.refused ? h('p', { class: 'refused', role: 'alert' }, proposal.refused) : null,
    plan && parts.moves.length && !proposal.refused
      ? h(
          'p',
          { class: 'plan-note' },
          h('small', {}, `plan ${plan.id} · valid until ${new Date(plan.expiresAt).toLocaleTimeString()}`),
        )
      : null,
    h(
      'menu',
      {},
      plan && parts.moves.length && !proposal.refused
        ? h(
            'button',
            {
              type: 'button',
              class: 'primary',
              onclick: () => actions.apply(plan.id),
              title: 'order exactly these moves; refused if the cluster changed since',
            },
            'Apply these moves',
          )
        : h('button', { type: 'button', onclick: () => actions.balance(true) }, 'Dry run again'),
    ),
  ];
}
