// Reading back what a test indexed into Elasticsearch.
import type { Client } from "@elastic/elasticsearch";

/** Every document of the indices `pattern` matches (a scroll in index order): _id and _source. */
export async function allDocuments(
  es: Client,
  pattern: string,
): Promise<Array<{ id: string; source: Record<string, unknown> }>> {
  const out: Array<{ id: string; source: Record<string, unknown> }> = [];
  let page = await es.search({ index: pattern, scroll: "1m", size: 5000, sort: ["_doc"] });
  while (page.hits.hits.length > 0) {
    for (const h of page.hits.hits) out.push({ id: h._id as string, source: h._source as Record<string, unknown> });
    page = await es.scroll({ scroll_id: page._scroll_id as string, scroll: "1m" });
  }
  await es.clearScroll({ scroll_id: page._scroll_id as string }).catch(() => {});
  return out;
}
