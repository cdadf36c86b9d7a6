// What the report's unit tests share: an SLO file, an endpoint node, a day's figures for it.
import type { nodeReport } from "../report.ts";
import { type HealthNode, SloConfig } from "../slo.ts";

export const SLO = SloConfig.parse(`
defaults:
  availability: 99.9%
  latency: { threshold: 100ms, target: 99% }
  runbook: https://runbooks.test/{service}
services:
  pay-svc:
    availability: 99%
    endpoints:
      /wallet/debit: { availability: 99.5% }
`);

export const endpoint = (service: string, name: string): HealthNode => ({
  level: "ENDPOINT",
  app: "live",
  system: "s",
  service,
  endpoint: name,
});

export const figures = (requests: number, errors: number, extra: Partial<Parameters<typeof nodeReport>[2]> = {}) => ({
  requests,
  errors,
  slow: 0,
  minutes: 1440,
  badMinutes: 0,
  p50Us: 1000,
  p99Us: 2000,
  p999Us: 3000,
  ...extra,
});
