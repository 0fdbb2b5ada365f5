// The original design's integration snippets, verbatim after the one import, must type-check
// against the package (`make lint` compiles this file with tsconfig.test.json).
import express from "express";
import { monitoring } from "../src/index.js";

declare const window: { location: { href: string } };
declare const error: Error;
declare function processPayment(data: unknown): Promise<void>;
declare const paymentData: { organizationId: string; amount: number; currency: string };
const app = express();

export async function gettingStarted(): Promise<void> {
  await monitoring.initialize();
  await monitoring.testAlerts();
}

export function frontend(): void {
  // Monitor widget errors
  monitoring.widget.monitorWidgetLoadError({
    organizationId: 'org-123',
    widgetId: 'widget-456',
    url: window.location.href,
    error: error.message,
  });
}

export function api(): void {
  // Monitor API endpoints
  app.use(async (req, res, next) => {
    const start = Date.now();

    res.on('finish', () => {
      const responseTime = Date.now() - start;
      monitoring.dashboard.monitorEndpointHealth(
        req.path,
        responseTime,
        res.statusCode
      );
    });

    next();
  });
}

export async function payment(): Promise<void> {
  // Monitor payment failures
  try {
    await processPayment(paymentData);
  } catch (error) {
    await monitoring.payment.monitorPaymentFailures({
      organizationId: paymentData.organizationId,
      amount: paymentData.amount,
      currency: paymentData.currency,
      error: error.message,
    });
    throw error;
  }
}
