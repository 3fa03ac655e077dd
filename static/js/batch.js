// DOM work batched to the end of the task (a microtask, before the browser lays out or paints): a burst of changes
// is written once, and what reads layout (scrolling the conversation to its end) comes after every write, so that a
// new message costs one layout, not one per change.

const writes = new Map();
const reads = new Map();
let queued = false;

/** `fn` runs once at the end of this task (called again under the same `key` before then, it still runs once). */
export function soon(key, fn) {
  writes.set(key, fn);
  queue();
}

/** `fn` runs once at the end of this task, after every write of `soon` (it may read layout). */
export function afterWrites(key, fn) {
  reads.set(key, fn);
  queue();
}

function queue() {
  if (queued) return;
  queued = true;
  queueMicrotask(flush);
}

/** Do now what waits for the end of the task (the tests measure a frame's work synchronously with it). */
export function flush() {
  queued = false;
  while (writes.size > 0 || reads.size > 0) {
    const jobs = writes.size > 0 ? writes : reads;
    const [key, fn] = jobs.entries().next().value;
    jobs.delete(key);
    try {
      fn();
    } catch (e) {
      // One failing job does not keep the others from the page.
      reportError(e);
    }
  }
}
