// What simulated services write about their requests: messages, logger names, errors with the stack
// traces each language prints, and clients' user agents.
import type { AccessLog, AppLog } from "../../schemas/types.generated.ts";
import { GATEWAY_TIMEOUT_MS, type ServiceDef } from "./platform.ts";
import type { Rng } from "./random.ts";

export function userAgent(platform: number, version: string): string {
  if (platform === 0) return `live-android/${version}`;
  if (platform === 1) return `live-ios/${version}`;
  return "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36";
}

export function loggerName(def: ServiceDef, path: string): string {
  const area = path.split("/")[1] ?? "main";
  if (def.appLog === "logback" || def.appLog === "text") {
    const cls = area.charAt(0).toUpperCase() + area.slice(1);
    return `com.live.${def.name.replace("-svc", "")}.${cls}Controller`;
  }
  return `${def.name.replace("-svc", "")}.${area}`;
}

export function infoMessage(path: string, req: AccessLog): string {
  return `handled ${req.method} ${path} status=${req.status} in ${Math.round(req.latencyUs / 1000)} ms`;
}

export function errorMessage(def: ServiceDef, path: string, status: number, code: string | null): string {
  if (code === "UPSTREAM_TIMEOUT") return `${path} failed: upstream did not answer in time`;
  if (code === "UPSTREAM_ERROR") return `${path} failed: upstream returned an error`;
  if (code === "GATEWAY_TIMEOUT") return `${path} timed out after ${GATEWAY_TIMEOUT_MS} ms`;
  return `${path} failed with ${status} (${def.name})`;
}

const JAVA_ERRORS: [string, string][] = [
  ["java.net.SocketTimeoutException", "Read timed out"],
  ["org.springframework.dao.QueryTimeoutException", "PreparedStatementCallback; Query execution was interrupted"],
  ["java.lang.IllegalStateException", "Connection pool exhausted (max 64)"],
];
const NODE_ERRORS: [string, string][] = [
  ["TimeoutError", "operation timed out after 800 ms"],
  ["Error", "read ECONNRESET"],
  ["TypeError", "Cannot read properties of undefined (reading 'roomId')"],
];
const GO_ERRORS: [string, string][] = [
  ["context.DeadlineExceeded", "context deadline exceeded"],
  ["*net.OpError", "dial tcp 10.20.3.7:6379: i/o timeout"],
];

export function stackFor(def: ServiceDef, rng: Rng): AppLog["error"] {
  const pkg = def.name.replace("-svc", "");
  if (def.appLog === "logback" || def.appLog === "text") {
    const [type, message] = rng.pick(JAVA_ERRORS);
    const frames = [
      `\tat com.live.${pkg}.service.${pkg.charAt(0).toUpperCase()}${pkg.slice(1)}Service.handle(Service.java:${100 + rng.int(300)})`,
      `\tat com.live.${pkg}.web.Controller.invoke(Controller.java:${40 + rng.int(100)})`,
      "\tat org.springframework.web.servlet.FrameworkServlet.service(FrameworkServlet.java:883)",
      "\tat org.apache.catalina.core.ApplicationFilterChain.doFilter(ApplicationFilterChain.java:166)",
      "\tat org.apache.tomcat.util.threads.ThreadPoolExecutor$Worker.run(ThreadPoolExecutor.java:659)",
      "\tat java.base/java.lang.Thread.run(Thread.java:840)",
    ];
    return { type, message, stack: frames.join("\n") };
  }
  if (def.appLog === "pino") {
    const [type, message] = rng.pick(NODE_ERRORS);
    return {
      type,
      message,
      stack: `${type}: ${message}\n    at ${pkg}Handler (/srv/${def.name}/src/handlers/${pkg}.ts:${20 + rng.int(200)}:11)\n    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)`,
    };
  }
  const [type, message] = rng.pick(GO_ERRORS);
  return {
    type,
    message,
    stack: `goroutine ${rng.int(5000)} [running]:\nlive/${pkg}/handler.(*Server).Handle(...)\n\t/src/${pkg}/handler/server.go:${50 + rng.int(200)} +0x1a4`,
  };
}
