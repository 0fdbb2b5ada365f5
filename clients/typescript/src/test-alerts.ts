// monitoring.testAlerts(): what an application can check of the alert path from where it runs —
// the exporter is up, it accepts this client's token, and (given Alertmanager's URL) a test alert
// reaches Alertmanager, which routes it to the bridge and its channels as `test-alerts` does.
import type { ClientOptions } from "./client.js";

export interface TestAlertsOptions {
  /** Alertmanager's URL: when given, a `PassItOnTestAlert` is posted there and read back. */
  alertmanagerUrl?: string;
  /** The test alert's severity, which picks its channels (default `low`: e-mail). */
  severity?: "critical" | "high" | "medium" | "low";
  /** How long the test alert stays firing, in ms (default 5 minutes). */
  durationMs?: number;
  /** Milliseconds per request (default 5000). */
  timeout?: number;
}

export interface TestAlertsCheck {
  name: "exporter" | "ingest" | "alertmanager";
  ok: boolean;
  detail: string;
}

export interface TestAlertsResult {
  /** true when every check passed */
  ok: boolean;
  checks: TestAlertsCheck[];
}

async function request(url: string, init: RequestInit, timeout: number): Promise<Response> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeout);
  try {
    return await fetch(url, { ...init, signal: controller.signal });
  } finally {
    clearTimeout(timer);
  }
}

async function attempt(
  name: TestAlertsCheck["name"],
  run: () => Promise<[boolean, string]>,
): Promise<TestAlertsCheck> {
  try {
    const [ok, detail] = await run();
    return { name, ok, detail };
  } catch (err) {
    return { name, ok: false, detail: String((err as Error)?.message ?? err) };
  }
}

/** Runs the checks; never rejects. */
export async function testAlerts(client: ClientOptions, given: TestAlertsOptions = {}): Promise<TestAlertsResult> {
  const url = String(client.url ?? "").replace(/\/+$/, "");
  const timeout = given.timeout ?? 5000;
  const checks: TestAlertsCheck[] = [];
  checks.push(
    await attempt("exporter", async () => {
      if (!url) return [false, "no exporter URL: call monitoring.initialize({ url, token })"];
      const r = await request(`${url}/-/healthy`, {}, timeout);
      return [r.ok, `GET ${url}/-/healthy answered ${r.status}`];
    }),
  );
  if ((client.transport ?? "events") === "events" && url) {
    checks.push(
      await attempt("ingest", async () => {
        const headers: Record<string, string> = { "Content-Type": "application/json" };
        if (client.token) headers.Authorization = `Bearer ${client.token}`;
        // An empty batch proves the token without changing any metric.
        const r = await request(`${url}/v1/events`, { method: "POST", headers, body: "[]" }, timeout);
        if (r.status === 401) return [false, "the exporter refused the token (EXPORTER_INGEST_TOKEN)"];
        return [r.status === 202, `POST ${url}/v1/events answered ${r.status}`];
      }),
    );
  }
  if (given.alertmanagerUrl) {
    const am = given.alertmanagerUrl.replace(/\/+$/, "");
    checks.push(
      await attempt("alertmanager", async () => {
        const now = Date.now();
        const id = `${now.toString(36)}${Math.random().toString(36).slice(2, 8)}`;
        const labels = {
          alertname: "PassItOnTestAlert",
          severity: given.severity ?? "low",
          category: "system",
          source: "@passiton/monitoring",
          test_id: id,
        };
        const alert = {
          labels,
          annotations: {
            summary: "Test alert from the application's monitoring client",
            description: "Sent by monitoring.testAlerts(); no action needed.",
          },
          startsAt: new Date(now).toISOString(),
          endsAt: new Date(now + (given.durationMs ?? 300_000)).toISOString(),
        };
        const posted = await request(
          `${am}/api/v2/alerts`,
          { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify([alert]) },
          timeout,
        );
        if (!posted.ok) return [false, `POST ${am}/api/v2/alerts answered ${posted.status}`];
        const filter = encodeURIComponent(`test_id="${id}"`);
        const listed = await request(`${am}/api/v2/alerts?filter=${filter}`, {}, timeout);
        const alerts = listed.ok ? ((await listed.json()) as unknown[]) : [];
        const found = Array.isArray(alerts) && alerts.length > 0;
        return [
          found,
          found
            ? `Alertmanager holds PassItOnTestAlert (test_id=${id}, severity ${labels.severity}); it routes it to the bridge`
            : `Alertmanager did not list the test alert (GET answered ${listed.status})`,
        ];
      }),
    );
  }
  return { ok: checks.every((c) => c.ok), checks };
}
