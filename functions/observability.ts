// Powertools for AWS Lambda in every Seesaw function: structured JSON logs with the invocation's
// correlation id, CloudWatch metrics as EMF, and X-Ray traces of the handler and its SDK calls.
// The local stack runs the same logic with pino (bin/local); only the Lambda entries use this.
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { Tracer } from '@aws-lambda-powertools/tracer';
import type { Context } from 'aws-lambda';
import type { Clients } from '../shared/storage/clients.ts';
import { METRICS_NAMESPACE } from './services.ts';

export { SERVICES } from './services.ts';

export interface Observability {
  logger: Logger;
  metrics: Metrics;
  tracer: Tracer;
}

export function observability(
  service: string,
  options: { defaultDimensions?: Record<string, string> } = {},
): Observability {
  return {
    logger: new Logger({ serviceName: service }),
    metrics: new Metrics({
      namespace: METRICS_NAMESPACE,
      serviceName: service,
      ...(options.defaultDimensions ? { defaultDimensions: options.defaultDimensions } : {}),
    }),
    tracer: new Tracer({ serviceName: service }),
  };
}

/** Traces every DynamoDB and S3 call of these clients (the document client shares the stack). */
export function traceClients(tracer: Tracer, clients: Clients): Clients {
  tracer.captureAWSv3Client(clients.dynamo);
  tracer.captureAWSv3Client(clients.s3);
  return clients;
}

type Fields = Record<string, unknown>;

/** The `(fields, message)` logger the shared logic takes (pino's shape), writing through Powertools. */
export function pinoStyle(logger: Logger) {
  const level =
    (write: (message: string, ...extra: Fields[]) => void) => (fields: object, message?: string) =>
      write(message ?? '', fields as Fields);
  return {
    debug: level(logger.debug.bind(logger)),
    info: level(logger.info.bind(logger)),
    warn: level(logger.warn.bind(logger)),
    error: level(logger.error.bind(logger)),
  };
}

/**
 * Wraps a handler: the Lambda context and a correlation id (the API Gateway request id, else the
 * invocation's) on every log line, a `## handler` trace subsegment with the cold start annotated
 * and any error recorded, and the metrics added during the invocation flushed as one EMF line.
 */
export function instrumented<E, R>(
  { logger, metrics, tracer }: Observability,
  handler: (event: E, context?: Context) => Promise<R>,
): (event: E, context?: Context) => Promise<R> {
  return async (event, context) => {
    // Lambda always passes a context; a direct call (a test, a script) may not.
    if (context) logger.addContext(context);
    const requestId = (event as { requestContext?: { requestId?: unknown } } | undefined)?.requestContext
      ?.requestId;
    logger.setCorrelationId(typeof requestId === 'string' ? requestId : context?.awsRequestId);
    const segment = tracer.getSegment();
    const subsegment = segment?.addNewSubsegment('## handler');
    if (subsegment) tracer.setSegment(subsegment);
    tracer.annotateColdStart();
    tracer.addServiceNameAnnotation();
    try {
      return await handler(event, context);
    } catch (error) {
      tracer.addErrorAsMetadata(error as Error);
      logger.error('invocation failed', error as Error);
      throw error;
    } finally {
      subsegment?.close();
      if (segment) tracer.setSegment(segment);
      metrics.publishStoredMetrics();
    }
  };
}
