// Express/Connect middleware: reports every request as `endpoint.request` with the matched route's
// TEMPLATE (`/api/donations/:id`, never the raw path), method, status and duration.
//
//   app.use(expressMiddleware(monitoring));   // first, before the routers
import type { Monitoring } from "./monitoring.js";
import { normalizeRoute } from "./routes.js";

/** Requests that match no route are reported under this name (as the Python middleware does). */
export const UNMATCHED = "unmatched";
/** The client went away before the response finished (nginx's convention). */
export const CLIENT_CLOSED = 499;

interface RequestLike {
  method?: string;
  baseUrl?: string;
  route?: { path?: unknown };
}
interface ResponseLike {
  statusCode: number;
  writableFinished?: boolean;
  once(event: "finish" | "close", listener: () => void): unknown;
}

export interface MiddlewareOptions {
  /** Route templates not to report (health checks, `/metrics`). */
  ignoreRoutes?: Iterable<string>;
  /**
   * The route template of a request when the router is not Express's (plain Connect, a custom
   * router): called when the response finishes; undefined falls back to Express's `req.route`.
   */
  routeOf?: (req: any) => string | undefined;
}

/** The template Express matched for this request (`req.baseUrl` + `req.route.path`), or `unmatched`. */
export function routeTemplate(req: RequestLike): string {
  return templateOf(req.baseUrl, req.route?.path) ?? UNMATCHED;
}

function templateOf(baseUrl: unknown, path: unknown): string | undefined {
  const base = typeof baseUrl === "string" ? baseUrl : "";
  if (typeof path === "string") return `${base}${path}` || "/";
  if (path instanceof RegExp) return `${base}${String(path)}`;
  if (Array.isArray(path) && typeof path[0] === "string") return `${base}${path[0]}`;
  return undefined;
}

/**
 * Remembers the template when Express sets `req.route`: by the time the response finishes, a
 * router that passed an error on has already restored `req.baseUrl`, losing its mount path.
 */
function watchRoute(req: RequestLike): () => string {
  let route = req.route;
  let template: string | undefined;
  try {
    Object.defineProperty(req, "route", {
      configurable: true,
      enumerable: true,
      get: () => route,
      set: (value: RequestLike["route"]) => {
        route = value;
        template = templateOf(req.baseUrl, value?.path) ?? template;
      },
    });
  } catch {
    // a frozen request: fall back to what is there at the end
  }
  return () => template ?? routeTemplate(req);
}

/** Express/Connect middleware reporting each request once, when its response finishes or the client leaves. */
export function expressMiddleware(
  monitoring: Pick<Monitoring, "dashboard">,
  options: MiddlewareOptions = {},
): (req: RequestLike, res: ResponseLike, next: (err?: unknown) => void) => void {
  const ignored = new Set([...(options.ignoreRoutes ?? [])].map(normalizeRoute));
  return function passitonMonitoring(req, res, next) {
    const started = performance.now();
    const template = watchRoute(req);
    let reported = false;
    const report = (closed: boolean) => {
      if (reported) return;
      reported = true;
      try {
        const route = normalizeRoute((options.routeOf && options.routeOf(req)) || template());
        if (ignored.has(route)) return;
        const status = closed && !res.writableFinished ? CLIENT_CLOSED : res.statusCode;
        monitoring.dashboard.monitorEndpointHealth(route, performance.now() - started, status, req.method ?? "GET");
      } catch {
        // never in the way of the response
      }
    };
    try {
      res.once("finish", () => report(false));
      res.once("close", () => report(true));
    } catch {
      // a response object without events: nothing to report on
    }
    next();
  };
}
