// Caps a guest module's linear memory by rewriting the maximum in its memory section, so the
// engine itself refuses growth past the cap. The kernel compiles one copy per (module, cap).
// The maximum is the limit plus one page: a guest that grows past its limit gets that one page,
// and the kernel, which checks memory size after every guest call, fails the VM for it.
import { InvalidInput } from '../../shared/storage/errors.ts';

const MEMORY_SECTION = 5;

/**
 * The module with its memory's maximum set to `limitPages + 1` (or the module's own, if smaller).
 * InvalidInput when the module declares more initial pages than `limitPages`.
 */
export function capMemory(bytes: Uint8Array, limitPages: number): Uint8Array {
  const maxPages = limitPages + 1;
  const out: number[] = [];
  const push = (b: Uint8Array | number[]) => {
    for (const x of b) out.push(x);
  };
  push(bytes.subarray(0, 8));
  let pos = 8;
  let found = false;
  while (pos < bytes.length) {
    const id = bytes[pos]!;
    const [size, sizeEnd] = readU32(bytes, pos + 1);
    const end = sizeEnd + size;
    if (end > bytes.length) throw new InvalidInput('module section runs past the end');
    if (id !== MEMORY_SECTION) {
      push(bytes.subarray(pos, end));
      pos = end;
      continue;
    }
    found = true;
    let p = sizeEnd;
    const [count, afterCount] = readU32(bytes, p);
    p = afterCount;
    const body: number[] = [...u32(count)];
    for (let i = 0; i < count; i++) {
      const flags = bytes[p]!;
      if (flags !== 0 && flags !== 1) throw new InvalidInput(`memory limits flag ${flags} is not supported`);
      const [min, afterMin] = readU32(bytes, p + 1);
      p = afterMin;
      let max: number | undefined;
      if (flags === 1) [max, p] = readU32(bytes, p);
      if (min > limitPages)
        throw new InvalidInput(
          `the module declares ${min} initial memory pages; the VM's limit is ${limitPages} (memPages)`,
        );
      body.push(1, ...u32(min), ...u32(Math.min(max ?? maxPages, maxPages)));
    }
    if (p !== end) throw new InvalidInput('memory section has trailing bytes');
    push([MEMORY_SECTION, ...u32(body.length), ...body]);
    pos = end;
  }
  if (!found) return bytes;
  return Uint8Array.from(out);
}

function readU32(bytes: Uint8Array, at: number): [number, number] {
  let result = 0;
  let shift = 0;
  let p = at;
  for (;;) {
    if (p >= bytes.length || shift > 28) throw new InvalidInput('bad LEB128 number in module');
    const b = bytes[p++]!;
    result += (b & 0x7f) * 2 ** shift;
    if (!(b & 0x80)) return [result, p];
    shift += 7;
  }
}

function u32(n: number): number[] {
  const out: number[] = [];
  let v = n;
  do {
    let b = v % 128;
    v = Math.floor(v / 128);
    if (v) b |= 0x80;
    out.push(b);
  } while (v);
  return out;
}
