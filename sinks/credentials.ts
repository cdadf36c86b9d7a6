// How weir's clients authenticate to the stores, for a real cluster and for the local stack in
// security mode: Elasticsearch with basic auth or an API key (and a CA for https), ClickHouse with a
// user and password. The values come from the environment or the local stack's secrets
// (infra/stack/config.ts, clientEndpoints); here they become the clients' own options. Nothing here
// logs or prints a secret.
import type { ClientOptions } from "@elastic/elasticsearch";

/** Elasticsearch credentials: basic auth, or an API key (the base64 `id:api_key` Elasticsearch returns as `encoded`). */
export type ElasticsearchAuth = { username: string; password: string } | { apiKey: string };

export interface ClickHouseAuth {
  username: string;
  password: string;
}

/** What the clients need of an endpoints object (StackEndpoints, a pipeline's context). */
export interface StoreEndpoints {
  elasticsearchUrl: string;
  /** The writer's (pipelines, retention, templates). */
  elasticsearchAuth?: ElasticsearchAuth | undefined;
  /** The on-call search's (read-only where the cluster has such a user); the writer's when absent. */
  elasticsearchSearchAuth?: ElasticsearchAuth | undefined;
  /** PEM of the CAs an https Elasticsearch is verified with (else the system's). */
  elasticsearchCa?: string | undefined;
  clickhouseUrl: string;
  /** The writer's (sinks, migrations, retention, health queries); ClickHouse's default user when absent. */
  clickhouseAuth?: ClickHouseAuth | undefined;
  /** The search user's password (its name is the logs config's search.clickhouse.user). */
  clickhouseSearchPassword?: string | undefined;
}

/** Options of an Elasticsearch client for these endpoints, as the writer or as the search. */
export function elasticsearchClientOptions(
  endpoints: StoreEndpoints,
  role: "writer" | "search" = "writer",
): ClientOptions {
  const auth =
    role === "search"
      ? (endpoints.elasticsearchSearchAuth ?? endpoints.elasticsearchAuth)
      : endpoints.elasticsearchAuth;
  return {
    node: endpoints.elasticsearchUrl,
    ...(auth ? { auth } : {}),
    ...(endpoints.elasticsearchCa ? { tls: { ca: endpoints.elasticsearchCa } } : {}),
  };
}

/** `username` and `password` for @clickhouse/client (or the sink's options), when the endpoints have them. */
export function clickhouseCredentials(auth: ClickHouseAuth | undefined): { username?: string; password?: string } {
  return auth ? { username: auth.username, password: auth.password } : {};
}
