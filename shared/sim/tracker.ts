// Node loads with a running sum and sum of squares, so CV is known after every single move.
import type { NodeInfo } from '../domain/types.ts';
import { CV_LEVELS, type CvLevel, type RoundPoint, type StrategyResult } from './types.ts';

/** Tracks the loads of the counted (non-draining) nodes, move by move, and the convergence marks. */
export class LoadTracker {
  readonly loads: Float64Array;
  private readonly index = new Map<string, number>();
  private readonly counted: Uint8Array;
  private sum = 0;
  private sumSq = 0;
  private readonly n: number;
  migrations = 0;
  bytesMoved = 0;
  round = 0;
  readonly roundsToCv: Record<CvLevel, number | null> = { '0.10': null, '0.05': null };
  readonly migrationsToCv: Record<CvLevel, number | null> = { '0.10': null, '0.05': null };
  readonly points: RoundPoint[] = [];

  constructor(nodes: readonly NodeInfo[], loads: readonly number[]) {
    this.loads = Float64Array.from(loads);
    this.counted = Uint8Array.from(nodes.map((n) => (n.draining ? 0 : 1)));
    for (const [i, n] of nodes.entries()) this.index.set(n.id, i);
    this.n = this.counted.reduce((s, c) => s + c, 0);
    this.recompute();
    this.mark();
  }

  /** Reset all loads (after churn or a new tick) and recompute the sums. */
  setLoads(loads: ArrayLike<number>): void {
    for (let i = 0; i < this.loads.length; i++) this.loads[i] = loads[i] ?? 0;
    this.recompute();
    this.mark();
  }

  private recompute(): void {
    this.sum = 0;
    this.sumSq = 0;
    for (let i = 0; i < this.loads.length; i++) {
      if (!this.counted[i]) continue;
      const l = this.loads[i] ?? 0;
      this.sum += l;
      this.sumSq += l * l;
    }
  }

  private add(i: number, delta: number): void {
    const old = this.loads[i] ?? 0;
    const now = old + delta;
    this.loads[i] = now;
    if (this.counted[i]) {
      this.sum += delta;
      this.sumSq += now * now - old * old;
    }
  }

  cv(): number {
    if (this.n === 0) return 0;
    const mean = this.sum / this.n;
    if (mean <= 0) return 0;
    const variance = Math.max(0, this.sumSq / this.n - mean * mean);
    return Math.sqrt(variance) / mean;
  }

  maxLoad(): number {
    let max = 0;
    for (let i = 0; i < this.loads.length; i++) if (this.counted[i]) max = Math.max(max, this.loads[i] ?? 0);
    return max;
  }

  indexOf(id: string): number {
    const i = this.index.get(id);
    if (i === undefined) throw new Error(`unknown node ${id}`);
    return i;
  }

  /** Record a migration whose load change the caller already applied to `loads` (greedy does). */
  moved(from: string, to: string, loadOnSource: number, loadOnTarget: number, bytes: number): void {
    const s = this.indexOf(from);
    const t = this.indexOf(to);
    this.loads[s] = (this.loads[s] ?? 0) + loadOnSource;
    this.loads[t] = (this.loads[t] ?? 0) - loadOnTarget;
    this.move(from, to, loadOnSource, loadOnTarget, bytes);
  }

  /** Record one migration: shed on the source, gained on the target, bytes copied. */
  move(from: string, to: string, loadOnSource: number, loadOnTarget: number, bytes: number): void {
    this.add(this.indexOf(from), -loadOnSource);
    this.add(this.indexOf(to), loadOnTarget);
    this.migrations++;
    this.bytesMoved += bytes;
    this.mark();
  }

  /** Note the first time the CV reaches each level. */
  private mark(): void {
    // With no load at all the CV says nothing (a trace replay before its first tick).
    if (this.sum <= 0) return;
    const cv = this.cv();
    for (const level of CV_LEVELS) {
      if (this.roundsToCv[level] === null && cv <= Number(level) + 1e-12) {
        this.roundsToCv[level] = this.round;
        this.migrationsToCv[level] = this.migrations;
      }
    }
  }

  /** Close a round: remember its spread for the plot. */
  endRound(): void {
    let min = Number.POSITIVE_INFINITY;
    let max = 0;
    for (let i = 0; i < this.loads.length; i++) {
      if (!this.counted[i]) continue;
      const l = this.loads[i] ?? 0;
      min = Math.min(min, l);
      max = Math.max(max, l);
    }
    this.points.push({
      round: this.round,
      cv: this.cv(),
      minLoad: Number.isFinite(min) ? min : 0,
      maxLoad: max,
      mean: this.n ? this.sum / this.n : 0,
      migrations: this.migrations,
    });
  }

  summary(initial: { maxLoad: number; cv: number }): StrategyResult {
    return {
      initial,
      final: { maxLoad: this.maxLoad(), cv: this.cv() },
      migrations: this.migrations,
      bytesMoved: this.bytesMoved,
      roundsToCv: { ...this.roundsToCv },
      migrationsToCv: { ...this.migrationsToCv },
    };
  }
}
