// What a registered qemu image may be: a raw disk, a qcow2 disk, or a Linux kernel (bzImage) with an
// optional initrd and command line. Pure checks of the bytes, so the API refuses at the door an
// image QEMU could not boot, or one that would make a node open a file of its own (a qcow2 backing
// or external data file).
import { MODULE_NAME, QEMU_GUEST_PREFIX, WASM_GUEST_KIND, WASM_GUEST_KINDS_TEXT } from './domain/guests.ts';
import type { ParamRule } from './guest-params.ts';

/** Images every qemu node has without registration (`qemu:counter`, built by the node itself). */
export const BUILTIN_QEMU_IMAGES = ['counter'] as const;
/** The counter guest's one parameter: its timer rate (node-agent/drivers/qemu/counter-image.ts). */
export const COUNTER_PARAM_RULES: Readonly<Record<string, ParamRule>> = {
  hz: { type: 'i32', min: 19, max: 1000 },
};

/** A registered image's name: the same shape as a module's. */
export const IMAGE_NAME = MODULE_NAME;

/** A guest kind a VM may be launched with: the kernel's kinds, or `qemu:<image>`. */
export const GUEST_KIND = new RegExp(
  `^(${WASM_GUEST_KIND.source.slice(1, -1)}|${QEMU_GUEST_PREFIX}${IMAGE_NAME.source.slice(1, -1)})$`,
);
/** The guest kinds of GUEST_KIND in words. */
export const GUEST_KINDS_TEXT = `${WASM_GUEST_KINDS_TEXT}, or ${QEMU_GUEST_PREFIX}<image>`;

export const IMAGE_FORMATS = ['raw', 'qcow2', 'kernel'] as const;
export type ImageFormat = (typeof IMAGE_FORMATS)[number];
/** The files of an image: a disk (raw, qcow2), or a kernel and an optional initrd. */
export type ImageRole = 'disk' | 'kernel' | 'initrd';

/**
 * The largest image (all its files together), in bytes. A registration is one JSON request with
 * base64 bytes under the API's 16 MiB body limit (base64 adds a third).
 */
export const MAX_IMAGE_BYTES = 12_000_000;
/** The longest kernel command line accepted (Linux's own limit on x86 is 2048 with the NUL). */
export const MAX_CMDLINE_CHARS = 2047;
/** A qcow2 disk's largest virtual size: 64 GiB. */
export const MAX_VIRTUAL_BYTES = 64 * 2 ** 30;

const SECTOR = 512;
const QCOW2_MAGIC = [0x51, 0x46, 0x49, 0xfb]; // 'QFI\xfb'
/** qcow2 v3 incompatible feature bit: guest data lives in another file named by the image. */
const QCOW2_EXTERNAL_DATA_FILE = 1n << 2n;

/** A checked image: what its bytes say about it, or the problems that refuse it. */
export type ImageCheck = { ok: true; virtualBytes: number } | { ok: false; problems: string[] };

/** Checks the files of an image of `format` (disk for raw/qcow2; kernel, initrd for kernel). */
export function checkImage(
  format: ImageFormat,
  files: Partial<Record<ImageRole, Uint8Array>>,
  cmdline?: string,
): ImageCheck {
  const problems: string[] = [];
  const total = Object.values(files).reduce((sum, f) => sum + (f?.byteLength ?? 0), 0);
  if (total > MAX_IMAGE_BYTES) problems.push(`the image is ${total} bytes; at most ${MAX_IMAGE_BYTES}`);
  let virtualBytes = 0;
  if (format === 'kernel') {
    if (files.disk) problems.push('a kernel image has no disk');
    if (!files.kernel) problems.push('a kernel image needs its kernel');
    else problems.push(...kernelProblems(files.kernel));
    if (files.initrd && files.initrd.byteLength === 0) problems.push('the initrd is empty');
    if (cmdline !== undefined) problems.push(...cmdlineProblems(cmdline));
    virtualBytes = total;
  } else {
    if (files.kernel || files.initrd || cmdline !== undefined)
      problems.push(`a ${format} image is one disk: no kernel, initrd or command line`);
    const disk = files.disk;
    if (!disk) problems.push(`a ${format} image needs its disk`);
    else if (format === 'raw') {
      problems.push(...rawProblems(disk));
      virtualBytes = disk.byteLength;
    } else {
      const qcow2 = qcow2Header(disk);
      if (typeof qcow2 === 'number') virtualBytes = qcow2;
      else problems.push(...qcow2);
    }
  }
  return problems.length ? { ok: false, problems } : { ok: true, virtualBytes };
}

/** A raw disk boots from its first sector (SeaBIOS): whole sectors, and the 0x55AA boot signature. */
function rawProblems(disk: Uint8Array): string[] {
  if (disk.byteLength < SECTOR) return [`a raw disk is at least one ${SECTOR}-byte sector`];
  const problems: string[] = [];
  if (disk.byteLength % SECTOR) problems.push(`a raw disk is whole ${SECTOR}-byte sectors`);
  if (disk[510] !== 0x55 || disk[511] !== 0xaa)
    problems.push('a raw disk must start with a boot sector (0x55 0xAA at byte 510)');
  return problems;
}

/** The virtual size of a qcow2 disk, or why it is refused. */
function qcow2Header(disk: Uint8Array): number | string[] {
  if (disk.byteLength < 72 || !QCOW2_MAGIC.every((b, i) => disk[i] === b))
    return ["a qcow2 disk starts with the magic 'QFI\\xfb'"];
  const view = new DataView(disk.buffer, disk.byteOffset, disk.byteLength);
  const version = view.getUint32(4);
  if (version !== 2 && version !== 3) return [`qcow2 version ${version} is not 2 or 3`];
  const problems: string[] = [];
  if (view.getBigUint64(8) !== 0n)
    problems.push('a qcow2 disk with a backing file is refused (register the flattened image)');
  const clusterBits = view.getUint32(20);
  if (clusterBits < 9 || clusterBits > 21) problems.push(`qcow2 cluster bits ${clusterBits} out of 9–21`);
  const size = view.getBigUint64(24);
  if (size === 0n || size > BigInt(MAX_VIRTUAL_BYTES))
    problems.push(`qcow2 virtual size ${size} must be from 1 byte to ${MAX_VIRTUAL_BYTES}`);
  if (view.getUint32(32) !== 0) problems.push('an encrypted qcow2 disk is refused');
  if (version === 3) {
    if (disk.byteLength < 104) problems.push('a qcow2 v3 header is at least 104 bytes');
    else if (view.getBigUint64(72) & QCOW2_EXTERNAL_DATA_FILE)
      problems.push('a qcow2 disk with an external data file is refused');
  }
  return problems.length ? problems : Number(size);
}

/** A Linux bzImage: the boot signature and the `HdrS` setup header (what QEMU's -kernel loads). */
function kernelProblems(kernel: Uint8Array): string[] {
  const hdrS = [0x48, 0x64, 0x72, 0x53];
  if (kernel.byteLength < 0x250 || kernel[0x1fe] !== 0x55 || kernel[0x1ff] !== 0xaa)
    return ['the kernel is not a Linux bzImage (no boot signature at 0x1FE)'];
  if (!hdrS.every((b, i) => kernel[0x202 + i] === b))
    return ["the kernel is not a Linux bzImage (no 'HdrS' setup header at 0x202)"];
  return [];
}

function cmdlineProblems(cmdline: string): string[] {
  const problems: string[] = [];
  if (cmdline.length > MAX_CMDLINE_CHARS)
    problems.push(`the command line is ${cmdline.length} characters; at most ${MAX_CMDLINE_CHARS}`);
  if (!/^[\x20-\x7e]*$/.test(cmdline)) problems.push('the command line is printable ASCII only');
  return problems;
}
