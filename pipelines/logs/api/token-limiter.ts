// What one token may ask of the API at once and over time, so that one team's script (or one stolen
// token) cannot take the stores from everyone else: a token bucket per token (`rate` requests per
// second on average, `burst` after a quiet while), requests in flight per token (`concurrency`) and
// open tails per token (`tails`). A refusal says how long to wait (the 429's Retry-After).
import type { ApiLimits } from "../search/limits.ts";

export type Admission =
  | { ok: true; release: () => void }
  | { ok: false; limit: "rate" | "concurrency" | "tails"; retryAfterSeconds: number; message: string };

interface TokenState {
  tokens: number;
  refilledAt: number;
  inFlight: number;
  tails: number;
}

export class TokenLimiter {
  private readonly states = new Map<string, TokenState>();

  constructor(
    readonly limits: ApiLimits,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** A request of `token` may start (and must call release when it ends), or not, and when to ask again. */
  admit(token: string): Admission {
    const s = this.state(token);
    if (s.tokens < 1) {
      const wait = (1 - s.tokens) / this.limits.rate;
      return {
        ok: false,
        limit: "rate",
        retryAfterSeconds: Math.max(1, Math.ceil(wait)),
        message: `this token has made more than ${this.limits.rate} requests per second (burst ${this.limits.burst}) (rate)`,
      };
    }
    if (s.inFlight >= this.limits.concurrency) {
      return {
        ok: false,
        limit: "concurrency",
        retryAfterSeconds: 1,
        message: `this token has ${s.inFlight} requests being answered, the limit is ${this.limits.concurrency} (concurrency)`,
      };
    }
    s.tokens -= 1;
    s.inFlight++;
    return { ok: true, release: once(() => s.inFlight--) };
  }

  /** A tail of `token` may stay open (release when it closes), or not. */
  openTail(token: string): Admission {
    const s = this.state(token);
    if (s.tails >= this.limits.tails) {
      return {
        ok: false,
        limit: "tails",
        retryAfterSeconds: 5,
        message: `this token has ${s.tails} tails open, the limit is ${this.limits.tails} (tails)`,
      };
    }
    s.tails++;
    return { ok: true, release: once(() => s.tails--) };
  }

  private state(token: string): TokenState {
    const now = this.now() / 1000;
    let s = this.states.get(token);
    if (!s) {
      s = { tokens: this.limits.burst, refilledAt: now, inFlight: 0, tails: 0 };
      this.states.set(token, s);
    }
    s.tokens = Math.min(this.limits.burst, s.tokens + (now - s.refilledAt) * this.limits.rate);
    s.refilledAt = now;
    return s;
  }
}

function once(f: () => void): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    f();
  };
}
