// Building one wire event (snake_case, the exporter's contract) from a call's camelCase arguments,
// checked against the limits generated from the exporter's OpenAPI schema.
import { EVENT_FIELDS, EVENT_READERS } from "./generated/events.js";
import type { Event, EventType, FieldSpec } from "./generated/events.js";

export type { Event, EventType } from "./generated/events.js";

/** Free text is truncated below the exporter's string limit, as the Python client does. */
export const MAX_TEXT = 1000;

/** Fields whose values are free text (truncated rather than refused when long). */
const FREE_TEXT: { readonly [field: string]: true } = {
  error: true,
  url: true,
  source: true,
  path: true,
  user_agent: true,
};

/** A call whose arguments cannot form a valid event. Never thrown out of the public API. */
export class InvalidCall extends Error {
  constructor(message: string) {
    // Counted and logged once, never thrown out: a stack trace would only cost time.
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(message);
    Error.stackTraceLimit = limit;
  }
}
InvalidCall.prototype.name = "InvalidCall";

/** The text of an error-ish value: an Error's message (or its name), or the string itself. */
export function errorText(value: unknown): unknown {
  if (value instanceof Error) return value.message || value.name;
  return value;
}

function show(value: unknown): string {
  try {
    const text = typeof value === "string" ? JSON.stringify(value) : String(value);
    return text.length > 60 ? `${text.slice(0, 60)}…` : text;
  } catch {
    return typeof value;
  }
}

function check(step: Step, value: unknown): unknown {
  const field = step.field;
  switch (step.kind) {
    case "string": {
      if (typeof value !== "string") throw new InvalidCall(`${field} must be a string, got ${show(value)}`);
      if (step.required && value === "") throw new InvalidCall(`${field} must be a non-empty string`);
      if (step.free) return value.length > MAX_TEXT ? value.slice(0, MAX_TEXT) : value;
      if (value.length < step.minLength) {
        throw new InvalidCall(`${field} must be at least ${step.minLength} characters, got ${show(value)}`);
      }
      if (value.length > step.maxLength) throw new InvalidCall(`${field} must be at most ${step.maxLength} characters`);
      return value;
    }
    case "integer":
    case "number": {
      if (typeof value !== "number" || !Number.isFinite(value)) {
        throw new InvalidCall(`${field} must be a finite number, got ${show(value)}`);
      }
      if (step.kind === "integer" && !Number.isInteger(value)) {
        throw new InvalidCall(`${field} must be a whole number, got ${value}`);
      }
      if (value < step.minimum || value > step.maximum) {
        throw new InvalidCall(`${field} must be between ${step.minimum} and ${step.maximum}, got ${value}`);
      }
      return value;
    }
    default:
      if (typeof value !== step.kind) throw new InvalidCall(`${field} must be a ${step.kind}, got ${show(value)}`);
      return value;
  }
}

/** One field of one event type, every property present so that the checks stay monomorphic. */
interface Step {
  readonly field: string;
  readonly kind: FieldSpec["kind"];
  readonly required: boolean;
  readonly free: boolean;
  readonly minLength: number;
  readonly maxLength: number;
  readonly minimum: number;
  readonly maximum: number;
}

interface Plan {
  readonly read: (args: unknown) => { [field: string]: unknown };
  readonly steps: Step[];
}

const plans: { [type: string]: Plan } = Object.create(null);

/** Per type, once: how to read a call's arguments and check each wire field. */
function plan(type: EventType): Plan {
  let found = plans[type];
  if (found === undefined) {
    if (typeof type !== "string" || !Object.prototype.hasOwnProperty.call(EVENT_FIELDS, type)) {
      throw new InvalidCall(`unknown event type ${show(type)}`);
    }
    const steps: Step[] = [];
    const specs = EVENT_FIELDS[type];
    for (const field in specs) {
      const spec = specs[field]!;
      steps.push({
        field,
        kind: spec.kind,
        required: spec.required,
        free: FREE_TEXT[field] === true,
        minLength: spec.minLength ?? 0,
        maxLength: spec.maxLength ?? Infinity,
        minimum: spec.minimum ?? -Infinity,
        maximum: spec.maximum ?? Infinity,
      });
    }
    found = { read: EVENT_READERS[type], steps };
    plans[type] = found;
  }
  return found;
}

/**
 * The event of `type` from a call's camelCase arguments (undefined and null ones left out of the
 * JSON), stamped with the current time unless a `timestamp` (ms or Date) is given. Throws
 * InvalidCall naming the first field that breaks the contract.
 */
export function buildEvent(type: EventType, fields: { readonly [field: string]: unknown }): Event {
  const { read, steps } = plan(type);
  const event = read(fields);
  for (let i = 0; i < steps.length; i++) {
    const step = steps[i]!;
    let value = event[step.field];
    if (value === undefined || value === null) {
      if (step.required) throw new InvalidCall(`${step.field} is required`);
      event[step.field] = undefined; // left out by JSON.stringify, as the Python client leaves out None
      continue;
    }
    if (step.field === "error") value = errorText(value);
    else if (step.field === "timestamp" && value instanceof Date) value = value.getTime();
    event[step.field] = check(step, value);
  }
  if (event.timestamp === undefined) event.timestamp = Date.now();
  return event as unknown as Event;
}
