// Installs composable index templates: component templates (settings, mappings) and the index
// templates made of them. Installing is idempotent and versioned: each template carries a `version`,
// and one is written only when the cluster has none of that name or an older version. A newer
// version on the cluster is left alone (a newer weir installed it), so two releases running side by
// side during a deploy do not overwrite each other back and forth.
//
// Templates apply when an index is created: a new version shapes the next daily index, not the
// indices that exist (docs/elasticsearch.md says how to change those).
import type { Client, estypes } from "@elastic/elasticsearch";
import pino, { type Logger } from "pino";

/** A component template's body as `PUT _component_template/<name>` takes it, with its `version`. */
export interface ComponentTemplateBody {
  version: number;
  template: Record<string, unknown>;
  _meta?: Record<string, unknown>;
}

/** An index template's body as `PUT _index_template/<name>` takes it, with its `version`. */
export interface IndexTemplateBody {
  version: number;
  index_patterns: string[];
  composed_of?: string[];
  priority?: number;
  template?: Record<string, unknown>;
  _meta?: Record<string, unknown>;
}

export interface TemplateSet {
  /** Installed first: the index templates name them. */
  components: Array<{ name: string; body: ComponentTemplateBody }>;
  indexTemplates: Array<{ name: string; body: IndexTemplateBody }>;
}

export type TemplateAction =
  /** None of that name existed. */
  | "created"
  /** An older version (or one without a version) was replaced. */
  | "updated"
  /** The same version is there. */
  | "unchanged"
  /** A newer version is there and was kept. */
  | "newer-kept";

export interface TemplateInstall {
  kind: "component" | "index";
  name: string;
  version: number;
  /** The version that was on the cluster before; null when there was none (or it had no version). */
  installed: number | null;
  action: TemplateAction;
}

export class TemplateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TemplateError";
  }
}

/** What to do with a template of version `ours` when the cluster has `installed` (undefined: none of that name). */
export function decideTemplate(ours: number, installed: number | null | undefined): TemplateAction {
  if (installed === undefined) return "created";
  if (installed === null || installed < ours) return "updated";
  return installed === ours ? "unchanged" : "newer-kept";
}

function checkVersion(kind: string, name: string, version: unknown): number {
  if (typeof version !== "number" || !Number.isInteger(version) || version < 1) {
    throw new TemplateError(
      `${kind} template ${name} has no version (a whole number >= 1): give it one, and raise it with every change`,
    );
  }
  return version;
}

export interface InstallTemplatesOptions {
  logger?: Logger;
  /** Report what would be written, write nothing. */
  dryRun?: boolean;
}

/**
 * Writes each template of the set whose version is newer than the cluster's: component templates
 * first, then index templates. Returns what was done with each, in that order.
 */
export async function installTemplates(
  client: Client,
  set: TemplateSet,
  options: InstallTemplatesOptions = {},
): Promise<TemplateInstall[]> {
  const log = options.logger ?? pino({ name: "weir-es-templates" });
  const out: TemplateInstall[] = [];
  // Checked before anything is written, so a set with a template missing its version writes nothing.
  for (const c of set.components) checkVersion("component", c.name, c.body.version);
  for (const t of set.indexTemplates) checkVersion("index", t.name, t.body.version);

  for (const { name, body } of set.components) {
    const got = await client.cluster.getComponentTemplate({ name }, { ignore: [404] });
    const found = (got as estypes.ClusterGetComponentTemplateResponse).component_templates?.find(
      (c) => c.name === name,
    );
    const installed = found ? (found.component_template.version ?? null) : undefined;
    const action = decideTemplate(body.version, installed);
    if ((action === "created" || action === "updated") && !options.dryRun) {
      await client.cluster.putComponentTemplate({
        name,
        body: body as unknown as estypes.ClusterPutComponentTemplateRequest,
      } as unknown as estypes.ClusterPutComponentTemplateRequest);
    }
    out.push({ kind: "component", name, version: body.version, installed: installed ?? null, action });
  }
  for (const { name, body } of set.indexTemplates) {
    const got = await client.indices.getIndexTemplate({ name }, { ignore: [404] });
    const found = (got as estypes.IndicesGetIndexTemplateResponse).index_templates?.find((t) => t.name === name);
    const installed = found ? (found.index_template.version ?? null) : undefined;
    const action = decideTemplate(body.version, installed);
    if ((action === "created" || action === "updated") && !options.dryRun) {
      await client.indices.putIndexTemplate({
        name,
        body: body as unknown as estypes.IndicesPutIndexTemplateRequest,
      } as unknown as estypes.IndicesPutIndexTemplateRequest);
    }
    out.push({ kind: "index", name, version: body.version, installed: installed ?? null, action });
  }
  for (const t of out) {
    const line = {
      kind: t.kind,
      template: t.name,
      version: t.version,
      installed: t.installed,
      dryRun: !!options.dryRun,
    };
    if (t.action === "newer-kept") log.warn(line, "a newer template version is installed; kept it");
    else if (t.action !== "unchanged")
      log.info(line, `template ${t.action}${options.dryRun ? " (dry run: not written)" : ""}`);
  }
  return out;
}
