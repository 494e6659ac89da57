import { describe, expect, it } from 'vitest';
import { InvalidScenario, parseScenario } from '../../../shared/sim/scenario-file.ts';

const valid = {
  nodes: [
    { id: 'a', capacity: 10 },
    { id: 'b', weights: { cpu: 2, io: 0, mem: 0 }, draining: true },
  ],
  vms: [
    { id: 'x', node: 'a', factors: { cpu: 1, io: 0, mem: 0.5 }, targetLoad: 2, pinned: true, group: 'g' },
    { id: 'y', node: 'b', factors: { cpu: 3, io: 1, mem: 0 }, memPages: 64 },
  ],
  config: { pairing: 'random', thresholdFactor: 1.2 },
};
const parse = (json: unknown) => parseScenario(JSON.stringify(json), 'test.json');

describe('parseScenario', () => {
  it('reads nodes, VMs and config, with defaults for what is left out', () => {
    const s = parse(valid);
    expect(s.name).toBe('test.json');
    expect(s.nodes[0]).toMatchObject({
      id: 'a',
      capacity: 10,
      weights: { cpu: 1, io: 1, mem: 1 },
      draining: false,
    });
    expect(s.nodes[1]).toMatchObject({ id: 'b', draining: true });
    expect(s.vms[0]).toMatchObject({ id: 'x', pinned: true, group: 'g', targetLoad: 2, memPages: 8192 });
    expect(s.vms[1]).toMatchObject({ memPages: 64, pinned: false });
    expect(s.config).toEqual({ pairing: 'random', thresholdFactor: 1.2 });
  });

  it('names the field of a wrong type', () => {
    const bad = structuredClone(valid);
    (bad.vms[1] as { factors: unknown }).factors = { cpu: 'lots', io: 0, mem: 0 };
    expect(() => parse(bad)).toThrow(/test\.json: vms\[1\]\.factors\.cpu: /);
  });

  it('names a missing field', () => {
    expect(() => parse({ nodes: [{ id: 'a' }], vms: [{ id: 'x', node: 'a' }] })).toThrow(/vms\[0\]\.factors/);
  });

  it('names an unknown field', () => {
    expect(() => parse({ ...valid, nodes: [{ id: 'a', colour: 'red' }] })).toThrow(/nodes\[0\]/);
  });

  it('names a bad config value', () => {
    expect(() => parse({ ...valid, config: { pairing: 'nearest' } })).toThrow(/config\.pairing/);
  });

  it('rejects a VM on a node that does not exist', () => {
    expect(() =>
      parse({ ...valid, vms: [{ id: 'x', node: 'zz', factors: { cpu: 1, io: 0, mem: 0 } }] }),
    ).toThrow('test.json: vms[0].node: no node "zz"');
  });

  it('rejects duplicate ids', () => {
    expect(() => parse({ ...valid, nodes: [{ id: 'a' }, { id: 'a' }], vms: [] })).toThrow(
      /nodes\[1\]\.id: duplicate/,
    );
  });

  it('rejects text that is not JSON with an InvalidScenario error', () => {
    expect(() => parseScenario('{nodes:', 'broken.json')).toThrow(InvalidScenario);
    expect(() => parseScenario('{nodes:', 'broken.json')).toThrow(/broken\.json: not valid JSON/);
  });

  it('gives nodes without a capacity 1.5 times the mean node load', () => {
    const s = parse({
      nodes: [{ id: 'a' }, { id: 'b' }],
      vms: [{ id: 'x', node: 'a', factors: { cpu: 4, io: 0, mem: 0 } }],
    });
    expect(s.nodes.map((n) => n.capacity)).toEqual([3, 3]);
  });
});
