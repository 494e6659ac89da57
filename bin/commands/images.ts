// `seesaw images register|ls|show|rm`: qemu guest images (a raw or qcow2 disk, or a Linux kernel
// with its initrd and command line) through the API; a VM boots one as guest `qemu:<name>`.
import { readFileSync, statSync } from 'node:fs';
import type { Command } from 'commander';
import { MAX_IMAGE_BYTES } from '../../shared/qemu-images.ts';
import type { ImageRegistration, ImageView } from '../client.ts';
import {
  type CommonOptions,
  clientFor,
  printJson,
  printTable,
  table,
  when,
  withConnection,
} from './output.ts';

const QCOW2_MAGIC = Buffer.from([0x51, 0x46, 0x49, 0xfb]);

export function registerImages(program: Command) {
  const images = program
    .command('images')
    .description('register, list, inspect and delete qemu guest images (guest qemu:<name>)');

  withConnection(
    images
      .command('register <name> [disk]')
      .description(
        'register a disk (raw or qcow2, told apart by the qcow2 magic) or, with --kernel, a kernel',
      )
      .option('--format <format>', 'raw or qcow2 (default: qcow2 when the file starts with QFI\\xfb)')
      .option('--kernel <file>', 'a Linux bzImage to boot directly, instead of a disk')
      .option('--initrd <file>', 'with --kernel: the initial ramdisk')
      .option('--cmdline <text>', "with --kernel: the kernel's command line (e.g. 'console=ttyS0')"),
  ).action(
    async (
      name: string,
      disk: string | undefined,
      options: CommonOptions & { format?: string; kernel?: string; initrd?: string; cmdline?: string },
    ) => {
      const body = registration(name, disk, options);
      const image = await clientFor(options).registerImage(body);
      if (options.json) printJson(image);
      else
        console.log(
          `registered ${image.name}: ${image.format}, ${image.bytes} bytes, sha256 ${image.sha256}`,
        );
    },
  );

  withConnection(images.command('ls').alias('list').description('list registered images')).action(
    async (options: CommonOptions) => {
      const { items } = await clientFor(options).listImages();
      if (options.json) return printJson(items);
      printTable(
        ['NAME', 'FORMAT', 'BYTES', 'VIRTUAL', 'CREATED'],
        items.map((i) => [i.name, i.format, i.bytes, i.virtualBytes, when(i.createdAt)]),
        'no images (qemu:counter is built in)',
      );
    },
  );

  withConnection(images.command('show <name>').description('show one image')).action(
    async (name: string, options: CommonOptions) => {
      const image = await clientFor(options).getImage(name);
      if (options.json) printJson(image);
      else showImage(image);
    },
  );

  withConnection(
    images.command('rm <name>').description('delete an image no VM uses (a VM in any state keeps it)'),
  ).action(async (name: string, options: CommonOptions) => {
    await clientFor(options).deleteImage(name);
    if (options.json) printJson({ name, deleted: true });
    else console.log(`deleted ${name}`);
  });
}

/** The API request for the files given; a one-line error for anything that cannot be sent. */
function registration(
  name: string,
  disk: string | undefined,
  options: { format?: string; kernel?: string; initrd?: string; cmdline?: string },
): ImageRegistration {
  if (options.kernel) {
    if (disk) throw new Error('give a disk or --kernel, not both');
    if (options.format && options.format !== 'kernel')
      throw new Error(`--format ${options.format} does not go with --kernel`);
    checkSize([options.kernel, ...(options.initrd ? [options.initrd] : [])]);
    return {
      name,
      format: 'kernel',
      kernel: base64(options.kernel),
      ...(options.initrd ? { initrd: base64(options.initrd) } : {}),
      ...(options.cmdline !== undefined ? { cmdline: options.cmdline } : {}),
    };
  }
  if (!disk) throw new Error('give the disk file to register, or --kernel <file>');
  if (options.initrd || options.cmdline !== undefined)
    throw new Error('--initrd and --cmdline go with --kernel');
  checkSize([disk]);
  const bytes = read(disk);
  const format = options.format ?? (bytes.subarray(0, 4).equals(QCOW2_MAGIC) ? 'qcow2' : 'raw');
  if (format !== 'raw' && format !== 'qcow2') throw new Error(`--format wants raw or qcow2, got "${format}"`);
  return { name, format, disk: bytes.toString('base64') };
}

function read(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    throw new Error(
      `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
  }
}

const base64 = (file: string) => read(file).toString('base64');

/** Refuses before uploading what the API would refuse after. */
function checkSize(files: string[]) {
  let total = 0;
  for (const file of files) {
    try {
      total += statSync(file).size;
    } catch (error) {
      throw new Error(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code}`);
    }
  }
  if (total > MAX_IMAGE_BYTES)
    throw new Error(`the image is ${total} bytes; the API takes at most ${MAX_IMAGE_BYTES} per image`);
}

function showImage(image: ImageView) {
  const rows: (string | number)[][] = [
    ['name', image.name],
    ['format', image.format],
    ['bytes', image.bytes],
    ['virtual bytes', image.virtualBytes],
    ['sha256', image.sha256],
    ...image.files.map((f) => [f.role, `${f.bytes} bytes, sha256 ${f.sha256}`]),
    ['cmdline', image.cmdline ?? '-'],
    ['created', when(image.createdAt)],
    ['guest', `qemu:${image.name}`],
  ];
  console.log(table(['FIELD', 'VALUE'], rows));
}
