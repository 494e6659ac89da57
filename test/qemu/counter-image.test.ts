// The counter guest and the serial digest, without QEMU: the boot sector's shape, the line
// sequence it must print, and the law that the digest does not depend on where output was cut.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  COUNTER_HZ,
  counterBootSector,
  counterHash,
  expectedLine,
  expectedOutput,
  LINE_BYTES,
  parseLine,
} from '../../node-agent/drivers/qemu/counter-image.ts';
import { emptySerial, foldSerial, serialDigest } from '../../node-agent/drivers/qemu/serial.ts';

describe('the counter boot sector', () => {
  it('is one 512-byte sector with the BIOS boot signature', () => {
    const sector = counterBootSector();
    expect(sector.byteLength).toBe(512);
    expect([sector[510], sector[511]]).toEqual([0x55, 0xaa]);
  });

  it('starts its counter at 0 and its hash at the FNV offset basis, in the sector itself', () => {
    const view = new DataView(counterBootSector().buffer);
    expect(view.getUint32(0x1f4, true)).toBe(0);
    expect(view.getUint32(0x1f8, true)).toBe(0x811c9dc5);
  });

  it('programs the PIT divisor for the rate it is asked for', () => {
    const at = (hz: number) => {
      const s = counterBootSector(hz);
      const i = s.findIndex((b, k) => b === 0xb8 && s[k - 2] === 0xe6 && s[k - 1] === 0x43); // mov ax, imm16 after out 0x43
      return s[i + 1]! | (s[i + 2]! << 8);
    };
    expect(at(COUNTER_HZ)).toBe(Math.round(1193182 / COUNTER_HZ));
    expect(at(100)).toBe(11932);
    expect(() => counterBootSector(5)).toThrow(RangeError);
  });
});

describe('the counter sequence', () => {
  it('matches the lines the real guest printed under QEMU', () => {
    // captured from qemu-system-x86_64 (TCG) running counterBootSector()
    expect(expectedOutput(1, 3)).toBe('00000001 040C5B8C\n00000002 ED74208A\n00000003 56CF37AB\n');
    expect(expectedLine(10)).toBe('0000000A E42B53B2\n');
  });

  it('is the same whether computed from the start or continued from any step', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 300 }), fc.integer({ min: 0, max: 300 }), (from, extra) => {
        const to = from + extra;
        expect(expectedOutput(1, from - 1) + expectedOutput(from, to)).toBe(expectedOutput(1, to));
      }),
    );
  });

  it('prints fixed-width lines that parse back to counter and hash', () => {
    for (const n of [1, 255, 65536, 1_000_000]) {
      const line = expectedLine(n);
      expect(line).toHaveLength(LINE_BYTES);
      expect(parseLine(line.trimEnd())).toEqual({ counter: n, hash: counterHash(n) });
    }
    expect(parseLine('0000000a E42B53B2')).toBeUndefined();
    expect(parseLine('0000000A E42B53B')).toBeUndefined();
  });
});

describe('the serial digest', () => {
  const text = expectedOutput(1, 40);

  it('does not depend on where the output was cut (suspend, migration)', () => {
    // pinned: a cut in the middle of a line and one right after a newline
    const whole = foldSerial(emptySerial(), text);
    for (const cut of [LINE_BYTES * 3 + 5, LINE_BYTES * 7]) {
      const first = foldSerial(emptySerial(), text.slice(0, cut));
      expect(foldSerial(first, text.slice(cut))).toEqual(whole);
    }
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: text.length }), { maxLength: 6 }), (cuts) => {
        const points = [0, ...[...cuts].sort((a, b) => a - b), text.length];
        let state = emptySerial();
        for (let i = 1; i < points.length; i++)
          state = foldSerial(state, text.slice(points[i - 1], points[i]));
        expect(state).toEqual(whole);
      }),
    );
  });

  it('differs when a line is lost or repeated', () => {
    const lines = text.split('\n');
    const digest = (t: string) => serialDigest(foldSerial(emptySerial(), t));
    const lost = [...lines.slice(0, 5), ...lines.slice(6)].join('\n');
    const forked = [...lines.slice(0, 6), lines[5], ...lines.slice(6)].join('\n');
    expect(digest(lost)).not.toBe(digest(text));
    expect(digest(forked)).not.toBe(digest(text));
    expect(foldSerial(emptySerial(), text)).toMatchObject({ lines: 40, last: expectedLine(40).trimEnd() });
  });
});
