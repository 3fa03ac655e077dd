/**
 * Fetching a user's media file from a URL a channel was given (WeChat's `PicUrl`,
 * a video's `video_url`), without becoming an open proxy: only hosts on an
 * allow-list, redirects followed by hand and only to allowed hosts, a size cap
 * and a time limit.
 *
 * @module
 */

import { readAtMost } from "../core/body.ts";
import { quote } from "../core/errors.ts";

/** Options for {@link fetchMedia}. */
export interface FetchLimits {
  /** Hosts it may fetch from: `mmbiz.qpic.cn`, or `*.qpic.cn` for any subdomain; `host:port` pins a port. */
  allowedHosts: readonly string[];
  maxBytes: number;
  timeoutMs: number;
  fetch?: typeof fetch;
}

const MAX_REDIRECTS = 3;

/** Whether `url` is on the allow-list (http or https only). */
export function isAllowed(url: URL, allowedHosts: readonly string[]): boolean {
  if (url.protocol !== "http:" && url.protocol !== "https:") return false;
  return allowedHosts.some((h) => {
    const host = h.includes(":") ? url.host : url.hostname;
    return h.startsWith("*.") ? host.endsWith(h.slice(1)) : host === h;
  });
}

/** GET a file within the limits; throws an Error saying what was refused or failed. */
export async function fetchMedia(
  href: string,
  limits: FetchLimits,
): Promise<{ bytes: Uint8Array; contentType: string }> {
  const signal = AbortSignal.timeout(limits.timeoutMs);
  const get = limits.fetch ?? fetch;
  let url = new URL(href);
  for (let hops = 0;; hops++) {
    if (!isAllowed(url, limits.allowedHosts)) {
      throw new Error(`cannot fetch ${quote(url.origin)}: the host is not on MEDIA_ALLOWED_HOSTS`);
    }
    const res = await get(url, { redirect: "manual", signal });
    if (res.status >= 300 && res.status < 400) {
      await res.body?.cancel();
      const to = res.headers.get("location");
      if (to === null || hops >= MAX_REDIRECTS) throw new Error(`cannot fetch ${quote(href)}: too many redirects`);
      url = new URL(to, url);
      continue;
    }
    if (!res.ok) {
      await res.body?.cancel();
      throw new Error(`cannot fetch the file: ${url.host} answered HTTP ${res.status}`);
    }
    const declared = Number(res.headers.get("content-length") ?? 0);
    if (declared > limits.maxBytes) {
      await res.body?.cancel();
      throw new Error(`the file is ${declared} bytes, over the limit of ${limits.maxBytes}`);
    }
    const bytes = await readAtMost(res.body, limits.maxBytes);
    if (bytes === undefined) throw new Error(`the file is over the limit of ${limits.maxBytes} bytes`);
    return { bytes, contentType: res.headers.get("content-type")?.split(";")[0].trim() ?? "" };
  }
}
