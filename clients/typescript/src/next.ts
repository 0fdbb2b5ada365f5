// Next.js (App Router) route handlers: wrap each exported method with the file's route template.
//
//   // app/api/donations/[id]/route.ts
//   export const POST = withMonitoring(monitoring, "/api/donations/[id]", async (req, ctx) => { ... });
//
// Reports `endpoint.request` with that template, the request's method, the response's status
// (500 when the handler throws, which is rethrown) and the duration. The template is written the
// Express way, one label value for one route: `/api/donations/[id]` is reported as
// `/api/donations/:id`, `[...slug]` and `[[...slug]]` as `*`, `(group)` folders left out.
import type { Monitoring } from "./monitoring.js";
import { normalizeRoute } from "./routes.js";

export function withMonitoring<Args extends unknown[], R extends Response>(
  monitoring: Pick<Monitoring, "dashboard">,
  route: string,
  handler: (request: Request, ...rest: Args) => R | Promise<R>,
): (request: Request, ...rest: Args) => Promise<R> {
  const template = normalizeRoute(route);
  return async function monitored(request: Request, ...rest: Args): Promise<R> {
    const started = performance.now();
    let status = 500;
    try {
      const response = await handler(request, ...rest);
      status = typeof response?.status === "number" ? response.status : 200;
      return response;
    } finally {
      try {
        monitoring.dashboard.monitorEndpointHealth(template, performance.now() - started, status, request?.method ?? "GET");
      } catch {
        // never in the way of the response
      }
    }
  };
}
