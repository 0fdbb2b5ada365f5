// The queue and the sender: events wait in a bounded ring buffer and go out in batches from a
// background task (timers and promises, never the caller's stack), with retries and counters.
import { postBeacon, type BeaconOutcome } from "./beacon-transport.js";
import type { Event } from "./generated/events.js";

export interface ClientOptions {
  /** The exporter's base URL: its internal listener (`/v1/events`) in Node, the public one (`/v1/beacon`) in browsers. */
  url?: string;
  /** `EXPORTER_INGEST_TOKEN`, sent as `Authorization: Bearer …` to `/v1/events`. Never used in a browser page. */
  token?: string;
  /** The widget key from `passiton-monitoring beacon-key` (browser/beacon transport: `/v1/beacon?key=KEY`). */
  key?: string;
  /** `"events"` POSTs JSON to `/v1/events` with the token; `"beacon"` uses `navigator.sendBeacon` to `/v1/beacon`. */
  transport?: "events" | "beacon";
  /** Events per request (default 500; the beacon transport sends at most 20). */
  batchSize?: number;
  /** Milliseconds a partial batch waits before it is sent (default 1000). */
  flushInterval?: number;
  /** Events kept while the exporter is slow or down; beyond it the oldest are dropped (default 10000). */
  maxQueue?: number;
  /** Milliseconds per request before it is abandoned (default 2000). */
  timeout?: number;
  /** Retries of a batch after connection errors, 5xx and 429 (default 3). */
  maxRetries?: number;
  /** First retry delay in ms, doubled per retry with jitter (default 500). */
  backoff?: number;
  /** Upper bound of one backoff delay in ms (default 10000). */
  maxBackoff?: number;
  /**
   * Longest Retry-After (429/503) honoured, in ms (default 300000). Until it passes nothing is
   * sent; meanwhile the queue is bounded by `maxQueue` and `flush()`/`close()` by their timeouts.
   */
  maxRetryAfter?: number;
  /** Where warnings go (default `console`); `null` silences them. */
  logger?: Pick<Console, "warn" | "error"> | null;
}

/** The client's counters, like the Python client's `ClientStats`. */
export interface ClientStats {
  /** events currently waiting in the queue */
  queued: number;
  /** events the exporter accepted (beacon transport: events the browser took for sending) */
  sent: number;
  /** events the exporter answered 202 for but refused one by one */
  rejected: number;
  /** events not delivered: retries exhausted, a 4xx, or an unreadable answer */
  failed: number;
  /** events discarded because the queue was full or the client was closed */
  dropped: number;
  /** calls whose arguments could not form a valid event */
  invalid: number;
}

/** The beacon endpoint's batch limit (keep in step with the exporter's public listener). */
export const BEACON_BATCH = 20;

type Timer = ReturnType<typeof setTimeout>;

function unref(timer: Timer): Timer {
  const t = timer as unknown as { unref?: () => void };
  if (typeof t.unref === "function") t.unref();
  return timer;
}

function positive(value: unknown, fallback: number, minimum = 0): number {
  return typeof value === "number" && Number.isFinite(value) && value >= minimum ? value : fallback;
}

/** Seconds from a Retry-After header (delta-seconds or an HTTP date), or undefined. */
export function retryAfterMs(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const seconds = Number(value);
  if (value.trim() !== "" && Number.isFinite(seconds)) return seconds >= 0 ? seconds * 1000 : undefined;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** A wait that never keeps a Node process alive (unref'd) and ends early when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = unref(setTimeout(done, ms));
    signal.addEventListener("abort", done);
  });
}

/** 4xx answers that a retry cannot fix (408 and 429 are retried, 413 splits the batch). */
function permanent(status: number): boolean {
  return status >= 400 && status < 500 && status !== 408 && status !== 429;
}

export class Client {
  readonly url: string;
  private readonly eventsUrl: string;
  private readonly headers: Record<string, string>;
  readonly transport: "events" | "beacon";
  private readonly key: string | undefined;
  private readonly batchSize: number;
  private readonly flushInterval: number;
  private readonly maxQueue: number;
  private readonly timeout: number;
  private readonly maxRetries: number;
  private readonly backoff: number;
  private readonly maxBackoff: number;
  private readonly maxRetryAfter: number;
  /** No URL was given (events transport): warned once, every call is ignored. */
  readonly disabled: boolean;
  readonly logger: Pick<Console, "warn" | "error"> | null;

  private buf: (Event | undefined)[] = [];
  private head = 0;
  private size = 0;
  private inFlight = 0;
  private running = false;
  private drainAll = false;
  private timer: Timer | null = null;
  private closed = false;
  /** Aborts the requests and waits in progress (close() after its timeout, abandon()); then replaced. */
  private abort = new AbortController();
  /** Date.now() before which nothing is sent: the server's Retry-After. */
  private pausedUntil = 0;
  /** Problems already warned about (one warning each, not one per batch); cleared by a success. */
  private warned = new Set<string>();
  private lastAttemptFailed = false;
  /** Set by the Node exit hook during its bounded flush: one attempt per batch, no retry or pause. */
  exiting = false;
  private idleWaiters: Array<() => void> = [];
  /** widget keys given per call, by organization and widget (beacon transport). */
  readonly widgetKeys: Map<string, string> = new Map();

  private sent = 0;
  private rejected = 0;
  private failed = 0;
  private dropped = 0;
  invalid = 0;

  constructor(options: ClientOptions = {}) {
    this.url = String(options.url ?? "").replace(/\/+$/, "");
    this.transport = options.transport ?? "events";
    this.eventsUrl = `${this.url}/v1/events`;
    this.headers = { "Content-Type": "application/json" };
    if (options.token) this.headers.Authorization = `Bearer ${options.token}`;
    this.key = options.key || undefined;
    const batch = Math.floor(positive(options.batchSize, 500, 1));
    this.batchSize = this.transport === "beacon" ? Math.min(batch, BEACON_BATCH) : batch;
    this.flushInterval = positive(options.flushInterval, 1000);
    this.maxQueue = Math.floor(positive(options.maxQueue, 10_000, 1));
    this.timeout = positive(options.timeout, 2000, 1);
    this.maxRetries = Math.floor(positive(options.maxRetries, 3));
    this.backoff = positive(options.backoff, 500);
    this.maxBackoff = positive(options.maxBackoff, 10_000);
    this.maxRetryAfter = positive(options.maxRetryAfter, 300_000);
    this.logger = options.logger === undefined ? console : options.logger;
    this.disabled = this.transport === "events" && !this.url;
    if (this.disabled) {
      this.log(
        "warn",
        "monitoring: no exporter URL (initialize({ url }) or PASSITON_EXPORTER_URL); monitoring calls are ignored",
      );
    }
  }

  stats(): ClientStats {
    return {
      queued: this.size,
      sent: this.sent,
      rejected: this.rejected,
      failed: this.failed,
      dropped: this.dropped,
      invalid: this.invalid,
    };
  }

  /** Count events lost before they reached this client (e.g. calls before initialize() beyond the bound). */
  countDropped(count: number): void {
    this.dropped += count;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Events queued or being sent (including a batch waiting to be retried). */
  get pending(): number {
    return this.size + this.inFlight;
  }

  /** The last attempt to reach the exporter failed (connection error, timeout, 5xx, 429). */
  get failing(): boolean {
    return this.lastAttemptFailed;
  }

  /** Queue one event; O(1), never throws, never touches the network on the caller's stack. */
  enqueue(event: Event): void {
    if (this.disabled) return;
    if (this.closed) {
      this.dropped++;
      return;
    }
    const max = this.maxQueue;
    if (this.size === max) {
      this.buf[this.head] = undefined;
      this.head = (this.head + 1) % max;
      this.size--;
      this.dropped++;
    }
    this.buf[(this.head + this.size) % max] = event;
    this.size++;
    if (this.running) return;
    if (this.size >= this.batchSize) this.schedule(0, false);
    else if (this.timer === null) this.schedule(this.flushInterval, true);
  }

  private get lost(): number {
    return this.failed + this.dropped;
  }

  /**
   * Send everything queued now. Resolves true when all of it was delivered within `timeoutMs`;
   * false when the time ran out or some of it was lost meanwhile (a 401/403 or other 4xx, retries
   * exhausted, dropped from a full queue). Never rejects.
   */
  flush(timeoutMs = 5000): Promise<boolean> {
    if (this.size === 0 && this.inFlight === 0) return Promise.resolve(true);
    const lostBefore = this.lost;
    this.drainAll = true;
    if (!this.running) this.schedule(0, true);
    return new Promise<boolean>((resolve) => {
      let settled = false;
      // Not unref'd: a pending flush keeps a Node process alive until it is done or times out.
      const deadline = setTimeout(() => {
        settled = true;
        resolve(false);
      }, Math.max(0, timeoutMs));
      this.idleWaiters.push(() => {
        if (settled) return;
        clearTimeout(deadline);
        resolve(this.lost === lostBefore);
      });
    });
  }

  /**
   * Flush for at most `timeoutMs` overall (default 2000, like Sentry's `close(2000)`), then stop:
   * requests and retry waits in progress are abandoned, events still queued and calls made
   * afterwards count as dropped. Resolves true when everything was delivered, false when the
   * bound passed first or events were lost. Never rejects; safe to call more than once.
   */
  async close(timeoutMs = 2000): Promise<boolean> {
    if (this.closed) return this.size === 0 && this.inFlight === 0;
    const done = await this.flush(timeoutMs);
    this.closed = true;
    if (!done) this.abort.abort();
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.dropped += this.size;
    this.buf = [];
    this.head = 0;
    this.size = 0;
    this.wakeIdle();
    return done;
  }

  /**
   * Give up on what is pending without closing: the request and retry wait in progress are
   * aborted (their batch counts as failed), queued events count as dropped. For the Node exit
   * hook, once its bounded flush has run out of time; later calls are sent as usual.
   */
  abandon(): void {
    const pending = this.size + this.inFlight;
    if (pending) this.log("warn", `monitoring: ${pending} events not delivered to ${this.eventsUrl} in time, given up`);
    this.abort.abort();
    this.abort = new AbortController();
    this.dropped += this.size;
    this.buf = [];
    this.head = 0;
    this.size = 0;
    if (!this.running) this.wakeIdle();
  }

  // -- the background sender --

  private schedule(delay: number, all: boolean): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = unref(
      setTimeout(() => {
        this.timer = null;
        if (all) this.drainAll = true;
        void this.run();
      }, delay),
    );
  }

  private take(count: number): Event[] {
    const batch: Event[] = new Array(count);
    const max = this.maxQueue;
    for (let i = 0; i < count; i++) {
      batch[i] = this.buf[this.head] as Event;
      this.buf[this.head] = undefined;
      this.head = (this.head + 1) % max;
    }
    this.size -= count;
    return batch;
  }

  private wakeIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const wake of waiters) wake();
  }

  private async run(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while (this.size > 0 && !this.abort.signal.aborted) {
        if (this.size < this.batchSize && !this.drainAll) break;
        const batch = this.take(Math.min(this.batchSize, this.size));
        this.inFlight = batch.length;
        try {
          const signal = this.abort.signal;
          await (this.transport === "beacon" ? this.sendBeacons(batch) : this.deliver(batch, signal));
        } catch (err) {
          this.failed += batch.length;
          this.log("error", `monitoring batch of ${batch.length} lost: ${String(err)}`);
        }
        this.inFlight = 0;
      }
    } finally {
      this.running = false;
      if (this.size === 0) {
        this.drainAll = false;
        this.wakeIdle();
      } else if (!this.closed && this.timer === null) {
        this.schedule(this.drainAll ? 0 : this.flushInterval, true);
      }
    }
  }

  private log(level: "warn" | "error", message: string): void {
    try {
      this.logger?.[level](message);
    } catch {
      // a broken logger must not break the sender
    }
  }

  /** One warning per kind of problem until a batch gets through again. */
  private warnOnce(kind: string, message: string): void {
    if (this.warned.has(kind)) return;
    this.warned.add(kind);
    this.log("warn", message);
  }

  private async post(body: string, signal: AbortSignal): Promise<Response> {
    const controller = new AbortController();
    const onAbort = () => controller.abort();
    signal.addEventListener("abort", onAbort);
    // The request's own bound; unref'd like every timer here (the socket is what holds the loop).
    let timedOut = false;
    const timer = unref(
      setTimeout(() => {
        timedOut = true;
        controller.abort();
      }, this.timeout),
    );
    try {
      return await fetch(this.eventsUrl, {
        method: "POST",
        headers: this.headers,
        body,
        signal: controller.signal,
      });
    } catch (err) {
      if (timedOut) throw new Error(`no answer within ${this.timeout} ms`);
      throw err;
    } finally {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
    }
  }

  private async deliver(batch: Event[], signal: AbortSignal): Promise<void> {
    const body = JSON.stringify(batch);
    for (let attempt = 0; ; attempt++) {
      const paused = this.pausedUntil - Date.now();
      if (paused > 0 && !this.exiting) await sleep(paused, signal);
      if (signal.aborted || (this.exiting && this.pausedUntil > Date.now())) {
        this.failed += batch.length;
        return;
      }
      let problem: string;
      let retryAfter: number | undefined;
      try {
        const response = await this.post(body, signal);
        const status = response.status;
        if (status >= 200 && status < 300) {
          this.warned.clear();
          this.lastAttemptFailed = false;
          await this.recordAnswer(batch.length, response);
          return;
        }
        const text = (await response.text().catch(() => "")).slice(0, 200);
        if (status === 413 && batch.length > 1) {
          const half = batch.length >> 1;
          await this.deliver(batch.slice(0, half), signal);
          await this.deliver(batch.slice(half), signal);
          return;
        }
        problem = `HTTP ${status}: ${text}`;
        if (permanent(status)) {
          this.failed += batch.length;
          this.warnOnce(
            `status ${status}`,
            status === 401 || status === 403
              ? `monitoring: the exporter at ${this.eventsUrl} refused the ingest token (HTTP ${status}): check EXPORTER_INGEST_TOKEN; events are not delivered (counted in stats().failed)`
              : `monitoring: the exporter at ${this.eventsUrl} refused events, not retried (${problem}); counted in stats().failed`,
          );
          return;
        }
        if (status === 429 || status === 503) {
          retryAfter = retryAfterMs(response.headers.get("Retry-After"));
          if (retryAfter !== undefined) {
            retryAfter = Math.min(retryAfter, this.maxRetryAfter);
            this.pausedUntil = Math.max(this.pausedUntil, Date.now() + retryAfter);
          }
        }
      } catch (err) {
        problem = String((err as Error)?.cause ?? err);
      }
      this.lastAttemptFailed = true;
      if (this.exiting) {
        this.failed += batch.length; // the process is exiting: no retry
        this.warnOnce("lost", `monitoring: ${batch.length} events not delivered to ${this.eventsUrl} before exit (${problem})`);
        return;
      }
      if (signal.aborted) {
        this.failed += batch.length; // given up by close() or abandon(), which report it
        return;
      }
      if (attempt >= this.maxRetries) {
        this.failed += batch.length;
        this.warnOnce(
          "lost",
          `monitoring: events to ${this.eventsUrl} lost after ${attempt + 1} attempts (${problem}); counted in stats().failed`,
        );
        return;
      }
      let delay = Math.min(this.maxBackoff, this.backoff * 2 ** attempt) * (0.5 + Math.random() * 0.5);
      if (retryAfter !== undefined) delay = Math.max(delay, retryAfter);
      await sleep(delay, signal);
    }
  }

  private async recordAnswer(count: number, response: Response): Promise<void> {
    let accepted = count;
    let rejected = 0;
    let errors: unknown = [];
    try {
      const answer = (await response.json()) as { accepted: unknown; rejected: unknown; errors?: unknown };
      if (Number.isInteger(answer.accepted) && Number.isInteger(answer.rejected)) {
        accepted = answer.accepted as number;
        rejected = answer.rejected as number;
        errors = answer.errors;
      }
    } catch {
      // an unreadable 2xx answer: count the batch as accepted, as the Python client does
    }
    if (rejected) {
      this.log("warn", `exporter rejected ${rejected} of ${count} events: ${JSON.stringify(errors).slice(0, 500)}`);
    }
    this.sent += accepted;
    this.rejected += rejected;
  }

  // -- the beacon transport (browsers): one request per widget key, no retries --

  /**
   * Beacon transport: hand everything queued to the browser now, synchronously — for `pagehide`
   * and `visibilitychange` to hidden, after which timers may never run again.
   */
  sendBeaconsNow(): void {
    if (this.transport !== "beacon" || this.closed) return;
    while (this.size > 0) {
      const batch = this.take(Math.min(this.batchSize, this.size));
      try {
        this.beaconGroups(batch, (events, key) => {
          postBeacon(globalThis, this.url, key, JSON.stringify(events), (outcome) => {
            if (outcome === "failed") this.failed += events.length;
            else this.sent += events.length;
          });
        });
      } catch {
        this.failed += batch.length;
      }
    }
    if (!this.running) this.wakeIdle();
  }

  private beaconGroups(batch: Event[], send: (events: Event[], key: string | undefined) => void): void {
    const groups = new Map<string, Event[]>();
    for (const event of batch) {
      const e = event as { organization_id?: string; widget_id?: string };
      const id = `${e.organization_id}\n${e.widget_id}`;
      const group = groups.get(id);
      if (group) group.push(event);
      else groups.set(id, [event]);
    }
    for (const [id, events] of groups) send(events, this.widgetKeys.get(id) ?? this.key);
  }

  private async sendBeacons(batch: Event[]): Promise<void> {
    const sends: Array<Promise<void>> = [];
    this.beaconGroups(batch, (events, key) => {
      const body = JSON.stringify(events);
      sends.push(
        new Promise<void>((resolve) =>
          postBeacon(globalThis, this.url, key, body, (outcome) => {
            if (outcome === "failed") this.failed += events.length;
            else this.sent += events.length;
            resolve();
          }),
        ),
      );
    });
    await Promise.all(sends);
  }
}
