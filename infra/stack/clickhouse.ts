// ClickHouse from Debian's clickhouse-server package (18.16 on bookworm), or any clickhouse-server
// binary named by `clickhouse.binary`, started with a config of its own under the stack folder.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import {
  SEARCH_QUERY_SETTINGS,
  SEARCH_USER,
  searchUserXml,
} from "../../pipelines/logs/search/clickhouse-search-user.ts";
import type { StackConfig } from "./config.ts";
import { ensureDebianPackages, makeOwnedDirs, StackError, which } from "./prerequisites.ts";
import { readSecret } from "./security.ts";
import { describeFetchError, type Health, type ServiceContext, type StackService } from "./service.ts";
import type { LaunchSpec } from "./service-process.ts";
import { CLICKHOUSE_DEBIAN_PACKAGE } from "./versions.ts";

export class ClickHouseService implements StackService {
  readonly name = "clickhouse" as const;
  readonly readySeconds = 60;
  private readonly home: string;

  constructor(private readonly cfg: StackConfig) {
    this.home = cfg.paths.service("clickhouse");
  }

  ports() {
    return { http: this.cfg.clickhouse.httpPort, native: this.cfg.clickhouse.tcpPort };
  }

  endpoint() {
    return `http://127.0.0.1:${this.cfg.clickhouse.httpPort}`;
  }

  serverLog() {
    return join(this.home, "logs", "server.log");
  }

  private binary(): string | undefined {
    return this.cfg.clickhouse.binary ?? which("clickhouse-server");
  }

  async install(ctx: ServiceContext): Promise<string> {
    const custom = this.cfg.clickhouse.binary;
    if (custom) {
      if (spawnSync("test", ["-x", custom]).status !== 0 && !which(custom)) {
        throw new StackError(
          `clickhouse.binary ${custom} is not an executable`,
          "set WEIR_CH_BINARY to a clickhouse-server binary",
        );
      }
      return "custom binary";
    }
    if (!this.binary()) {
      await ensureDebianPackages(
        [CLICKHOUSE_DEBIAN_PACKAGE, "clickhouse-client"],
        "the local ClickHouse server",
        ctx.log,
      );
    }
    if (!this.binary()) {
      throw new StackError(
        "clickhouse-server is not on PATH after installing it",
        "set WEIR_CH_BINARY to a clickhouse-server binary",
      );
    }
    // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own format syntax
    const r = spawnSync("dpkg-query", ["-W", "-f", "${Version}", CLICKHOUSE_DEBIAN_PACKAGE], { encoding: "utf8" });
    return r.status === 0 ? (r.stdout.split("+")[0] ?? r.stdout) : "unknown";
  }

  async launch(ctx: ServiceContext): Promise<LaunchSpec> {
    const dirs = ["data", "tmp", "user_files", "format_schemas", "logs"].map((d) => join(this.home, d));
    makeOwnedDirs(ctx.runAs, this.home, ...dirs);
    const configFile = join(this.home, "config.xml");
    writeFileSync(configFile, serverConfig(this.cfg, this.home));
    writeFileSync(join(this.home, "users.xml"), usersXml(this.password("clickhouse-default")), { mode: 0o600 });
    chmodSync(join(this.home, "users.xml"), 0o600);
    this.writeSearchUser(ctx);
    makeOwnedDirs(ctx.runAs, this.home);
    const binary = this.binary() as string;
    // The modern single binary is `clickhouse server`; Debian's package installs `clickhouse-server`.
    const args =
      basename(binary) === "clickhouse" ? ["server", `--config-file=${configFile}`] : [`--config-file=${configFile}`];
    return {
      command: binary,
      args,
      cwd: this.home,
      env: { PATH: process.env.PATH, LANG: "C.UTF-8", TZ: "UTC" },
      outputFile: join(this.home, "logs", "stdout.log"),
      uid: ctx.runAs.uid,
      gid: ctx.runAs.gid,
    };
  }

  /**
   * The search user, on a server started now or long ago: its users.d file is written when it differs
   * from this version's, and ClickHouse reloads users' configuration by itself (every few seconds, no
   * restart); this waits until the user answers with its profile.
   */
  async reconcile(ctx: ServiceContext): Promise<void> {
    const changed = this.writeSearchUser(ctx);
    const deadline = Date.now() + 30_000;
    let last = "";
    for (;;) {
      last = await this.askAsSearchUser();
      if (last === String(SEARCH_QUERY_SETTINGS.max_ast_depth)) break;
      if (Date.now() > deadline) {
        throw new StackError(
          `ClickHouse did not load the search user ${SEARCH_USER} within 30 s: ${last}`,
          `check ${this.searchUserFile()} and the server's log: weir stack logs clickhouse`,
        );
      }
      await sleep(500);
    }
    if (changed) ctx.log(`clickhouse: search user ${SEARCH_USER} applied (users.d, reloaded without a restart)`);
  }

  private searchUserFile(): string {
    return join(this.home, "users.d", `${SEARCH_USER}.xml`);
  }

  /** Writes the users.d file when it differs; true when it did. */
  /** A user's password with `security` on (its SHA-256 goes in the users' files); none without. */
  private password(name: "clickhouse-default" | "clickhouse-weir_search"): string | undefined {
    return this.cfg.security ? readSecret(this.cfg, name) : undefined;
  }

  /** Basic auth of a user of this server (none without `security`). */
  private authHeader(user: string, secret: "clickhouse-default" | "clickhouse-weir_search"): Record<string, string> {
    const password = this.password(secret);
    return password === undefined
      ? {}
      : { authorization: `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}` };
  }

  private writeSearchUser(ctx: ServiceContext): boolean {
    const file = this.searchUserFile();
    const password = this.password("clickhouse-weir_search");
    const xml = searchUserXml(password === undefined ? undefined : sha256Hex(password));
    if (existsSync(file) && readFileSync(file, "utf8") === xml) return false;
    makeOwnedDirs(ctx.runAs, join(this.home, "users.d"));
    writeFileSync(`${file}.tmp`, xml, { mode: 0o600 });
    // Renamed into place whole: the server's reloader never reads half a file.
    renameSync(`${file}.tmp`, file);
    makeOwnedDirs(ctx.runAs, join(this.home, "users.d"));
    return true;
  }

  /** A setting of the search profile as the search user sees it, with the search's own settings sent; or the error. */
  private async askAsSearchUser(): Promise<string> {
    const params = new URLSearchParams({ user: SEARCH_USER });
    for (const [k, v] of Object.entries(SEARCH_QUERY_SETTINGS)) params.set(k, String(v));
    try {
      const res = await fetch(`${this.endpoint()}/?${params}`, {
        method: "POST",
        headers: this.authHeader(SEARCH_USER, "clickhouse-weir_search"),
        body: "SELECT value FROM system.settings WHERE name = 'max_ast_depth'",
        signal: AbortSignal.timeout(3000),
      });
      return (await res.text()).trim();
    } catch (e) {
      return describeFetchError(e);
    }
  }

  async probe(): Promise<Health> {
    try {
      const signal = AbortSignal.timeout(3000);
      const ping = await (await fetch(`${this.endpoint()}/ping`, { signal })).text();
      const res = await fetch(`${this.endpoint()}/?query=${encodeURIComponent("SELECT version(), uptime()")}`, {
        signal,
        headers: this.authHeader("default", "clickhouse-default"),
      });
      if (!res.ok) return { ok: false, detail: `HTTP ${res.status}: ${(await res.text()).trim().slice(0, 200)}` };
      const [version, uptime] = (await res.text()).trim().split("\t");
      return { ok: ping.trim() === "Ok.", detail: `up ${uptime}s`, version: version ?? "?" };
    } catch (e) {
      return { ok: false, detail: describeFetchError(e) };
    }
  }
}

function xml(s: string): string {
  return s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
}

// Only settings that 18.16 knows; caches are sized for a laptop rather than a server.
function serverConfig(cfg: StackConfig, home: string): string {
  const path = (d: string) => xml(`${join(home, d)}/`);
  return `<?xml version="1.0"?>
<!-- written by weir stack up; edit infra/stack/clickhouse.ts instead -->
<yandex>
  <logger>
    <level>information</level>
    <log>${xml(join(home, "logs", "server.log"))}</log>
    <errorlog>${xml(join(home, "logs", "server.err.log"))}</errorlog>
    <size>20M</size>
    <count>5</count>
  </logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>${cfg.clickhouse.httpPort}</http_port>
  <tcp_port>${cfg.clickhouse.tcpPort}</tcp_port>
  <max_connections>1024</max_connections>
  <keep_alive_timeout>10</keep_alive_timeout>
  <max_concurrent_queries>100</max_concurrent_queries>
  <uncompressed_cache_size>268435456</uncompressed_cache_size>
  <mark_cache_size>268435456</mark_cache_size>
  <path>${path("data")}</path>
  <tmp_path>${path("tmp")}</tmp_path>
  <user_files_path>${path("user_files")}</user_files_path>
  <format_schema_path>${path("format_schemas")}</format_schema_path>
  <users_config>users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mlock_executable>false</mlock_executable>
  <builtin_dictionaries_reload_interval>3600</builtin_dictionaries_reload_interval>
  <max_session_timeout>3600</max_session_timeout>
  <default_session_timeout>60</default_session_timeout>
</yandex>
`;
}

/**
 * The server's users.xml: its default user on loopback, with the stack's password (as SHA-256) when
 * `security` is on, else none.
 */
function usersXml(password: string | undefined): string {
  return USERS_XML.replace(
    "<password></password>",
    password === undefined
      ? "<password></password>"
      : `<password_sha256_hex>${sha256Hex(password)}</password_sha256_hex>`,
  ).replace(
    "with a passwordless default user",
    password === undefined ? "with a passwordless default user" : "with a password",
  );
}

function sha256Hex(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

const USERS_XML = `<?xml version="1.0"?>
<!-- written by weir stack up: a local, loopback-only server with a passwordless default user -->
<yandex>
  <profiles>
    <default>
      <max_memory_usage>4000000000</max_memory_usage>
      <load_balancing>random</load_balancing>
    </default>
  </profiles>
  <users>
    <default>
      <password></password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
  </users>
  <quotas>
    <default>
      <interval>
        <duration>3600</duration>
        <queries>0</queries>
        <errors>0</errors>
        <result_rows>0</result_rows>
        <read_rows>0</read_rows>
        <execution_time>0</execution_time>
      </interval>
    </default>
  </quotas>
</yandex>
`;
