// Every 4xx/5xx the API sends is an RFC 9457 problem (application/problem+json). Errors from the
// shared layer (shared/errors.ts), zod and Hono are mapped to problems here and nowhere else.
import { z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { ZodError } from 'zod';
import { ConditionFailed, Conflict, InvalidInput, NotFound } from '../../shared/errors.ts';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

export const ProblemSchema = z
  .object({
    type: z.string().openapi({ example: 'urn:seesaw:problem:conflict' }),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    instance: z.string().optional(),
    errors: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  })
  .openapi('Problem');

export type Problem = z.infer<typeof ProblemSchema>;

/** A problem the handlers raise on purpose: `slug` names the kind, `detail` says what happened. */
export class ApiProblem extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly slug: string,
    readonly title: string,
    readonly detail: string,
    /** Extension members (RFC 9457 §3.2), e.g. `errors`, or `changes` of a refused plan. */
    readonly extra: Partial<Pick<Problem, 'errors'>> & Record<string, unknown> = {},
  ) {
    super(detail);
    this.name = 'ApiProblem';
  }
}

export const badRequest = (detail: string, errors?: Problem['errors']) =>
  new ApiProblem(400, 'bad-request', 'Bad request', detail, errors ? { errors } : {});
export const notFound = (what: string, id: string) =>
  new ApiProblem(404, 'not-found', 'Not found', `${what} ${id} not found`);
export const conflict = (detail: string) => new ApiProblem(409, 'conflict', 'Conflict', detail);
export const unprocessable = (detail: string, errors?: Problem['errors']) =>
  new ApiProblem(422, 'unprocessable', 'Unprocessable request', detail, errors ? { errors } : {});

/** Turns a zod failure into a 400 listing each offending field. */
export function validationProblem(error: ZodError, where: string): ApiProblem {
  const errors = error.issues.map((issue) => ({
    path: issue.path.length ? issue.path.join('.') : '(root)',
    message: issue.message,
  }));
  const first = errors[0];
  return new ApiProblem(
    400,
    'validation',
    'Invalid request',
    `invalid ${where}${first ? `: ${first.path}: ${first.message}` : ''}`,
    { errors },
  );
}

/** Maps any thrown error to a problem; unknown errors are 500s whose details stay in the log. */
export function toProblem(error: unknown): ApiProblem {
  if (error instanceof ApiProblem) return error;
  if (error instanceof ZodError) return validationProblem(error, 'request');
  if (error instanceof HTTPException) {
    const slug = error.status === 415 ? 'unsupported-media-type' : 'bad-request';
    return new ApiProblem(
      error.status,
      slug,
      error.status === 415 ? 'Unsupported media type' : 'Bad request',
      error.message || 'the request could not be read',
    );
  }
  if (error instanceof NotFound) return new ApiProblem(404, 'not-found', 'Not found', error.message);
  if (error instanceof ConditionFailed)
    return new ApiProblem(
      409,
      'conflict',
      'Conflict',
      `${error.message}; nothing was changed — read the item again and retry`,
    );
  if (error instanceof Conflict) return new ApiProblem(409, 'conflict', 'Conflict', error.message);
  if (error instanceof InvalidInput) return new ApiProblem(400, 'bad-request', 'Bad request', error.message);
  return new ApiProblem(500, 'internal', 'Internal error', 'the server failed to handle the request');
}

export function problemResponse(c: Context, problem: ApiProblem): Response {
  const body: Problem = {
    type: `urn:seesaw:problem:${problem.slug}`,
    title: problem.title,
    status: problem.status,
    detail: problem.detail,
    instance: c.req.path,
    ...problem.extra,
  };
  return c.body(JSON.stringify(body), problem.status, { 'Content-Type': PROBLEM_CONTENT_TYPE });
}

/** The OpenAPI response entries for the problems a route may answer with. */
export function problemResponses<const S extends number>(...statuses: S[]) {
  const descriptions: Record<number, string> = {
    400: 'Invalid request (bad JSON, unknown fields, out-of-range values)',
    401: 'Missing or wrong bearer token',
    404: 'Unknown id',
    409: 'The item is in a conflicting state or changed meanwhile; nothing changed',
    410: 'Gone: the item expired',
    415: 'Unsupported media type',
    422: 'Well-formed but not acceptable',
  };
  return Object.fromEntries(
    statuses.map((status) => [
      status,
      {
        description: descriptions[status] ?? 'Problem',
        content: { [PROBLEM_CONTENT_TYPE]: { schema: ProblemSchema } },
      },
    ]),
  ) as Record<
    S,
    { description: string; content: { 'application/problem+json': { schema: typeof ProblemSchema } } }
  >;
}
