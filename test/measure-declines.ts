// Run by hand: `npx tsx test/measure-declines.ts [seeds] [rounds] [nodes] [first seed]`. How often the agents'
// order-taking rule declines an order its own balancer run wrote, on random rounds of the built-in
// scenarios (docs/protocol.md, claims). Prints one line per scenario and the total.
import { MEASURED_SCENARIOS, type RoundDeclines, scenarioDeclines } from './support/run-orders.ts';

const [seeds = 20, rounds = 12, nodes = 40, first = 1] = process.argv.slice(2).map(Number);

function line(label: string, all: RoundDeclines[]) {
  const withOrders = all.filter((r) => r.orders > 0);
  const count = (f: (r: RoundDeclines) => number) => all.reduce((sum, r) => sum + f(r), 0);
  const pct = (part: number, whole: number) => `${((100 * part) / Math.max(1, whole)).toFixed(1)} %`;
  const declinedRounds = withOrders.filter((r) => r.declined > 0).length;
  const exposedRounds = withOrders.filter((r) => r.exposed > 0).length;
  console.log(
    `${label.padEnd(14)} rounds ${String(withOrders.length).padStart(4)} with orders: ` +
      `declined in ${declinedRounds} (${pct(declinedRounds, withOrders.length)}), ` +
      `exposed in ${exposedRounds} (${pct(exposedRounds, withOrders.length)}); ` +
      `orders ${count((r) => r.orders)}: declined ${count((r) => r.declined)} ` +
      `(${pct(
        count((r) => r.declined),
        count((r) => r.orders),
      )}), exposed ${count((r) => r.exposed)}; ` +
      `orders whose source also takes from a third node ${count((r) => r.mixed)}`,
  );
}

const all: RoundDeclines[] = [];
for (const scenario of MEASURED_SCENARIOS) {
  const rows: RoundDeclines[] = [];
  for (let seed = first; seed < first + seeds; seed++)
    rows.push(...scenarioDeclines(scenario, seed, { nodes, rounds }));
  line(scenario, rows);
  all.push(...rows);
}
line('all', all);
