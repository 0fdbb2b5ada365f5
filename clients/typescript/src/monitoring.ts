// `monitoring`: the original design's API by its own names (payment, widget, traffic, dashboard
// families), each call mapped to one exporter event, plus short aliases matching the Python client.
import { Client, type ClientOptions, type ClientStats } from "./client.js";
import { buildEvent, InvalidCall, type Event, type EventType } from "./events.js";
import { BEACON_TYPES } from "./generated/events.js";
import { normalizeRoute } from "./routes.js";
import { testAlerts, type TestAlertsOptions, type TestAlertsResult } from "./test-alerts.js";

export type { ClientOptions, ClientStats } from "./client.js";
export { normalizeRoute } from "./routes.js";
export type { TestAlertsOptions, TestAlertsResult, TestAlertsCheck } from "./test-alerts.js";

/** An error message, or the Error itself (its message is sent). */
export type ErrorLike = string | Error;
/** Milliseconds since the epoch, or a Date; defaults to now. */
export type When = number | Date;

export interface PaymentFailure {
  organizationId: string;
  /** minor units (cents), a whole number */
  amount?: number;
  currency?: string;
  error?: ErrorLike;
  declineCode?: string;
  failureCode?: string;
  /** the payment's id (e.g. the Stripe PaymentIntent): its retries count as one failed payment */
  paymentId?: string;
  durationMs?: number;
  timestamp?: When;
}
export interface PaymentSuccess {
  organizationId: string;
  amount?: number;
  currency?: string;
  durationMs?: number;
  timestamp?: When;
}
export interface PaymentTimeout {
  organizationId: string;
  durationMs?: number;
  provider?: string;
  timestamp?: When;
}
export interface StripeWebhookFailure {
  /** the Stripe event type the handler failed on, e.g. `payment_intent.succeeded` */
  eventType: string;
  error?: ErrorLike;
  timestamp?: When;
}
export interface WidgetError {
  organizationId: string;
  widgetId: string;
  error?: ErrorLike;
  url?: string;
  source?: string;
  /** browser: the widget's key (`passiton-monitoring beacon-key`), when it differs from the initialized one */
  key?: string;
  timestamp?: When;
}
export interface WidgetLoad {
  organizationId: string;
  widgetId: string;
  /** load time in ms (`loadTime` is accepted too) */
  durationMs?: number;
  loadTime?: number;
  url?: string;
  key?: string;
  timestamp?: When;
}
export interface TrafficRequest {
  organizationId: string;
  path?: string;
  country?: string;
  userAgent?: string;
  ip?: string;
  timestamp?: When;
}
export interface AuthFailure {
  reason: string;
  organizationId?: string;
  ip?: string;
  timestamp?: When;
}
export interface DatabaseError {
  operation: string;
  error?: ErrorLike;
  timestamp?: When;
}

export interface MonitoringOptions extends ClientOptions {}

export interface PaymentMonitoring {
  /** `payment.failed` */
  monitorPaymentFailures(failure: PaymentFailure): void;
  /** `payment.succeeded` */
  monitorPaymentSuccess(success: PaymentSuccess): void;
  /** `payment.timeout` */
  monitorPaymentTimeouts(timeout: PaymentTimeout): void;
  /** `stripe.webhook_failed`: your own Stripe webhook handler failed */
  monitorStripeWebhookFailures(failure: StripeWebhookFailure): void;
  failure(failure: PaymentFailure): void;
  success(success: PaymentSuccess): void;
  timeout(timeout: PaymentTimeout): void;
  webhookFailed(failure: StripeWebhookFailure): void;
}
export interface WidgetMonitoring {
  /** `widget.load_error` */
  monitorWidgetLoadError(error: WidgetError): void;
  /** `widget.render_error` */
  monitorWidgetRenderError(error: WidgetError): void;
  /** `widget.script_error` */
  monitorWidgetScriptError(error: WidgetError): void;
  /** `widget.loaded` with its load time */
  monitorWidgetLoadPerformance(load: WidgetLoad): void;
  loadError(error: WidgetError): void;
  renderError(error: WidgetError): void;
  scriptError(error: WidgetError): void;
  loaded(load: WidgetLoad): void;
}
export interface TrafficMonitoring {
  /** `traffic.request`: a visitor request to an organization's pages */
  monitorTraffic(request: TrafficRequest): void;
  request(request: TrafficRequest): void;
}
export interface DashboardMonitoring {
  /**
   * `endpoint.request`: pass the route TEMPLATE (`/api/donations/:id`), not the raw path; Next.js
   * names (`/api/donations/[id]`, `[...slug]`) are reported as `:id` and `*`.
   */
  monitorEndpointHealth(route: string, responseTimeMs: number, statusCode: number, method?: string): void;
  /** `auth.failed` */
  monitorAuthenticationFailure(failure: AuthFailure): void;
  /** `database.error` */
  monitorDatabaseError(error: DatabaseError): void;
  endpoint(route: string, durationMs: number, status: number, method?: string): void;
  authFailure(failure: AuthFailure): void;
  databaseError(error: DatabaseError): void;
}

export interface Monitoring {
  /** Configure where events go. Calls made before are kept (bounded) and sent once configured. */
  initialize(options?: MonitoringOptions): Promise<void>;
  /** Check the path from this application to the exporter (and Alertmanager when given). */
  testAlerts(options?: TestAlertsOptions): Promise<TestAlertsResult>;
  readonly payment: PaymentMonitoring;
  readonly widget: WidgetMonitoring;
  readonly traffic: TrafficMonitoring;
  readonly dashboard: DashboardMonitoring;
  /** Queue an already-built wire event (checked like every call). */
  record(event: Event): void;
  /**
   * Send what is queued; true when all of it was delivered within `timeoutMs` (default 5000),
   * false on timeout or when events were lost (e.g. the exporter refused the token).
   */
  flush(timeoutMs?: number): Promise<boolean>;
  /**
   * Flush for at most `timeoutMs` overall (default 2000), then stop; later calls are dropped
   * (counted). True when everything was delivered, false when the bound passed first.
   */
  close(timeoutMs?: number): Promise<boolean>;
  stats(): ClientStats;
  /** The options in use (after `initialize`), or undefined before. */
  readonly options: Readonly<MonitoringOptions> | undefined;
}

type Args = { readonly [name: string]: unknown };

/** Hooks the platform entry points give: defaults for options, and what to do on first use. */
export interface Platform {
  defaults(): MonitoringOptions;
  /** Whether a call before initialize() may start the client with the defaults (Node: the URL is in the environment). */
  autoStart?(): boolean;
  started?(monitoring: Monitoring, client: Client): void;
}

export function createMonitoring(platform: Platform, initial?: MonitoringOptions): Monitoring {
  let client: Client | null = null;
  let options: MonitoringOptions | undefined;
  const loggedInvalid = new Set<string>();
  let early: Event[] = []; // calls before initialize(): kept, bounded
  let earlyDropped = 0;
  let earlyInvalid = 0;
  const EARLY_MAX = 10_000;

  function start(given: MonitoringOptions | undefined): Client {
    options = { ...platform.defaults(), ...(given ?? {}) };
    const next = new Client(options);
    const previous = client;
    client = next;
    next.invalid += earlyInvalid;
    earlyInvalid = 0;
    for (const event of early) {
      if (options.transport === "beacon" && BEACON_TYPES.indexOf(event.type) < 0) next.invalid++;
      else next.enqueue(event);
    }
    early = [];
    next.countDropped(earlyDropped);
    earlyDropped = 0;
    if (previous !== null) void previous.close();
    platform.started?.(monitoring, next);
    return next;
  }

  function invalid(name: string, err: unknown): void {
    if (client) client.invalid++;
    else earlyInvalid++;
    if (loggedInvalid.has(name)) return;
    loggedInvalid.add(name);
    const logger = client ? client.logger : console;
    try {
      logger?.warn(`monitoring: ${name} ignored (invalid calls are counted in stats().invalid): ${String((err as Error)?.message ?? err)}`);
    } catch {
      // never into the caller
    }
  }

  function put(event: Event): void {
    if (options !== undefined && options.transport === "beacon" && BEACON_TYPES.indexOf(event.type) < 0) {
      throw new InvalidCall(`${event.type} events are not accepted by the beacon endpoint (browsers send widget events only)`);
    }
    if (client) {
      client.enqueue(event);
      return;
    }
    if (platform.autoStart?.()) {
      start(initial).enqueue(event);
      return;
    }
    if (early.length >= EARLY_MAX) {
      early.shift();
      earlyDropped++;
    }
    early.push(event);
  }

  function emit(name: string, type: EventType, args: unknown): void {
    try {
      if (typeof args !== "object" || args === null) throw new InvalidCall("expected an object of named arguments");
      const event = buildEvent(type, args as Args);
      const key = client !== null && client.transport === "beacon" ? (args as Args).key : undefined;
      if (typeof key === "string" && key && client !== null) {
        const e = event as { organization_id?: string; widget_id?: string };
        client.widgetKeys.set(`${e.organization_id}\n${e.widget_id}`, key);
      }
      put(event);
    } catch (err) {
      invalid(name, err);
    }
  }

  function endpoint(name: string, route: unknown, durationMs: unknown, status: unknown, method: unknown): void {
    try {
      const m = method === undefined ? "GET" : typeof method === "string" ? method.toUpperCase() : method;
      const r = typeof route === "string" ? normalizeRoute(route) : route;
      put(buildEvent("endpoint.request", { route: r, durationMs, status, method: m }));
    } catch (err) {
      invalid(name, err);
    }
  }

  function family<T>(group: string, methods: Array<[EventType, string[]]>): T {
    const out: { [name: string]: (args: Args) => void } = {};
    for (const [eventType, names] of methods) {
      for (const name of names) {
        const label = `${group}.${name}`;
        out[name] = (args: Args) => emit(label, eventType, args);
      }
    }
    return out as T;
  }

  const widgetLoaded = (label: string) => (load: WidgetLoad) => {
    let args: unknown = load;
    if (typeof load === "object" && load !== null && load.durationMs === undefined && load.loadTime !== undefined) {
      args = { ...load, durationMs: load.loadTime };
    }
    emit(label, "widget.loaded", args);
  };

  const monitoring: Monitoring = {
    async initialize(given?: MonitoringOptions): Promise<void> {
      try {
        start(given);
      } catch (err) {
        invalid("initialize", err);
      }
    },
    async testAlerts(given?: TestAlertsOptions): Promise<TestAlertsResult> {
      if (!client) start(initial);
      return testAlerts(options ?? {}, given);
    },
    payment: family<PaymentMonitoring>("payment", [
      ["payment.failed", ["monitorPaymentFailures", "failure"]],
      ["payment.succeeded", ["monitorPaymentSuccess", "success"]],
      ["payment.timeout", ["monitorPaymentTimeouts", "timeout"]],
      ["stripe.webhook_failed", ["monitorStripeWebhookFailures", "webhookFailed"]],
    ]),
    widget: {
      ...family<Omit<WidgetMonitoring, "monitorWidgetLoadPerformance" | "loaded">>("widget", [
        ["widget.load_error", ["monitorWidgetLoadError", "loadError"]],
        ["widget.render_error", ["monitorWidgetRenderError", "renderError"]],
        ["widget.script_error", ["monitorWidgetScriptError", "scriptError"]],
      ]),
      monitorWidgetLoadPerformance: widgetLoaded("widget.monitorWidgetLoadPerformance"),
      loaded: widgetLoaded("widget.loaded"),
    },
    traffic: family<TrafficMonitoring>("traffic", [["traffic.request", ["monitorTraffic", "request"]]]),
    dashboard: {
      ...family<Omit<DashboardMonitoring, "monitorEndpointHealth" | "endpoint">>("dashboard", [
        ["auth.failed", ["monitorAuthenticationFailure", "authFailure"]],
        ["database.error", ["monitorDatabaseError", "databaseError"]],
      ]),
      monitorEndpointHealth: (route, ms, status, method) =>
        endpoint("dashboard.monitorEndpointHealth", route, ms, status, method),
      endpoint: (route, ms, status, method) => endpoint("dashboard.endpoint", route, ms, status, method),
    },
    record(event: Event): void {
      try {
        const type = (event as { type?: unknown })?.type as EventType;
        const camel: { [name: string]: unknown } = {};
        for (const field in event) camel[field.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase())] = (event as unknown as Args)[field];
        put(buildEvent(type, camel));
      } catch (err) {
        invalid("record", err);
      }
    },
    flush(timeoutMs?: number): Promise<boolean> {
      return client ? client.flush(timeoutMs) : Promise.resolve(early.length === 0);
    },
    close(timeoutMs?: number): Promise<boolean> {
      // Never started and nothing to send: nothing to configure (nor to warn about) either.
      if (!client && early.length === 0 && !initial && !platform.autoStart?.()) return Promise.resolve(true);
      if (!client) start(initial);
      return client!.close(timeoutMs);
    },
    stats(): ClientStats {
      if (client) return client.stats();
      return { queued: early.length, sent: 0, rejected: 0, failed: 0, dropped: earlyDropped, invalid: earlyInvalid };
    },
    get options() {
      return options;
    },
  };
  if (initial) start(initial);
  return monitoring;
}
