// What the local stack needs from the machine: a JDK, Maven (to fetch Kafka and Elasticsearch from
// Maven Central into ~/.m2, which is the download cache), Debian packages, and, when weir runs as
// root, an unprivileged user for the servers (Elasticsearch refuses to run as root).
import { spawn, spawnSync } from "node:child_process";
import { chownSync, existsSync, mkdirSync, readdirSync, realpathSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { ActionableError } from "../../schemas/errors.ts";
import { MIN_JAVA_MAJOR } from "./versions.ts";

/** A failure of the local stack the user can act on: `hint` says what to do. */
export class StackError extends ActionableError {
  constructor(message: string, hint?: string) {
    super(message, hint);
    this.name = "StackError";
  }
}

export interface JavaRuntime {
  home: string;
  bin: string;
  major: number;
  version: string;
}

export interface RunAs {
  name: string;
  /** Set when the servers must switch to this user (weir runs as root). */
  uid?: number;
  gid?: number;
}

export function findJava(env: NodeJS.ProcessEnv = process.env): JavaRuntime {
  const candidates = [env.JAVA_HOME ? join(env.JAVA_HOME, "bin", "java") : undefined, which("java")].filter(
    (c): c is string => !!c && existsSync(c),
  );
  const hint = `install a JDK ${MIN_JAVA_MAJOR} or newer (Debian: apt-get install openjdk-17-jre-headless) or point JAVA_HOME at one`;
  if (candidates.length === 0)
    throw new StackError("no Java runtime found (JAVA_HOME unset and no java on PATH)", hint);
  for (const bin of candidates) {
    const r = spawnSync(bin, ["-XshowSettings:properties", "-version"], { encoding: "utf8" });
    const props = `${r.stderr}${r.stdout}`;
    const spec = /java\.specification\.version = (\S+)/.exec(props)?.[1];
    const home = /java\.home = (\S+)/.exec(props)?.[1];
    const version = /java\.runtime\.version = (\S+)/.exec(props)?.[1] ?? spec ?? "?";
    const major = Number(spec?.startsWith("1.") ? spec.slice(2) : spec);
    if (home && major >= MIN_JAVA_MAJOR) return { home, bin: realpathSync(bin), major, version };
    if (home) throw new StackError(`${bin} is Java ${spec}; the stack needs ${MIN_JAVA_MAJOR} or newer`, hint);
  }
  throw new StackError(`could not run ${candidates.join(", ")} -version`, hint);
}

export function which(command: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(":").concat(["/usr/sbin", "/sbin"])) {
    const p = join(dir || ".", command);
    try {
      if (statSync(p).isFile()) return p;
    } catch {}
  }
  return undefined;
}

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/** Runs a command, collecting its output; rejects with the output's tail when it fails. */
export function run(
  command: string,
  args: string[],
  opts: {
    cwd?: string;
    env?: NodeJS.ProcessEnv;
    uid?: number | undefined;
    gid?: number | undefined;
    /** Texts (passwords on the command line) replaced by *** in the error message. */
    secrets?: string[];
    /** Written to its standard input (a password a tool prompts for), which is otherwise closed. */
    input?: string;
  } = {},
): Promise<string> {
  const { secrets = [], input, ...spawnOpts } = opts;
  const redact = (text: string) => secrets.reduce((t, secret) => (secret ? t.replaceAll(secret, "***") : t), text);
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      ...spawnOpts,
      stdio: [input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
    });
    if (input !== undefined) child.stdin?.end(input);
    let out = "";
    child.stdout?.on("data", (d) => {
      out += d;
    });
    child.stderr?.on("data", (d) => {
      out += d;
    });
    child.on("error", (e) => reject(new StackError(`could not run ${command}: ${e.message}`)));
    child.on("close", (code) => {
      if (code === 0) resolve(out);
      else reject(new StackError(redact(`${command} ${args.join(" ")} failed (exit ${code}):\n${tail(out, 25)}`)));
    });
  });
}

export function tail(text: string, lines: number): string {
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}

/** `mvn` with the project's pinned arguments; Maven's local repository (~/.m2) is the download cache. */
export async function maven(args: string[], cwd: string): Promise<void> {
  const mvn = which("mvn");
  if (!mvn) {
    await ensureDebianPackages(["maven"], "Maven fetches Kafka and Elasticsearch from Maven Central");
  }
  try {
    await run(which("mvn") ?? "mvn", ["-B", "-q", "--no-transfer-progress", ...args], { cwd });
  } catch (e) {
    throw new StackError(
      (e as Error).message,
      "Maven could not fetch from Maven Central: check the network, a proxy or mirror in ~/.m2/settings.xml, and the free disk",
    );
  }
}

/** Installs Debian packages when missing. Only root with apt-get can; anyone else gets the command to run. */
export async function ensureDebianPackages(
  packages: string[],
  why: string,
  log: (s: string) => void = () => {},
): Promise<void> {
  const missing = packages.filter(
    (p) =>
      // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own format syntax
      spawnSync("dpkg-query", ["-W", "-f", "${Status}", p], { encoding: "utf8" }).stdout !== "install ok installed",
  );
  if (missing.length === 0) return;
  const command = `apt-get install -y ${missing.join(" ")}`;
  if (!which("apt-get"))
    throw new StackError(
      `${missing.join(", ")} missing (${why}) and this machine has no apt-get`,
      `install ${missing.join(", ")} with your package manager`,
    );
  if (!isRoot()) throw new StackError(`${missing.join(", ")} missing (${why})`, `run: sudo ${command}`);
  log(`installing ${missing.join(" ")} with apt-get (${why})`);
  // A package's maintainer scripts may start its system service on our ports (ClickHouse does):
  // policy-rc.d tells invoke-rc.d not to, for the length of the install.
  const policy = "/usr/sbin/policy-rc.d";
  const ownPolicy = !existsSync(policy);
  if (ownPolicy) writeFileSync(policy, "#!/bin/sh\nexit 101\n", { mode: 0o755 });
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const install = () => run("apt-get", ["install", "-y", "-q", "--no-install-recommends", ...missing], { env });
  try {
    await install().catch(async () => {
      await run("apt-get", ["update", "-q"], { env });
      await install();
    });
  } catch (e) {
    throw new StackError(
      `could not install ${missing.join(", ")}: ${(e as Error).message}`,
      `run ${command} by hand and retry`,
    );
  } finally {
    if (ownPolicy) rmSync(policy, { force: true });
  }
}

/** The user the servers run as: this process's own, or (as root) the unprivileged `name`, created if missing. */
export async function ensureRunAs(name: string, log: (s: string) => void): Promise<RunAs> {
  if (!isRoot()) return { name: process.env.USER ?? String(process.getuid?.()) };
  let ids = lookupUser(name);
  if (!ids) {
    log(`creating system user ${name} to run the servers (Elasticsearch refuses to run as root)`);
    await run("useradd", [
      "--system",
      "--user-group",
      "--no-create-home",
      "--home-dir",
      "/nonexistent",
      "--shell",
      "/usr/sbin/nologin",
      name,
    ]).catch((e: Error) => {
      throw new StackError(
        `could not create system user ${name}: ${e.message}`,
        "create it by hand (useradd --system) or set WEIR_STACK_USER to an existing unprivileged user",
      );
    });
    ids = lookupUser(name);
  }
  if (!ids) throw new StackError(`system user ${name} not found after creating it`);
  if (ids.uid === 0)
    throw new StackError(`${name} is root; the servers must run unprivileged`, "set WEIR_STACK_USER to another user");
  return { name, ...ids };
}

function lookupUser(name: string): { uid: number; gid: number } | undefined {
  const r = spawnSync("getent", ["passwd", name], { encoding: "utf8" });
  const f = r.status === 0 ? r.stdout.split(":") : [];
  return f.length > 3 ? { uid: Number(f[2]), gid: Number(f[3]) } : undefined;
}

/** Creates `dirs` owned by the servers' user. */
export function makeOwnedDirs(runAs: RunAs, ...dirs: string[]): void {
  for (const dir of dirs) {
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    if (runAs.uid !== undefined) chownTree(dir, runAs.uid, runAs.gid ?? runAs.uid);
  }
}

function chownTree(path: string, uid: number, gid: number): void {
  const st = statSync(path);
  if (st.uid !== uid || st.gid !== gid) chownSync(path, uid, gid);
  if (st.isDirectory()) for (const entry of readdirSync(path)) chownTree(join(path, entry), uid, gid);
}

/** Fails early, with a way out, when the servers' user cannot reach the stack's folders. */
export function checkReachable(runAs: RunAs, ...dirs: string[]): void {
  if (runAs.uid === undefined) return;
  for (const dir of dirs) {
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    const r = spawnSync("test", ["-r", dir, "-a", "-x", dir], { uid: runAs.uid, gid: runAs.gid });
    if (r.status !== 0) {
      throw new StackError(
        `user ${runAs.name} cannot reach ${dir}`,
        `let it in (chmod o+rx ${dir}, and chmod o+x on ${dirname(dir)} and the folders above) or set WEIR_STACK_DIR to a folder it can reach`,
      );
    }
  }
}
