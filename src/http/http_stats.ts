/**
 * Request accounting off the hot path: a successful request costs two clock
 * reads and a counter; the log gets one summary line per interval (count and
 * latency percentiles per status class) instead of a line per request.
 * Failed requests (4xx, 5xx) are still logged one by one by the caller.
 *
 * @module
 */

import type { Logger } from "../core/log.ts";

// Latency buckets in ms, upper bounds: enough resolution for p50/p99 of a gateway.
const BOUNDS = [0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, Infinity];

/** Counts requests and their latencies between two summaries. */
export class HttpStats {
  #count = 0;
  #errors = 0;
  #maxMs = 0;
  readonly #buckets = new Uint32Array(BOUNDS.length);

  /** Record one request. */
  record(status: number, ms: number): void {
    this.#count++;
    if (status >= 400) this.#errors++;
    if (ms > this.#maxMs) this.#maxMs = ms;
    let i = 0;
    while (ms > BOUNDS[i]) i++;
    this.#buckets[i]++;
  }

  /** Log what was recorded since the last summary (nothing when there was nothing), then start over. */
  flush(log: Logger, seconds: number): void {
    if (this.#count === 0) return;
    log.info("http_summary", {
      seconds,
      requests: this.#count,
      errors: this.#errors,
      p50_ms_under: this.#quantile(0.5),
      p99_ms_under: this.#quantile(0.99),
      max_ms: Math.round(this.#maxMs * 1000) / 1000,
    });
    this.#count = this.#errors = this.#maxMs = 0;
    this.#buckets.fill(0);
  }

  #quantile(q: number): number {
    const target = Math.ceil(this.#count * q);
    let seen = 0;
    for (let i = 0; i < BOUNDS.length; i++) {
      seen += this.#buckets[i];
      if (seen >= target) return BOUNDS[i];
    }
    return Infinity;
  }
}
