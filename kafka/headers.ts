// Record headers with a meaning across weir's processes: what the shipper stamps, the stream runtime
// reads. Both import them from here (the shipper never reaches into stream/).

/**
 * The source of a record: one host's log, rotated files included (`<host>:<log path>`), stamped by
 * weir ship. The stream runtime keeps a watermark per source of a partition (docs/stream.md, "Time").
 */
export const SOURCE_HEADER = "weir-source";
