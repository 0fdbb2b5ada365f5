// One label value per route, whichever framework named it: Next.js file-system names
// (`/api/donations/[id]`, `[...slug]`, `[[...slug]]`, `(group)` folders) and Express 5's named
// wildcards (`*splat`, `{/*splat}`) are written the Express 4 way (`/api/donations/:id`, `*`).
// The Python client's aiohttp middleware writes `{id}` the same way.

/** The route template in the one form the exporter's `route` label uses: `:param`, `*` for a catch-all. */
export function normalizeRoute(route: string): string {
  if (typeof route !== "string") return route;
  let out = route
    .replace(/\[\[\.\.\.[^\]/]*\]\]/g, "*") // Next.js optional catch-all
    .replace(/\[\.\.\.[^\]/]*\]/g, "*") // Next.js catch-all
    .replace(/\[([^\]/]+)\]/g, ":$1") // Next.js dynamic segment
    .replace(/\{\/\*[^}/]*\}/g, "/*") // Express 5 optional wildcard
    .replace(/\*[A-Za-z_$][\w$]*/g, "*"); // Express 5 named wildcard
  // Next.js route groups `(name)` are folders only, never part of the URL.
  out = out.replace(/\/\([^)/]+\)(?=\/|$)/g, "");
  return out === "" && route !== "" ? "/" : out;
}
