// The test guest for the qemu driver: a 512-byte x86 boot sector, assembled here byte by byte so
// that no assembler or downloaded binary is needed. It programs the PIT, halts between timer
// ticks (an idle VM costs almost no host CPU, even under TCG), and on each tick it sees it advances a
// 32-bit counter, folds it into a running FNV-1a-style hash kept in guest RAM, dirties one 4 KiB
// page of a 256 KiB region, and prints `<counter> <hash>\n` (8 hex digits each) to COM1.
// The sequence of lines is a pure function of the counter, so `expectedLine(n)` checks that a VM
// that was suspended, restored or migrated went on from exactly where it stopped.

/** Timer interrupts per second the guest programs the PIT for; one serial line per tick it sees. */
export const COUNTER_HZ = 50;
const PIT_HZ = 1193182;
const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

// Fixed RAM addresses of the guest's variables: inside the sector itself (loaded at 0x7C00), so
// their initial values are part of the image and their current values part of every saved state.
const ORIGIN = 0x7c00;
const DATA = 0x1f0; // offset in the sector; 14 bytes before the 0x55AA signature
const TICKS = ORIGIN + DATA; // u16, incremented by the IRQ0 handler
const SEEN = TICKS + 2; // u16, the tick count the main loop last acted on
const COUNTER = TICKS + 4; // u32
const HASH = TICKS + 8; // u32

/** Bytes of one serial line: 8 hex digits, a space, 8 hex digits, a newline. */
export const LINE_BYTES = 18;

/** A minimal 16-bit x86 emitter: raw bytes, labels and relative jump fixups. */
class Asm {
  readonly bytes: number[] = [];
  private readonly labels = new Map<string, number>();
  private readonly fixups: { at: number; label: string; size: 1 | 2 }[] = [];

  emit(...bytes: number[]) {
    for (const b of bytes) this.bytes.push(b & 0xff);
    return this;
  }
  word(value: number) {
    return this.emit(value & 0xff, (value >>> 8) & 0xff);
  }
  dword(value: number) {
    return this.word(value & 0xffff).word(value >>> 16);
  }
  label(name: string) {
    if (this.labels.has(name)) throw new Error(`label ${name} defined twice`);
    this.labels.set(name, this.bytes.length);
    return this;
  }
  /** The absolute address a label will have once loaded at ORIGIN (patched at the end). */
  abs16(name: string) {
    this.fixups.push({ at: this.bytes.length, label: name, size: 2 });
    return this.word(0);
  }
  /** A short jump (opcode + rel8) or a near call/jump (opcode + rel16) to a label. */
  rel8(opcode: number, name: string) {
    this.emit(opcode);
    this.fixups.push({ at: this.bytes.length, label: `~${name}`, size: 1 });
    return this.emit(0);
  }
  rel16(opcode: number, name: string) {
    this.emit(opcode);
    this.fixups.push({ at: this.bytes.length, label: `~${name}`, size: 2 });
    return this.word(0);
  }
  link(): number[] {
    for (const { at, label, size } of this.fixups) {
      const relative = label.startsWith('~');
      const target = this.labels.get(relative ? label.slice(1) : label);
      if (target === undefined) throw new Error(`undefined label ${label}`);
      const value = relative ? target - (at + size) : ORIGIN + target;
      if (size === 1) {
        if (value < -128 || value > 127) throw new Error(`short jump to ${label} out of range`);
        this.bytes[at] = value & 0xff;
      } else {
        this.bytes[at] = value & 0xff;
        this.bytes[at + 1] = (value >>> 8) & 0xff;
      }
    }
    return this.bytes;
  }
}

/** The boot sector (512 bytes, 0x55AA-signed) of the counter guest, ticking at `hz` (19..1000). */
export function counterBootSector(hz: number = COUNTER_HZ): Uint8Array {
  if (!Number.isInteger(hz) || hz < 19 || hz > 1000) throw new RangeError(`hz ${hz} must be 19..1000`);
  const a = new Asm();
  emitSetup(a, Math.round(PIT_HZ / hz));
  emitMainLoop(a);
  emitHex32(a);
  emitPutc(a);
  emitIrq0(a);
  return signedSector(a.link());
}

/** Set-up: flat real-mode segments, stack below the sector, our own IRQ0 handler, the PIT, the PIC. */
function emitSetup(a: Asm, divisor: number) {
  a.emit(0xfa); // cli
  a.emit(0xea).abs16('start').word(0); // jmp 0000:start (some BIOSes enter at 07C0:0000)
  a.label('start');
  a.emit(0x31, 0xc0); // xor ax, ax
  a.emit(0x8e, 0xd8); // mov ds, ax
  a.emit(0x8e, 0xd0); // mov ss, ax
  a.emit(0xbc).word(ORIGIN); // mov sp, 0x7c00
  a.emit(0xc7, 0x06).word(0x20).abs16('irq0'); // mov word [0x20], irq0   (IVT entry 8 = IRQ0)
  a.emit(0xc7, 0x06).word(0x22).word(0); // mov word [0x22], 0
  // PIT channel 0, lobyte/hibyte, mode 2 (rate generator)
  a.emit(0xb0, 0x34); // mov al, 0x34
  a.emit(0xe6, 0x43); // out 0x43, al
  a.emit(0xb8).word(divisor); // mov ax, divisor
  a.emit(0xe6, 0x40); // out 0x40, al
  a.emit(0x88, 0xe0); // mov al, ah
  a.emit(0xe6, 0x40); // out 0x40, al
  // only IRQ0 on the master PIC, nothing on the slave: no other interrupt wakes the guest
  a.emit(0xb0, 0xfe); // mov al, 0xfe
  a.emit(0xe6, 0x21); // out 0x21, al
  a.emit(0xb0, 0xff); // mov al, 0xff
  a.emit(0xe6, 0xa1); // out 0xa1, al
  a.emit(0xfb); // sti
}

/** The main loop: sleep until a tick, then step the counter and hash, dirty a page, print a line. */
function emitMainLoop(a: Asm) {
  a.label('main');
  a.emit(0xf4); // hlt
  a.emit(0xa1).word(TICKS); // mov ax, [ticks]
  a.emit(0x3b, 0x06).word(SEEN); // cmp ax, [seen]
  a.rel8(0x74, 'main'); // je main
  a.emit(0xa3).word(SEEN); // mov [seen], ax
  a.emit(0x66, 0xff, 0x06).word(COUNTER); // inc dword [counter]
  a.emit(0x66, 0xa1).word(HASH); // mov eax, [hash]
  a.emit(0x66, 0x33, 0x06).word(COUNTER); // xor eax, [counter]
  a.emit(0x66, 0x69, 0xc0).dword(FNV_PRIME); // imul eax, eax, FNV_PRIME
  a.emit(0x66, 0xa3).word(HASH); // mov [hash], eax
  // dirty page (counter mod 64) of the 256 KiB region at 0x10000, so pre-copy has work to redo
  a.emit(0xa1).word(COUNTER); // mov ax, [counter]
  a.emit(0x25).word(0x3f); // and ax, 0x3f
  a.emit(0xc1, 0xe0, 0x08); // shl ax, 8
  a.emit(0x05).word(0x1000); // add ax, 0x1000
  a.emit(0x8e, 0xc0); // mov es, ax
  a.emit(0x66, 0xa1).word(HASH); // mov eax, [hash]
  a.emit(0x26, 0x66, 0xa3).word(0); // mov [es:0], eax
  // print "<counter> <hash>\n"
  a.emit(0x66, 0xa1).word(COUNTER); // mov eax, [counter]
  a.rel16(0xe8, 'hex32'); // call hex32
  a.emit(0xb0, 0x20); // mov al, ' '
  a.rel16(0xe8, 'putc'); // call putc
  a.emit(0x66, 0xa1).word(HASH); // mov eax, [hash]
  a.rel16(0xe8, 'hex32'); // call hex32
  a.emit(0xb0, 0x0a); // mov al, '\n'
  a.rel16(0xe8, 'putc'); // call putc
  a.rel8(0xeb, 'main'); // jmp main
}

/** hex32: prints eax as 8 upper-case hex digits. */
function emitHex32(a: Asm) {
  a.label('hex32');
  a.emit(0xb9).word(8); // mov cx, 8
  a.label('digit');
  a.emit(0x66, 0xc1, 0xc0, 0x04); // rol eax, 4
  a.emit(0x66, 0x50); // push eax
  a.emit(0x24, 0x0f); // and al, 0x0f
  a.emit(0x04, 0x30); // add al, '0'
  a.emit(0x3c, 0x39); // cmp al, '9'
  a.rel8(0x76, 'decimal'); // jbe decimal
  a.emit(0x04, 0x07); // add al, 7   ('A' - '9' - 1)
  a.label('decimal');
  a.rel16(0xe8, 'putc'); // call putc
  a.emit(0x66, 0x58); // pop eax
  a.rel8(0xe2, 'digit'); // loop digit
  a.emit(0xc3); // ret
}

/** putc: writes al to COM1 once its transmit register is empty (clobbers ah, dx). */
function emitPutc(a: Asm) {
  a.label('putc');
  a.emit(0x88, 0xc4); // mov ah, al
  a.emit(0xba).word(0x3fd); // mov dx, 0x3fd (line status)
  a.label('wait');
  a.emit(0xec); // in al, dx
  a.emit(0xa8, 0x20); // test al, 0x20
  a.rel8(0x74, 'wait'); // jz wait
  a.emit(0x88, 0xe0); // mov al, ah
  a.emit(0xba).word(0x3f8); // mov dx, 0x3f8
  a.emit(0xee); // out dx, al
  a.emit(0xc3); // ret
}

/** IRQ0: counts the tick and acknowledges it; cs: because DS is ours only in the main loop. */
function emitIrq0(a: Asm) {
  a.label('irq0');
  a.emit(0x2e, 0xff, 0x06).word(TICKS); // inc word cs:[ticks]
  a.emit(0x50); // push ax
  a.emit(0xb0, 0x20); // mov al, 0x20
  a.emit(0xe6, 0x20); // out 0x20, al   (EOI)
  a.emit(0x58); // pop ax
  a.emit(0xcf); // iret
}

/** The 512-byte sector: the code, the variables' initial values, the boot signature. */
function signedSector(code: number[]): Uint8Array {
  if (code.length > DATA) throw new Error(`counter guest code is ${code.length} bytes, over ${DATA}`);
  const sector = new Uint8Array(512);
  sector.set(code);
  const view = new DataView(sector.buffer);
  view.setUint16(DATA, 0, true); // ticks
  view.setUint16(DATA + 2, 0, true); // seen
  view.setUint32(DATA + 4, 0, true); // counter
  view.setUint32(DATA + 8, FNV_OFFSET, true); // hash
  sector[510] = 0x55;
  sector[511] = 0xaa;
  return sector;
}

/** The guest's hash after `n` steps, as the guest computes it. */
export function counterHash(n: number): number {
  let hash = FNV_OFFSET;
  for (let i = 1; i <= n; i++) hash = Math.imul((hash ^ i) >>> 0, FNV_PRIME) >>> 0;
  return hash;
}

const hex8 = (n: number) => (n >>> 0).toString(16).toUpperCase().padStart(8, '0');

/** The serial line the guest prints at step `n` (1-based), newline included. */
export function expectedLine(n: number, hash = counterHash(n)): string {
  return `${hex8(n)} ${hex8(hash)}\n`;
}

/** The guest's serial output for steps `from`..`to` inclusive. */
export function expectedOutput(from: number, to: number): string {
  let hash = counterHash(from - 1);
  let out = '';
  for (let n = from; n <= to; n++) {
    hash = Math.imul((hash ^ n) >>> 0, FNV_PRIME) >>> 0;
    out += expectedLine(n, hash);
  }
  return out;
}

/** Parses one serial line; undefined if it is not a well-formed counter line. */
export function parseLine(line: string): { counter: number; hash: number } | undefined {
  const m = /^([0-9A-F]{8}) ([0-9A-F]{8})$/.exec(line);
  return m ? { counter: Number.parseInt(m[1]!, 16), hash: Number.parseInt(m[2]!, 16) } : undefined;
}

/** Bytes of a 1.44 MB floppy: SeaBIOS boots the counter sector from one read-only. */
export const FLOPPY_BYTES = 1474560;

/** The counter guest as a floppy image: the boot sector, then zeros. */
export function counterFloppy(hz: number = COUNTER_HZ): Uint8Array {
  const floppy = new Uint8Array(FLOPPY_BYTES);
  floppy.set(counterBootSector(hz));
  return floppy;
}
