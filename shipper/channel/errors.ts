/** What went wrong with the disk channel, for callers that react differently (a full disk vs a bug). */
export type ChannelErrorKind = "locked" | "closed" | "too-large" | "usage" | "io" | "config";

/** A disk channel failure; `hint` says what to do about it. */
export class ChannelError extends Error {
  constructor(
    message: string,
    readonly kind: ChannelErrorKind,
    readonly hint?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "ChannelError";
  }
}
