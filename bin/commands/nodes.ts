// `seesaw nodes ls|show|drain|undrain|weights|override`: the nodes and the administrator's levers.
import type { Command } from 'commander';
import type { NodeView } from '../client.ts';
import {
  type CommonOptions,
  clientFor,
  num,
  numberOption,
  pct,
  printJson,
  printTable,
  table,
  when,
  withConnection,
} from './output.ts';

const FACTORS = ['cpu', 'io', 'mem', 'paging', 'net'] as const;

const weightsText = (w: Partial<Record<(typeof FACTORS)[number], number>> | null) =>
  w
    ? FACTORS.filter((f) => w[f] !== undefined)
        .map((f) => `${f} ${num(w[f])}`)
        .join('  ')
    : '-';

/** The same, compact for the `nodes ls` table (which must fit 100 columns). */
const weightsCompact = (w: Partial<Record<(typeof FACTORS)[number], number>> | null) =>
  w
    ? FACTORS.filter((f) => w[f] !== undefined)
        .map((f) => `${f}=${num(w[f])}`)
        .join(' ')
    : '-';

function showNode(node: NodeView) {
  console.log(
    table(
      ['FIELD', 'VALUE'],
      [
        ['id', node.id],
        ['live', node.live ? `yes (lease until ${when(node.leaseUntil)})` : 'no'],
        ['draining', node.draining ? 'yes' : 'no'],
        ['load', `${num(node.load)}${node.loadOverride !== null ? ' (override)' : ''}`],
        ['capacity', num(node.capacity)],
        ['memory', `${node.memUsedPages} / ${node.memCapacityPages} pages`],
        ['weights', weightsText(node.weights)],
        ['hints', weightsText(node.hints)],
        ['effective weights', weightsText(node.effectiveWeights)],
        [
          'last report',
          node.report
            ? `${when(node.report.at)}, ${node.report.vmCount} VMs, steal ${num(node.report.steal)}, utilisation ${pct(node.report.utilisation)}`
            : '-',
        ],
        ['claimed by', node.claim ? `${node.claim.run} until ${when(node.claim.until)}` : '-'],
      ],
    ),
  );
  const vms = Object.entries(node.report?.vms ?? {});
  if (vms.length) {
    console.log('');
    printTable(
      ['VM', 'LOAD', 'CPU', 'IO', 'MEM', 'FENCE', 'BUSY'],
      vms.map(([id, vm]) => [
        id,
        num(vm.load),
        num(vm.factors.cpu),
        num(vm.factors.io),
        num(vm.factors.mem),
        vm.fence,
        vm.busy ? 'yes' : '',
      ]),
    );
  }
}

function parsePairs(flag: string, text: string | undefined): Record<string, number> | undefined {
  if (!text) return undefined;
  const out: Record<string, number> = {};
  for (const pair of text.split(',')) {
    const [key, value] = pair.split('=').map((s) => s.trim());
    if (!key || !FACTORS.includes(key as (typeof FACTORS)[number]))
      throw new Error(`${flag}: "${key}" is not one of ${FACTORS.join(', ')}`);
    out[key] = numberOption(flag, value) ?? Number.NaN;
  }
  return out;
}

/** `nodes ls`: every node with its load. */
function registerList(nodes: Command) {
  withConnection(nodes.command('ls').description('list nodes with their load')).action(
    async (options: CommonOptions) => {
      const { items } = await clientFor(options).listNodes();
      if (options.json) return printJson(items);
      printTable(
        ['ID', 'LIVE', 'DRAINING', 'LOAD', 'VMS', 'CAPACITY', 'UTIL', 'WEIGHTS (effective)'],
        items.map((n) => [
          n.id,
          n.live ? 'yes' : 'no',
          n.draining ? 'yes' : '',
          `${num(n.load)}${n.loadOverride !== null ? '*' : ''}`,
          n.report?.vmCount ?? 0,
          num(n.capacity),
          n.report ? pct(n.report.utilisation) : '-',
          weightsCompact(n.effectiveWeights),
        ]),
        'no nodes registered',
      );
    },
  );
}

/** `nodes show ID`: one node and its VMs. */
function registerShow(nodes: Command) {
  withConnection(nodes.command('show <id>').description('show one node and its VMs')).action(
    async (id: string, options: CommonOptions) => {
      const node = await clientFor(options).getNode(id);
      if (options.json) printJson(node);
      else showNode(node);
    },
  );
}

/** `nodes drain|undrain ID`. */
function registerDrain(nodes: Command) {
  for (const [name, draining] of [
    ['drain', true],
    ['undrain', false],
  ] as const) {
    withConnection(
      nodes
        .command(`${name} <id>`)
        .description(draining ? 'give all VMs away and take none' : 'take VMs again'),
    ).action(async (id: string, options: CommonOptions) => {
      const node = await clientFor(options).patchNode(id, { draining });
      if (options.json) printJson(node);
      else console.log(`${id} ${draining ? 'is draining' : 'takes VMs again'}`);
    });
  }
}

/** `nodes weights ID [--set] [--hints]`: show or change the weights and hints. */
function registerWeights(nodes: Command) {
  withConnection(
    nodes
      .command('weights <id>')
      .description(
        'show or change the Fig. 4 weights and performance-monitor hints (effective = weight × hint)',
      )
      .option('--set <list>', 'weights to change, e.g. cpu=0.8,io=0.3')
      .option('--hints <list>', "replace the hints, e.g. cpu=1.2 ('' resets them)"),
  ).action(async (id: string, options: CommonOptions & { set?: string; hints?: string }) => {
    const client = clientFor(options);
    const weights = parsePairs('--set', options.set);
    const hints = options.hints === '' ? {} : parsePairs('--hints', options.hints);
    const node =
      weights || hints
        ? await client.patchNode(id, { ...(weights ? { weights } : {}), ...(hints ? { hints } : {}) })
        : await client.getNode(id);
    if (options.json)
      return printJson({
        id: node.id,
        weights: node.weights,
        hints: node.hints,
        effectiveWeights: node.effectiveWeights,
      });
    console.log(
      table(
        ['', 'WEIGHTS'],
        [
          ['weights', weightsText(node.weights)],
          ['hints', weightsText(node.hints)],
          ['effective', weightsText(node.effectiveWeights)],
        ],
      ),
    );
  });
}

/** `nodes override ID LOAD|clear`: the node's load for balancing. */
function registerOverride(nodes: Command) {
  withConnection(
    nodes
      .command('override <id> <load>')
      .description("set the node's load for balancing ('clear' removes the override)"),
  ).action(async (id: string, load: string, options: CommonOptions) => {
    const loadOverride = load === 'clear' ? null : (numberOption('load', load) ?? null);
    const node = await clientFor(options).patchNode(id, { loadOverride });
    if (options.json) printJson(node);
    else
      console.log(
        loadOverride === null
          ? `${id}: override cleared (load ${num(node.load)})`
          : `${id}: load set to ${num(loadOverride)}`,
      );
  });
}

export function registerNodes(program: Command) {
  const nodes = program.command('nodes').description('list and inspect nodes; drain them, change weights');
  for (const register of [registerList, registerShow, registerDrain, registerWeights, registerOverride])
    register(nodes);
}
