// A log line as an Elasticsearch document: the logs template's document builders
// (infra/elasticsearch/logs.ts), a daily index per service (`<prefix>-<service>-YYYY.MM.DD`) and
// the line's id as _id. The sink writes `create` actions, so a replayed line is answered 409 and
// counted as a duplicate, never indexed twice.
import {
  accessLogDocument,
  accessLogJson,
  appLogDocument,
  appLogJson,
  type LogDocument,
} from "../../infra/elasticsearch/logs.ts";
import { DailyIndexNamer } from "../../sinks/elasticsearch/index-name.ts";
import type { Rec } from "../../stream/types.ts";
import { type LogLine, lineId } from "./lines.ts";

/** The document as an object (what the sink indexes is its JSON text, `logLineMapping`'s). */
export function logDocument(line: LogLine): LogDocument {
  return line.dataset === "app" ? appLogDocument(line.log) : accessLogDocument(line.log);
}

/**
 * What the pipeline's ElasticsearchSink needs for a line: the document as JSON text (built directly,
 * cheaper than JSON.stringify of the object: infra/elasticsearch/logs.ts), its daily index and its _id.
 */
export function logLineMapping(prefix: string): {
  toDocument: (rec: Rec<LogLine>) => string;
  index: (rec: Rec<LogLine>) => string;
  id: (rec: Rec<LogLine>) => string;
} {
  const namer = new DailyIndexNamer(prefix);
  return {
    toDocument: (rec: Rec<LogLine>) => {
      const line = rec.value;
      return line.dataset === "app" ? appLogJson(line.log) : accessLogJson(line.log);
    },
    index: (rec: Rec<LogLine>) => namer.name(rec.value.log.service, rec.value.log.ts),
    id: (rec: Rec<LogLine>) => lineId(rec.value),
  };
}
