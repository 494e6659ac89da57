// The guest ABI: what a WebAssembly module must export and may import to run as a Seesaw VM.
// Pure: parses the binary's type, import, function, global and export sections itself, so the
// API can explain exactly what is wrong with an upload (V8's own errors do not name signatures).

export type ValType = 'i32' | 'i64' | 'f32' | 'f64' | 'v128' | 'funcref' | 'externref';

export interface FuncSig {
  params: ValType[];
  results: ValType[];
}

/** Host functions a guest may import, all from module `env`. */
export const GUEST_IMPORTS: Readonly<Record<string, FuncSig>> = {
  /** Virtual time of day, epoch ms; never goes backwards, also across suspend, resume and migration. */
  vtod: { params: [], results: ['f64'] },
  /** disk_read(offset, ptr, len): copies len bytes of the virtual disk at offset into memory; bytes or -1. */
  disk_read: { params: ['i32', 'i32', 'i32'], results: ['i32'] },
  /** disk_write(offset, ptr, len): copies len bytes of memory to the virtual disk at offset; bytes or -1. */
  disk_write: { params: ['i32', 'i32', 'i32'], results: ['i32'] },
  /** net_send(ptr, len): sends len bytes (counted, then dropped); bytes or -1. */
  net_send: { params: ['i32', 'i32'], results: ['i32'] },
  /** series(i): the VM's utilisation series (GuestSpec.series) at i modulo its length; -1 when empty. */
  series: { params: ['i32'], results: ['f64'] },
};

/** Functions a guest must export. */
export const REQUIRED_EXPORTS: Readonly<Record<string, FuncSig>> = {
  /** run(budget): does at most `budget` work units, returns the units it used. */
  run: { params: ['i32'], results: ['i32'] },
  /** digest(): a deterministic digest of the guest's state. */
  digest: { params: [], results: ['i64'] },
};

/** Functions a guest may export. */
export const OPTIONAL_EXPORTS: Readonly<Record<string, FuncSig>> = {
  /** init(): called once on a fresh start, after `param_*` globals are set (never on restore). */
  init: { params: [], results: [] },
  /** demand(tickMs): work units wanted for the next tick; without it the guest is greedy. */
  demand: { params: ['i32'], results: ['i32'] },
};

/**
 * Optional exported i32 global: the address of a byte map, one byte per page, in which the guest
 * sets byte p whenever it writes page p (the map's own page too, if it keeps other data there).
 * The kernel reads and clears the map instead of comparing all of memory with a shadow copy; a
 * page written but not marked is not saved by a delta. The guest must not read the map.
 */
export const DIRTY_MAP_EXPORT = 'dirty_map';

/** Exported mutable globals named `param_<name>` receive GuestSpec.params[name] before `init`. */
export const PARAM_PREFIX = 'param_';

export const MAX_MODULE_BYTES = 8 * 1024 * 1024;

export interface GuestGlobal {
  name: string;
  type: ValType;
  mutable: boolean;
}

export interface GuestExports {
  functions: string[];
  globals: GuestGlobal[];
  /** Parameter names the guest accepts (its `param_<name>` globals). */
  params: string[];
  memory: { initialPages: number; maximumPages?: number };
  imports: string[];
  /**
   * False when no instruction can store to memory (no store, bulk-memory write, atomic or SIMD op)
   * and `disk_read` is not imported: such a guest's pages never change after instantiation, so the
   * kernel need not scan them for dirty pages.
   */
  writesMemory: boolean;
}

export type GuestValidation = { ok: true; exports: GuestExports } | { ok: false; problems: string[] };

/** Checks a user module against the guest ABI; never throws. */
export function validateGuestModule(bytes: Uint8Array): GuestValidation {
  if (bytes.byteLength > MAX_MODULE_BYTES) {
    return { ok: false, problems: [`module is ${bytes.byteLength} bytes; the limit is ${MAX_MODULE_BYTES}`] };
  }
  let parsed: ParsedModule;
  try {
    parsed = parseModule(bytes);
  } catch (error) {
    return { ok: false, problems: [`not a WebAssembly module: ${(error as Error).message}`] };
  }
  const problems: string[] = [];
  if (!WebAssembly.validate(bytes as BufferSource))
    problems.push('the module does not pass WebAssembly validation');

  const funcSig = (index: number) => parsed.types[parsed.funcTypes[index] ?? -1];
  const exportsByName = new Map(parsed.exports.map((e) => [e.name, e]));

  for (const imp of parsed.imports) {
    const where = `import ${imp.module}.${imp.name}`;
    if (imp.module !== 'env') problems.push(`${where}: guests may import only from module "env"`);
    else if (imp.kind !== 'func')
      problems.push(`${where}: only functions may be imported, not a ${imp.kind}`);
    else {
      const want = GUEST_IMPORTS[imp.name];
      const got = parsed.types[imp.typeIndex ?? -1];
      if (!want)
        problems.push(`${where}: unknown host function (known: ${Object.keys(GUEST_IMPORTS).join(', ')})`);
      else if (!got || !sameSig(want, got))
        problems.push(`${where}: expected ${showSig(want)}, found ${got ? showSig(got) : 'no type'}`);
    }
  }

  const memory = exportsByName.get('memory');
  if (!memory) problems.push('missing export "memory" (the guest\'s linear memory)');
  else if (memory.kind !== 'memory') problems.push(`export "memory" must be a memory, not a ${memory.kind}`);

  const checkFunc = (name: string, want: FuncSig, required: boolean) => {
    const e = exportsByName.get(name);
    if (!e) {
      if (required) problems.push(`missing export "${name}" ${showSig(want)}`);
      return;
    }
    if (e.kind !== 'func') return void problems.push(`export "${name}" must be a function, not a ${e.kind}`);
    const got = funcSig(e.index);
    if (!got || !sameSig(want, got))
      problems.push(`export "${name}": expected ${showSig(want)}, found ${got ? showSig(got) : 'no type'}`);
  };
  for (const [name, sig] of Object.entries(REQUIRED_EXPORTS)) checkFunc(name, sig, true);
  for (const [name, sig] of Object.entries(OPTIONAL_EXPORTS)) checkFunc(name, sig, false);

  const dirtyMap = exportsByName.get(DIRTY_MAP_EXPORT);
  if (dirtyMap && (dirtyMap.kind !== 'global' || parsed.globals[dirtyMap.index]?.type !== 'i32'))
    problems.push(`export "${DIRTY_MAP_EXPORT}" must be an i32 global (the address of the dirty-page map)`);

  const globals: GuestGlobal[] = [];
  const exportedGlobals = new Set<number>();
  for (const e of parsed.exports) {
    if (e.kind !== 'global') continue;
    exportedGlobals.add(e.index);
    const g = parsed.globals[e.index];
    if (!g) continue;
    globals.push({ name: e.name, type: g.type, mutable: g.mutable });
    if (e.name.startsWith(PARAM_PREFIX) && !g.mutable)
      problems.push(`parameter global "${e.name}" must be mutable`);
    if (g.mutable && !['i32', 'i64', 'f32', 'f64'].includes(g.type))
      problems.push(`exported global "${e.name}" has type ${g.type}; state globals must be numbers`);
  }
  parsed.globals.forEach((g, index) => {
    if (g.mutable && !exportedGlobals.has(index))
      problems.push(`mutable global ${index} is not exported, so its state would be lost on suspend`);
  });
  if (parsed.imports.some((i) => i.kind === 'memory') || parsed.memories.length > 1)
    problems.push('a guest has exactly one memory of its own');
  if (parsed.memories.some((m) => m.shared)) problems.push('shared memory is not supported');

  if (problems.length) return { ok: false, problems };
  const mem: { initial: number; maximum?: number } = parsed.memories[0] ?? { initial: 0 };
  return {
    ok: true,
    exports: {
      functions: parsed.exports.filter((e) => e.kind === 'func').map((e) => e.name),
      globals,
      params: globals
        .filter((g) => g.name.startsWith(PARAM_PREFIX))
        .map((g) => g.name.slice(PARAM_PREFIX.length)),
      memory: {
        initialPages: mem.initial,
        ...(mem.maximum !== undefined ? { maximumPages: mem.maximum } : {}),
      },
      imports: parsed.imports.map((i) => i.name),
      writesMemory:
        parsed.codeWrites || parsed.imports.some((i) => i.module === 'env' && i.name === 'disk_read'),
    },
  };
}

function sameSig(a: FuncSig, b: FuncSig): boolean {
  return a.params.join() === b.params.join() && a.results.join() === b.results.join();
}

function showSig(sig: FuncSig): string {
  return `(${sig.params.join(', ')}) -> (${sig.results.join(', ')})`;
}

// ---- a minimal reader of the sections the ABI cares about --------------------------------------

type ExternKind = 'func' | 'table' | 'memory' | 'global' | 'tag';

interface ParsedModule {
  types: FuncSig[];
  imports: { module: string; name: string; kind: ExternKind; typeIndex?: number }[];
  /** Type index of every function, imported ones first (the function index space). */
  funcTypes: number[];
  memories: { initial: number; maximum?: number; shared: boolean }[];
  /** Every global in the global index space, imported ones first. */
  globals: { type: ValType; mutable: boolean }[];
  exports: { name: string; kind: ExternKind; index: number }[];
  /** True if any function body may write linear memory (or uses an opcode this reader does not know). */
  codeWrites: boolean;
}

const VAL_TYPES: Record<number, ValType> = {
  127: 'i32',
  126: 'i64',
  125: 'f32',
  124: 'f64',
  123: 'v128',
  112: 'funcref',
  111: 'externref',
};
const EXTERN_KINDS: ExternKind[] = ['func', 'table', 'memory', 'global', 'tag'];

function parseModule(bytes: Uint8Array): ParsedModule {
  const r = new Reader(bytes);
  if (r.u32le() !== 0x6d736100) throw new Error('bad magic number');
  if (r.u32le() !== 1) throw new Error('unsupported binary version');
  const m: ParsedModule = {
    types: [],
    imports: [],
    funcTypes: [],
    memories: [],
    globals: [],
    exports: [],
    codeWrites: false,
  };
  while (!r.done()) {
    const id = r.byte();
    const size = r.leb();
    const end = r.pos + size;
    if (end > bytes.byteLength) throw new Error(`section ${id} runs past the end`);
    const section = new Reader(bytes.subarray(r.pos, end));
    r.pos = end;
    if (id === 1) readTypes(section, m);
    else if (id === 2) readImports(section, m);
    else if (id === 3) for (let n = section.leb(); n > 0; n--) m.funcTypes.push(section.leb());
    else if (id === 5) for (let n = section.leb(); n > 0; n--) m.memories.push(readLimits(section));
    else if (id === 6) readGlobals(section, m);
    else if (id === 7) readExports(section, m);
    else if (id === 10) m.codeWrites = codeMayWrite(section);
  }
  return m;
}

function readTypes(r: Reader, m: ParsedModule) {
  for (let n = r.leb(); n > 0; n--) {
    if (r.byte() !== 0x60) throw new Error('unsupported type form (only function types)');
    const params = r.vec(() => r.valType());
    const results = r.vec(() => r.valType());
    m.types.push({ params, results });
  }
}

function readImports(r: Reader, m: ParsedModule) {
  for (let n = r.leb(); n > 0; n--) {
    const module = r.name();
    const name = r.name();
    const kind = EXTERN_KINDS[r.byte()];
    if (!kind) throw new Error(`import ${module}.${name} has an unknown kind`);
    if (kind === 'func') {
      const typeIndex = r.leb();
      m.imports.push({ module, name, kind, typeIndex });
      m.funcTypes.push(typeIndex);
    } else {
      m.imports.push({ module, name, kind });
      if (kind === 'table') {
        r.byte();
        readLimits(r);
      } else if (kind === 'memory') readLimits(r);
      else if (kind === 'global') m.globals.push({ type: r.valType(), mutable: r.byte() === 1 });
      else r.skipTag();
    }
  }
}

function readGlobals(r: Reader, m: ParsedModule) {
  for (let n = r.leb(); n > 0; n--) {
    m.globals.push({ type: r.valType(), mutable: r.byte() === 1 });
    r.skipConstExpr();
  }
}

function readExports(r: Reader, m: ParsedModule) {
  for (let n = r.leb(); n > 0; n--) {
    const name = r.name();
    const kind = EXTERN_KINDS[r.byte()];
    if (!kind) throw new Error(`export ${name} has an unknown kind`);
    m.exports.push({ name, kind, index: r.leb() });
  }
}

/**
 * Walks every instruction of the code section; true at the first one that may write memory
 * (stores 0x36–0x3e, memory.init/copy/fill), or that this reader does not decode (SIMD, atomics,
 * anything unknown), so the answer errs on the side of scanning.
 */
function codeMayWrite(r: Reader): boolean {
  for (let bodies = r.leb(); bodies > 0; bodies--) {
    const size = r.leb();
    const end = r.pos + size;
    for (let groups = r.leb(); groups > 0; groups--) {
      r.leb();
      r.valType();
    }
    while (r.pos < end) {
      const op = r.byte();
      if (op >= 0x36 && op <= 0x3e) return true;
      if (op >= 0x28 && op <= 0x35) {
        r.leb();
        r.leb();
      } else if (op <= 0x01 || op === 0x05 || op === 0x0b || op === 0x0f || op === 0x1a || op === 0x1b) {
        // no immediates
      } else if (op >= 0x02 && op <= 0x04) r.blockType();
      else if (op === 0x0c || op === 0x0d || op === 0x10 || op === 0x12 || (op >= 0x20 && op <= 0x26))
        r.leb();
      else if (op === 0x0e) {
        for (let n = r.leb(); n >= 0; n--) r.leb();
      } else if (op === 0x11 || op === 0x13) {
        r.leb();
        r.leb();
      } else if (op === 0x1c) r.vec(() => r.valType());
      else if (op === 0x3f || op === 0x40) r.leb();
      else if (op === 0x41 || op === 0x42) r.sleb();
      else if (op === 0x43) r.pos += 4;
      else if (op === 0x44) r.pos += 8;
      else if (op >= 0x45 && op <= 0xc4) {
        // numeric, no immediates
      } else if (op === 0xd0) r.byte();
      else if (op === 0xd1) {
        // ref.is_null
      } else if (op === 0xd2) r.leb();
      else if (op === 0xfc) {
        const sub = r.leb();
        if (sub <= 7) continue;
        if (sub === 8 || sub === 10 || sub === 11) return true;
        if (sub === 9 || sub === 13 || sub === 15 || sub === 16 || sub === 17) r.leb();
        else if (sub === 12 || sub === 14) {
          r.leb();
          r.leb();
        } else return true;
      } else return true;
    }
    r.pos = end;
  }
  return false;
}

function readLimits(r: Reader): { initial: number; maximum?: number; shared: boolean } {
  const flags = r.byte();
  const initial = r.leb();
  const maximum = flags & 1 ? r.leb() : undefined;
  return { initial, ...(maximum !== undefined ? { maximum } : {}), shared: (flags & 2) !== 0 };
}

class Reader {
  pos = 0;
  constructor(private readonly bytes: Uint8Array) {}
  done() {
    return this.pos >= this.bytes.byteLength;
  }
  byte(): number {
    const b = this.bytes[this.pos++];
    if (b === undefined) throw new Error('unexpected end of module');
    return b;
  }
  u32le(): number {
    return (this.byte() | (this.byte() << 8) | (this.byte() << 16) | (this.byte() << 24)) >>> 0;
  }
  leb(): number {
    let result = 0;
    let shift = 0;
    for (;;) {
      const b = this.byte();
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result;
      shift += 7;
      if (shift > 35) throw new Error('integer too long');
    }
  }
  vec<T>(item: () => T): T[] {
    const out: T[] = [];
    for (let n = this.leb(); n > 0; n--) out.push(item());
    return out;
  }
  valType(): ValType {
    const b = this.byte();
    const t = VAL_TYPES[b];
    if (!t) throw new Error(`unknown value type 0x${b.toString(16)}`);
    return t;
  }
  name(): string {
    const len = this.leb();
    if (this.pos + len > this.bytes.byteLength) throw new Error('name runs past the end');
    const s = new TextDecoder().decode(this.bytes.subarray(this.pos, this.pos + len));
    this.pos += len;
    return s;
  }
  skipTag() {
    this.byte();
    this.leb();
  }
  /** Skips a constant expression up to its `end` (0x0b), stepping over immediates. */
  skipConstExpr() {
    for (;;) {
      const op = this.byte();
      if (op === 0x0b) return;
      if (op === 0x41 || op === 0x42 || op === 0x23 || op === 0xd2) this.sleb();
      else if (op === 0x43) this.pos += 4;
      else if (op === 0x44) this.pos += 8;
      else if (op === 0xd0) this.byte();
      else if (op === 0xfd) {
        this.leb();
        this.pos += 16;
      } else if (op === 0x6a || op === 0x6b || op === 0x6c || op === 0x7c || op === 0x7d || op === 0x7e)
        continue;
      else throw new Error(`unsupported opcode 0x${op.toString(16)} in a constant expression`);
    }
  }
  /** A block type: empty (0x40), a value type, or a type index (a positive signed LEB). */
  blockType() {
    const b = this.bytes[this.pos];
    if (b === 0x40 || (b !== undefined && VAL_TYPES[b])) this.pos++;
    else this.sleb();
  }
  sleb() {
    while (this.byte() & 0x80) {
      /* skip */
    }
  }
}
