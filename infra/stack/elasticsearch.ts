// Elasticsearch 8 from its integ-test-zip on Maven Central: a single node on loopback, no security,
// run as an unprivileged user. The zip lacks most modules (see docs/stack.md); weir needs none of them.
import { copyFileSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import type { StackConfig } from "./config.ts";
import { ensureDebianPackages, makeOwnedDirs, maven, run, which } from "./prerequisites.ts";
import { ES_SEARCH_USER, ES_WRITER_USER, readSecret } from "./security.ts";
import { describeFetchError, type Health, installOnce, type ServiceContext, type StackService } from "./service.ts";
import type { LaunchSpec } from "./service-process.ts";
import { ELASTICSEARCH_VERSION } from "./versions.ts";

export class ElasticsearchService implements StackService {
  readonly name = "elasticsearch" as const;
  readonly readySeconds = 180;
  private readonly home: string;
  private readonly dist: string;

  constructor(private readonly cfg: StackConfig) {
    this.home = cfg.paths.service("elasticsearch");
    this.dist = join(cfg.paths.downloads, `elasticsearch-${ELASTICSEARCH_VERSION}`, "home");
  }

  ports() {
    return { http: this.cfg.elasticsearch.port, transport: this.cfg.elasticsearch.transportPort };
  }

  endpoint() {
    return `http://127.0.0.1:${this.cfg.elasticsearch.port}`;
  }

  serverLog() {
    return join(this.home, "logs", "weir-local.log");
  }

  async install(ctx: ServiceContext): Promise<string> {
    const fresh = await installOnce(
      join(this.cfg.paths.downloads, `elasticsearch-${ELASTICSEARCH_VERSION}`),
      async (tmp) => {
        ctx.log(`elasticsearch: fetching ${ELASTICSEARCH_VERSION} integ-test-zip (Maven Central, cached in ~/.m2)`);
        await maven(
          [
            "dependency:copy",
            `-Dartifact=org.elasticsearch.distribution.integ-test-zip:elasticsearch:${ELASTICSEARCH_VERSION}:zip`,
            `-DoutputDirectory=${tmp}`,
          ],
          tmp,
        );
        if (!which("unzip")) await ensureDebianPackages(["unzip"], "to unpack Elasticsearch", ctx.log);
        const zip = join(tmp, `elasticsearch-${ELASTICSEARCH_VERSION}.zip`);
        await run("unzip", ["-q", zip, "-d", tmp]);
        await run("mv", [join(tmp, `elasticsearch-${ELASTICSEARCH_VERSION}`), join(tmp, "home")]);
        await run("rm", [zip]);
        await run("chmod", ["-R", "a+rX", tmp]);
      },
    );
    if (fresh) ctx.log(`elasticsearch: installed ${ELASTICSEARCH_VERSION}`);
    return ELASTICSEARCH_VERSION;
  }

  async launch(ctx: ServiceContext): Promise<LaunchSpec> {
    const config = join(this.home, "config");
    const data = join(this.home, "data");
    const logs = join(this.home, "logs");
    const tmp = join(this.home, "tmp");
    makeOwnedDirs(ctx.runAs, config, join(config, "jvm.options.d"), data, logs, tmp);
    // ES_PATH_CONF must be writable by the server (it creates its keystore there), so the
    // distribution's config is copied next to the data rather than used in place.
    const distConfig = join(this.dist, "config");
    for (const file of readdirSync(distConfig)) {
      if (statSync(join(distConfig, file)).isFile()) copyFileSync(join(distConfig, file), join(config, file));
    }
    writeFileSync(
      join(config, "jvm.options"),
      readFileSync(join(distConfig, "jvm.options"), "utf8")
        .replace(
          /file=gc\.log:(.*):filecount=\d+,filesize=\w+/,
          `file=${join(logs, "gc.log")}:$1:filecount=4,filesize=16m`,
        )
        .replace("-XX:ErrorFile=hs_err_pid%p.log", `-XX:ErrorFile=${join(logs, "hs_err_pid%p.log")}`),
    );
    const { heapMin, heapMax, port, transportPort } = this.cfg.elasticsearch;
    writeFileSync(
      join(config, "jvm.options.d", "weir.options"),
      `-Xms${heapMin}\n-Xmx${heapMax}\n-XX:HeapDumpPath=${logs}\n`,
    );
    writeFileSync(
      join(config, "elasticsearch.yml"),
      `# written by weir stack up; edit infra/stack/elasticsearch.ts instead\n${stringify({
        "cluster.name": "weir-local",
        "node.name": "weir-local",
        "network.host": "127.0.0.1",
        "http.port": port,
        "transport.port": transportPort,
        "discovery.type": "single-node",
        "path.data": data,
        "path.logs": logs,
        // With `security`: basic auth (the file realm: users weir and weir_search); plain HTTP on loopback.
        "xpack.security.enabled": this.cfg.security,
        ...(this.cfg.security
          ? { "xpack.security.http.ssl.enabled": false, "xpack.security.transport.ssl.enabled": false }
          : {}),
        // A developer's full disk should not turn the local indices read-only.
        "cluster.routing.allocation.disk.threshold_enabled": false,
      })}`,
    );
    makeOwnedDirs(ctx.runAs, config);
    if (this.cfg.security) await this.addUsers(ctx, config);
    return {
      command: join(this.dist, "bin", "elasticsearch"),
      args: ["--quiet"], // the server logs to path.logs; stdout would duplicate it
      cwd: logs,
      env: {
        PATH: process.env.PATH,
        LANG: "C.UTF-8",
        ES_JAVA_HOME: ctx.java.home,
        ES_PATH_CONF: config,
        ES_TMPDIR: tmp,
      },
      outputFile: join(logs, "stdout.log"),
      uid: ctx.runAs.uid,
      gid: ctx.runAs.gid,
    };
  }

  /**
   * The file realm's users, added again at each start (the distribution's empty users file replaces
   * the last one): `weir` (superuser: templates, indices, retention) and `weir_search` (reads logs-*).
   * Passwords go to the tool on its standard input, never on a command line.
   */
  private async addUsers(ctx: ServiceContext, config: string): Promise<void> {
    writeFileSync(
      join(config, "roles.yml"),
      stringify({
        [ES_SEARCH_USER]: {
          cluster: ["monitor"],
          indices: [{ names: ["logs-*"], privileges: ["read", "view_index_metadata"] }],
        },
      }),
    );
    makeOwnedDirs(ctx.runAs, config);
    const tool = join(this.dist, "bin", "elasticsearch-users");
    const env = { PATH: process.env.PATH, LANG: "C.UTF-8", ES_JAVA_HOME: ctx.java.home, ES_PATH_CONF: config };
    for (const [user, role, secret] of [
      [ES_WRITER_USER, "superuser", "elasticsearch-weir"],
      [ES_SEARCH_USER, ES_SEARCH_USER, "elasticsearch-weir_search"],
    ] as const) {
      const password = readSecret(this.cfg, secret);
      await run(tool, ["useradd", user, "-r", role], {
        env,
        uid: ctx.runAs.uid,
        gid: ctx.runAs.gid,
        input: `${password}\n${password}\n`,
        secrets: [password],
      });
    }
  }

  /** The writer's basic auth with `security` on. */
  private authHeader(): Record<string, string> {
    if (!this.cfg.security) return {};
    const token = Buffer.from(`${ES_WRITER_USER}:${readSecret(this.cfg, "elasticsearch-weir")}`).toString("base64");
    return { authorization: `Basic ${token}` };
  }

  async probe(): Promise<Health> {
    try {
      const signal = AbortSignal.timeout(3000);
      const headers = this.authHeader();
      // This distribution has no `GET /` (its rest-root module is missing): the node info has the version.
      const nodes = (await (
        await fetch(`${this.endpoint()}/_nodes/_local?filter_path=nodes.*.version`, { signal, headers })
      ).json()) as {
        nodes?: Record<string, { version?: string }>;
      };
      const health = (await (
        await fetch(`${this.endpoint()}/_cluster/health?timeout=2s`, { signal, headers })
      ).json()) as {
        status?: string;
        number_of_nodes?: number;
      };
      const ok = health.status === "green" || health.status === "yellow";
      return {
        ok,
        detail: `status ${health.status}, ${health.number_of_nodes} node`,
        version: Object.values(nodes.nodes ?? {})[0]?.version ?? "?",
      };
    } catch (e) {
      return { ok: false, detail: describeFetchError(e) };
    }
  }
}
