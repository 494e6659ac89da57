// What keeps the bench process alive. A suite that leaves a server, socket, child process or timer
// open keeps `npm run bench` running after it has written its results, so the harness checks after
// each suite that the suite closed what it opened, and after the results that the process can end.
// process.getActiveResourcesInfo() names the type of each handle and request that holds the event
// loop; unref'd ones (which do not keep the process alive) are not listed.

/** How long after the results the process may still run before the watchdog names what holds it. */
export const EXIT_GRACE_MS = 10_000;

/** The types of the resources holding the event loop, with how many of each. */
export function openResources(
  info: readonly string[] = process.getActiveResourcesInfo(),
): Map<string, number> {
  const counts = new Map<string, number>();
  for (const type of info) counts.set(type, (counts.get(type) ?? 0) + 1);
  return counts;
}

/** What `after` holds beyond `before`, by type, as "TCPServerWrap ×2" (one of a type: its name alone). */
export function beyond(before: Map<string, number>, after: Map<string, number>): string[] {
  const extra: string[] = [];
  for (const [type, n] of [...after].sort(([a], [b]) => a.localeCompare(b))) {
    const more = n - (before.get(type) ?? 0);
    if (more > 0) extra.push(more === 1 ? type : `${type} ×${more}`);
  }
  return extra;
}

/**
 * What a suite left open: the resources beyond `before` still there after up to `settleMs`. A
 * closed server's handle, an exited child's, a destroyed socket's go a few event-loop turns after
 * the suite's promise resolves, so this waits for them before it calls anything a leak.
 */
export async function leftOpen(
  before: Map<string, number>,
  { settleMs = 2_000, pollMs = 50, now = () => openResources() } = {},
): Promise<string[]> {
  const end = performance.now() + settleMs;
  for (;;) {
    const open = beyond(before, now());
    if (open.length === 0 || performance.now() >= end) return open;
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}

/**
 * The second line of defence, armed once the results are written: if the process is still alive
 * `graceMs` later, something holds it that the per-suite check did not catch (or a suite that failed
 * left behind). It names what is open beyond `since` (what the process held before the bench, such
 * as its stdio pipes) and exits non-zero, so an unattended run ends and says why instead of hanging.
 * The timer is unref'd: it fires only when something else keeps the process alive, so a clean run
 * ends at once and never sees it.
 */
export function armExitWatchdog({
  since = new Map<string, number>(),
  graceMs = EXIT_GRACE_MS,
  report = (line: string) => console.error(line),
  exit = (code: number) => process.exit(code),
  open = () => openResources(),
}: {
  since?: Map<string, number>;
  graceMs?: number;
  report?: (line: string) => void;
  exit?: (code: number) => void;
  open?: () => Map<string, number>;
} = {}): NodeJS.Timeout {
  const timer = setTimeout(() => {
    const holding = beyond(since, open());
    report(
      `seesaw bench: still running ${graceMs / 1000} s after the results were written, held by: ` +
        `${holding.join(', ') || 'nothing listed'}. A suite did not close a server, socket, child ` +
        'process or timer (see "LEFT OPEN" above); exiting with code 1.',
    );
    exit(1);
  }, graceMs);
  timer.unref();
  return timer;
}
