// A name (a guest module, a qemu image) is registered once: a VM boots it by name on every node it
// moves to, so the bytes behind a name never change. One way to register, for both kinds.
import { ConditionFailed } from '../../shared/errors.ts';
import type { Clients } from '../../shared/storage/clients.ts';
import type { NameRegistry } from '../../shared/storage/registry.ts';
import { conflict } from './problem.ts';

export interface RegisterSteps {
  /** How another registration under the name differs, for the conflict: 'other files'. */
  differs: string;
  /** Stores the bytes behind the record, once the name is claimed. */
  store(): Promise<unknown>;
  /** Undoes the claim (and whatever was stored), in order, after a failed store. */
  release: (() => Promise<unknown>)[];
  logError(error: unknown): void;
}

/**
 * Registers `record` under its name: the same registration again answers the stored record (200);
 * another one under a taken name is a conflict. The name is claimed before the bytes are stored,
 * so a losing concurrent upload never overwrites the winner's bytes.
 */
export async function registerOnce<R extends { name: string; sha256: string }>(
  clients: Clients,
  registry: NameRegistry<R>,
  record: R,
  steps: RegisterSteps,
): Promise<{ status: 200 | 201; record: R }> {
  const what = `${registry.kind.toLowerCase()} ${record.name}`;
  const existing = await registry.find(clients, record.name);
  if (existing) {
    if (existing.sha256 === record.sha256) return { status: 200, record: existing };
    throw conflict(`${what} is already registered with ${steps.differs}; register it under a new name`);
  }
  try {
    await registry.register(clients, record);
  } catch (error) {
    if (error instanceof ConditionFailed) throw conflict(`${what} was registered meanwhile`);
    throw error;
  }
  try {
    await steps.store();
  } catch (error) {
    for (const undo of steps.release) await undo().catch(steps.logError);
    throw error;
  }
  return { status: 201, record };
}
