// Qemu guest images: register a disk (raw or qcow2) or a kernel with its initrd and command line,
// list, show and delete them. As with modules, a name is registered once: a VM `qemu:<name>` must
// boot the same bytes on every node it moves to, so they never change under it.
import { type RouteHandler, z } from '@hono/zod-openapi';
import { ConditionFailed } from '../../../shared/errors.ts';
import {
  BUILTIN_QEMU_IMAGES,
  checkImage,
  IMAGE_NAME,
  type ImageRole,
  MAX_CMDLINE_CHARS,
  MAX_IMAGE_BYTES,
} from '../../../shared/qemu-images.ts';
import {
  deleteImageFiles,
  findImage,
  forgetImage,
  type ImageRecord,
  imageRecordOf,
  imageRegistry,
  listRegisteredImages,
  storeImageFiles,
  vmsUsingImage,
} from '../../../shared/storage/image-registry.ts';
import { type BlobStore, s3Blobs } from '../../../shared/storage/image-store.ts';
import type { ApiDeps } from '../deps.ts';
import { conflict, notFound, problemResponses, unprocessable } from '../problem.ts';
import { registerOnce } from '../register-once.ts';
import { newRouter, routesOf } from '../router.ts';
import { jsonBody, jsonResponse, listSchema } from '../schemas.ts';

const imageName = z
  .string()
  .regex(IMAGE_NAME, { message: 'name must be 1–64 of A-Z a-z 0-9 . _ - (not starting with . _ -)' });
const file = (description: string) => z.base64().min(1).openapi({ description });
const disk = file('The disk, base64.');

const RegisterImageSchema = z
  .discriminatedUnion('format', [
    z.object({ name: imageName, format: z.literal('raw'), disk }).strict(),
    z.object({ name: imageName, format: z.literal('qcow2'), disk }).strict(),
    z
      .object({
        name: imageName,
        format: z.literal('kernel'),
        kernel: file('A Linux bzImage, base64.'),
        initrd: file('The initial ramdisk, base64.').optional(),
        cmdline: z.string().max(MAX_CMDLINE_CHARS).optional().openapi({ example: 'console=ttyS0' }),
      })
      .strict(),
  ])
  .openapi('ImageRegistration', {
    description: `All files together at most ${MAX_IMAGE_BYTES} bytes (before base64).`,
  });

const ImageSchema = z
  .object({
    name: z.string(),
    format: z.enum(['raw', 'qcow2', 'kernel']),
    files: z.array(
      z.object({
        role: z.enum(['disk', 'kernel', 'initrd']),
        key: z.string(),
        sha256: z.string(),
        bytes: z.number().int(),
      }),
    ),
    cmdline: z.string().nullable(),
    bytes: z.number().int(),
    virtualBytes: z.number().int(),
    sha256: z.string(),
    createdAt: z.number(),
  })
  .openapi('Image');

const NameParamSchema = z.object({
  name: z
    .string()
    .min(1)
    .max(128)
    .openapi({ param: { name: 'name', in: 'path' } }),
});

const route = routesOf('Images');

const registerImageRoute = route({
  method: 'post',
  path: '/v1/images',
  operationId: 'registerImage',
  summary: 'Register a qemu guest image (raw or qcow2 disk, or kernel + initrd + command line)',
  request: { body: jsonBody(RegisterImageSchema) },
  responses: {
    201: jsonResponse(ImageSchema, 'Registered'),
    200: jsonResponse(ImageSchema, 'Already registered with these exact files'),
    ...problemResponses(400, 401, 409, 413, 415, 422),
  },
});

const listImagesRoute = route({
  method: 'get',
  path: '/v1/images',
  operationId: 'listImages',
  summary: 'List registered qemu images (the built-in counter image is not listed)',
  responses: {
    200: jsonResponse(listSchema(ImageSchema), 'Every registered image'),
    ...problemResponses(401),
  },
});

const getImageRoute = route({
  method: 'get',
  path: '/v1/images/{name}',
  operationId: 'getImage',
  summary: 'Show a registered qemu image',
  request: { params: NameParamSchema },
  responses: { 200: jsonResponse(ImageSchema, 'The image'), ...problemResponses(400, 401, 404) },
});

const deleteImageRoute = route({
  method: 'delete',
  path: '/v1/images/{name}',
  operationId: 'deleteImage',
  summary: 'Delete a registered qemu image that no VM uses',
  request: { params: NameParamSchema },
  responses: {
    204: { description: 'Deleted' },
    ...problemResponses(400, 401, 404, 409),
  },
});

export function imageRoutes(deps: ApiDeps) {
  const { clients } = deps;
  const blobs = s3Blobs(clients);
  return newRouter()
    .openapi(registerImageRoute, register(deps, blobs))
    .openapi(listImagesRoute, async (c) =>
      c.json({ items: (await listRegisteredImages(clients)).map(toImageView) }, 200),
    )
    .openapi(getImageRoute, async (c) => {
      const { name } = c.req.valid('param');
      const image = await findImage(clients, name);
      if (!image) throw notFound('image', name);
      return c.json(toImageView(image), 200);
    })
    .openapi(deleteImageRoute, remove(deps, blobs));
}

const toImageView = (image: ImageRecord) => ({ ...image, cmdline: image.cmdline ?? null });

/** POST /v1/images: checks the bytes, claims the name, then stores the files and their image.json. */
function register(deps: ApiDeps, blobs: BlobStore): RouteHandler<typeof registerImageRoute> {
  const { clients } = deps;
  return async (c) => {
    const body = c.req.valid('json');
    const { name, format } = body;
    if ((BUILTIN_QEMU_IMAGES as readonly string[]).includes(name))
      throw conflict(`image ${name} is built in; register yours under another name`);
    const contents = new Map<ImageRole, Uint8Array>();
    const decode = (role: ImageRole, base64: string | undefined) => {
      if (base64 !== undefined) contents.set(role, new Uint8Array(Buffer.from(base64, 'base64')));
    };
    const cmdline = body.format === 'kernel' ? body.cmdline : undefined;
    if (body.format === 'kernel') {
      decode('kernel', body.kernel);
      decode('initrd', body.initrd);
    } else decode('disk', body.disk);
    const checked = checkImage(format, Object.fromEntries(contents), cmdline);
    if (!checked.ok)
      throw unprocessable(
        `image ${name} cannot be booted: ${checked.problems[0]}`,
        checked.problems.map((message) => ({ path: 'image', message })),
      );
    const record = imageRecordOf({
      name,
      format,
      contents,
      cmdline,
      virtualBytes: checked.virtualBytes,
      createdAt: deps.clock(),
    });
    const registered = await registerOnce(clients, imageRegistry, record, {
      differs: 'other files',
      store: () => storeImageFiles(blobs, record, contents),
      release: [() => forgetImage(clients, name, record.sha256), () => deleteImageFiles(blobs, name)],
      logError: deps.logError,
    });
    return c.json(toImageView(registered.record), registered.status);
  };
}

/** DELETE /v1/images/{name}: refused (409) while any VM, in any state, is `qemu:<name>`. */
function remove(deps: ApiDeps, blobs: BlobStore): RouteHandler<typeof deleteImageRoute> {
  const { clients } = deps;
  return async (c) => {
    const { name } = c.req.valid('param');
    const image = await findImage(clients, name);
    if (!image) throw notFound('image', name);
    const users = await vmsUsingImage(clients, name);
    if (users.length)
      throw conflict(
        `image ${name} is in use by ${users.length} VM(s) (${users.slice(0, 5).join(', ')}); delete them first`,
      );
    try {
      await forgetImage(clients, name, image.sha256);
    } catch (error) {
      if (error instanceof ConditionFailed)
        throw conflict(`image ${name} changed meanwhile; nothing was deleted`);
      throw error;
    }
    await deleteImageFiles(blobs, name).catch(deps.logError);
    return c.body(null, 204);
  };
}
