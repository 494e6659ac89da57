// Names shared by the Lambda code and the stack: the metrics namespace and each function's service
// (the `service` key of its log lines and the `service` dimension Powertools puts on its metrics).
export const METRICS_NAMESPACE = 'Seesaw';

export const SERVICES = {
  api: 'seesaw-api',
  balancer: 'seesaw-balancer',
  reaper: 'seesaw-reaper',
} as const;

export type Service = (typeof SERVICES)[keyof typeof SERVICES];
