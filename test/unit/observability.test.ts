// The Powertools wrapper every Lambda entry uses: correlation ids on log lines, one EMF line per
// invocation (also when the handler throws), and pino-shaped logging for the shared logic.
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Context } from 'aws-lambda';
import { describe, expect, it, vi } from 'vitest';
import { instrumented, observability, pinoStyle } from '../../functions/observability.ts';

const aContext = (awsRequestId: string) =>
  ({
    awsRequestId,
    functionName: 'seesaw-test',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:seesaw-test',
    memoryLimitInMB: '512',
    getRemainingTimeInMillis: () => 1000,
  }) as unknown as Context;

/** Everything written to stdout and stderr (warnings and errors) while `run` runs, as JSON lines. */
async function stdoutLines(run: () => Promise<unknown>): Promise<Record<string, unknown>[]> {
  const chunks: string[] = [];
  const capture = (chunk: string | Uint8Array) => {
    chunks.push(String(chunk));
    return true;
  };
  const spies = [
    vi.spyOn(process.stdout, 'write').mockImplementation(capture),
    vi.spyOn(process.stderr, 'write').mockImplementation(capture),
  ];
  try {
    await run().catch(() => undefined);
  } finally {
    for (const spy of spies) spy.mockRestore();
  }
  return chunks
    .join('')
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('instrumented handlers', () => {
  it('log with the API Gateway request id as correlation id, and the Lambda context', async () => {
    const tools = observability('seesaw-test');
    const handler = instrumented(tools, async () => {
      tools.logger.info('inside');
      return 'ok';
    });
    const lines = await stdoutLines(() =>
      handler({ requestContext: { requestId: 'req-123' } }, aContext('inv-1')),
    );
    expect(lines.find((l) => l.message === 'inside')).toMatchObject({
      correlation_id: 'req-123',
      function_request_id: 'inv-1',
      service: 'seesaw-test',
    });
  });

  it('fall back to the invocation id for events without a request id (schedules)', async () => {
    const tools = observability('seesaw-test');
    const handler = instrumented(tools, async () => tools.logger.info('scheduled'));
    const lines = await stdoutLines(() => handler({ shard: 0 }, aContext('inv-2')));
    expect(lines.find((l) => l.message === 'scheduled')?.correlation_id).toBe('inv-2');
  });

  it('flush the invocation’s metrics as one EMF line, even when the handler throws, and log the error', async () => {
    const tools = observability('seesaw-test');
    const handler = instrumented(tools, async () => {
      tools.metrics.addMetric('Tried', MetricUnit.Count, 1);
      throw new Error('boom');
    });
    let thrown: unknown;
    const lines = await stdoutLines(() =>
      handler({}, aContext('inv-3')).catch((error) => {
        thrown = error;
      }),
    );
    expect((thrown as Error).message).toBe('boom');
    expect(lines.filter((l) => '_aws' in l)).toEqual([expect.objectContaining({ Tried: 1 })]);
    expect(lines.find((l) => l.level === 'ERROR')).toMatchObject({
      message: 'invocation failed',
      error: expect.objectContaining({ message: 'boom' }),
    });
  });
});

describe('pino-shaped logging over Powertools', () => {
  it('writes (fields, message) calls as the message with the fields beside it', async () => {
    const { logger } = observability('seesaw-test');
    const lines = await stdoutLines(async () =>
      pinoStyle(logger).warn({ node: 'n1', lost: 2 }, 'orders lost'),
    );
    expect(lines).toEqual([
      expect.objectContaining({ level: 'WARN', message: 'orders lost', node: 'n1', lost: 2 }),
    ]);
  });
});
