// The logs' Elasticsearch index template: two component templates (settings, mappings) and the index
// template made of them. The templates themselves are plain data in infra/elasticsearch/
// (logs-settings.json, logs-mappings.json, logs-template.json); this module reads them and sets what
// a deployment chooses: the index prefix, the template's name, shards and replicas.
//
// The mapping is closed (dynamic: false): a field that is not in it stays in _source but is not
// searchable, so a document builder (documents.ts) must only write mapped fields (documents.test.ts
// checks it).
import { readFileSync } from "node:fs";
import { DailyIndexNamer } from "../../sinks/elasticsearch/index-name.ts";
import type { ComponentTemplateBody, IndexTemplateBody, TemplateSet } from "../../sinks/elasticsearch/templates.ts";

/** Log indices are `logs-<service>-YYYY.MM.DD`. */
export const LOGS_INDEX_PREFIX = "logs";
/** The index template's name; its component templates are `<name>-settings` and `<name>-mappings`. */
export const LOGS_TEMPLATE_NAME = "weir-logs";

function readTemplateFile<T>(file: string): T {
  return JSON.parse(readFileSync(new URL(`../../infra/elasticsearch/${file}`, import.meta.url), "utf8")) as T;
}

export interface LogsTemplateOptions {
  /** Index names start with `<prefix>-`; the template applies to `<prefix>-*`. Default `logs`. */
  prefix?: string;
  /** Template name. Default `weir-logs`. */
  name?: string;
  /** Replicas per shard. Default 0 (the local stack is one node); 1 on a real cluster. */
  replicas?: number;
  /** Primary shards per daily index. Default 1: a day of one service's logs is small. */
  shards?: number;
}

/** The logs' component and index templates, as `installTemplates` takes them. */
export function logsTemplates(options: LogsTemplateOptions = {}): TemplateSet {
  const prefix = options.prefix ?? LOGS_INDEX_PREFIX;
  const name = options.name ?? LOGS_TEMPLATE_NAME;
  // Checks the prefix the way index names will use it.
  new DailyIndexNamer(prefix);
  const settings = readTemplateFile<ComponentTemplateBody>("logs-settings.json");
  const mappings = readTemplateFile<ComponentTemplateBody>("logs-mappings.json");
  const template = readTemplateFile<IndexTemplateBody>("logs-template.json");
  const index = (settings.template.settings as { index: Record<string, unknown> }).index;
  if (options.replicas !== undefined) index.number_of_replicas = options.replicas;
  if (options.shards !== undefined) index.number_of_shards = options.shards;
  const components = [
    { name: `${name}-settings`, body: settings },
    { name: `${name}-mappings`, body: mappings },
  ];
  return {
    components,
    indexTemplates: [
      {
        name,
        body: { ...template, index_patterns: [`${prefix}-*`], composed_of: components.map((c) => c.name) },
      },
    ],
  };
}
