// What AWS calls a handler's code can make, read from its esbuild bundle: tree-shaking keeps only
// the code reachable from the entry, so every `new XCommand(` left in Seesaw's own modules is a
// call the deployed function may send. Tests compare this with the role the stack gives it.
import { build } from 'esbuild';
import { PROJECT_ROOT, resolveEntry } from '../../cdk/constructs/seesaw-function.ts';
import * as keys from '../../shared/storage/keys.ts';
import { TABLE } from '../../shared/storage/schema.ts';

/** keys.ts functions that build a table key, by name, with the partition-key prefix they produce. */
const KEY_PREFIX_OF: Record<string, string> = Object.fromEntries(
  Object.entries(keys)
    .map(([name, fn]) => [name, typeof fn === 'function' ? (fn as (id: string) => { pk?: unknown })('') : {}])
    .filter(([, key]) => typeof (key as { pk?: unknown }).pk === 'string')
    .map(([name, key]) => [name, (key as { pk: string }).pk]),
);
const INDEX_NAMES = Object.keys(TABLE.indexes);

/** The IAM action each SDK command needs. */
const ACTION_OF_COMMAND: Record<string, string> = {
  GetCommand: 'dynamodb:GetItem',
  PutCommand: 'dynamodb:PutItem',
  UpdateCommand: 'dynamodb:UpdateItem',
  DeleteCommand: 'dynamodb:DeleteItem',
  QueryCommand: 'dynamodb:Query',
  ScanCommand: 'dynamodb:Scan',
  BatchGetCommand: 'dynamodb:BatchGetItem',
  BatchWriteCommand: 'dynamodb:BatchWriteItem',
  TransactWriteCommand: 'dynamodb:TransactWriteItems',
  TransactGetCommand: 'dynamodb:TransactGetItems',
  GetObjectCommand: 's3:GetObject',
  HeadObjectCommand: 's3:GetObject',
  PutObjectCommand: 's3:PutObject',
  DeleteObjectCommand: 's3:DeleteObject',
  DeleteObjectsCommand: 's3:DeleteObject',
  ListObjectsV2Command: 's3:ListBucket',
};

/** What each image-store method sends to S3, as `action prefix` pairs (shared/storage/image-store.ts). */
const S3_OF_IMAGE_STORE_METHOD: Record<string, string[]> = {
  putImage: ['s3:PutObject images/'],
  getImage: ['s3:GetObject images/'],
  deleteVmImages: ['s3:ListBucket images/', 's3:DeleteObject images/'],
  putModule: ['s3:PutObject modules/'],
  getModule: ['s3:GetObject modules/'],
};
const IMAGE_STORE = 'shared/storage/image-store.ts';
/** What each qemu image-registry function sends to S3 (shared/storage/image-registry.ts), through a BlobStore. */
const S3_OF_IMAGE_REGISTRY_FUNCTION: Record<string, string[]> = {
  storeImageFiles: ['s3:PutObject user-images/'],
  deleteImageFiles: ['s3:ListBucket user-images/', 's3:DeleteObject user-images/'],
  readImageManifest: ['s3:GetObject user-images/'],
  readImageFile: ['s3:GetObject user-images/'],
};

export interface AwsCalls {
  /** S3 calls the code makes through the image store, as `action prefix`, e.g. `s3:PutObject images/`. */
  objects: Set<string>;
  /** IAM actions the code can need, e.g. `dynamodb:UpdateItem`. */
  actions: Set<string>;
  /** Table indexes the code names (`byOwner`, `byKind`). */
  indexes: Set<string>;
  /** Partition-key prefixes of the items the code addresses (`NODE#`, `VM#`…), from keys.ts. */
  keyPrefixes: Set<string>;
  /** Seesaw source files in the bundle (for failure messages). */
  files: string[];
}

export async function awsCallsOf(entry: string): Promise<AwsCalls> {
  const result = await build({
    entryPoints: [resolveEntry(entry)],
    absWorkingDir: PROJECT_ROOT,
    bundle: true,
    write: false,
    platform: 'node',
    format: 'esm',
    packages: 'external',
    logLevel: 'silent',
  });
  const text = result.outputFiles[0]?.text ?? '';
  // esbuild heads each module's code with a `// path/to/module.ts` comment.
  const sections = text.split(/^\/\/ (?=\S+\.ts$)/m).slice(1);
  const calls: AwsCalls = {
    objects: new Set(),
    actions: new Set(),
    indexes: new Set(),
    keyPrefixes: new Set(),
    files: [],
  };
  for (const section of sections) {
    const file = section.slice(0, section.indexOf('\n'));
    calls.files.push(file);
    // Those two modules define every key and index; what matters is who uses them.
    if (file === 'shared/storage/keys.ts' || file === 'shared/storage/schema.ts') continue;
    if (file !== IMAGE_STORE && /new \w+Object\w*Command\(/.test(section)) {
      throw new Error(`${file} calls S3 directly: teach test/cdk/aws-calls.ts which key prefixes it uses`);
    }
    if (file !== IMAGE_STORE) {
      for (const [, method] of section.matchAll(/\.(\w+)\(/g)) {
        if (!Object.hasOwn(S3_OF_IMAGE_STORE_METHOD, method as string)) continue;
        for (const call of S3_OF_IMAGE_STORE_METHOD[method as string] ?? []) calls.objects.add(call);
      }
      // A registry function defined in the bundle is one some code there calls (esbuild drops the rest).
      if (file === 'shared/storage/image-registry.ts')
        for (const [, fn] of section.matchAll(/^async function (\w+)\(/gm))
          for (const call of S3_OF_IMAGE_REGISTRY_FUNCTION[fn as string] ?? []) calls.objects.add(call);
    }
    for (const [, command] of section.matchAll(/new (\w+Command)\(/g)) {
      const action = ACTION_OF_COMMAND[command as string];
      if (!action) throw new Error(`${entry} sends ${command}: add its IAM action to ACTION_OF_COMMAND`);
      calls.actions.add(action);
    }
    // `TABLE.indexes.byKind`, or `const { byOwner, byKind } = TABLE.indexes`.
    const named = [
      ...[...section.matchAll(/indexes\.(\w+)/g)].map((m) => m[1] as string),
      ...[...section.matchAll(/\{([^}]*)\}\s*=\s*[\w.]*indexes\b/g)].flatMap((m) =>
        (m[1] as string).split(/\W+/),
      ),
    ];
    for (const name of named) if (INDEX_NAMES.includes(name)) calls.indexes.add(name);
    for (const [, name] of section.matchAll(/\b(\w+Key)\(/g)) {
      const prefix = KEY_PREFIX_OF[name as string];
      if (prefix) calls.keyPrefixes.add(prefix);
    }
  }
  return calls;
}
