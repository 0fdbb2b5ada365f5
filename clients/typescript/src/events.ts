// Building one wire event (snake_case, the exporter's contract) from a call's camelCase arguments,
// checked against the limits generated from the exporter's OpenAPI schema.
import { EVENT_FIELDS } from "./generated/events.js";
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
  override name = "InvalidCall";
}

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

function check(field: string, spec: FieldSpec, value: unknown): unknown {
  switch (spec.kind) {
    case "string": {
      if (typeof value !== "string") throw new InvalidCall(`${field} must be a string, got ${show(value)}`);
      if (spec.required && value === "") throw new InvalidCall(`${field} must be a non-empty string`);
      if (FREE_TEXT[field] === true) return value.length > MAX_TEXT ? value.slice(0, MAX_TEXT) : value;
      if (spec.minLength !== undefined && value.length < spec.minLength) {
        throw new InvalidCall(`${field} must be at least ${spec.minLength} characters, got ${show(value)}`);
      }
      if (spec.maxLength !== undefined && value.length > spec.maxLength) {
        throw new InvalidCall(`${field} must be at most ${spec.maxLength} characters`);
      }
      return value;
    }
    case "integer":
    case "number": {
      if (typeof value !== "number" || !Number.isFinite(value)) {
        throw new InvalidCall(`${field} must be a finite number, got ${show(value)}`);
      }
      if (spec.kind === "integer" && !Number.isInteger(value)) {
        throw new InvalidCall(`${field} must be a whole number, got ${value}`);
      }
      if ((spec.minimum !== undefined && value < spec.minimum) || (spec.maximum !== undefined && value > spec.maximum)) {
        throw new InvalidCall(`${field} must be between ${spec.minimum ?? "-∞"} and ${spec.maximum ?? "∞"}, got ${value}`);
      }
      return value;
    }
    default:
      if (typeof value !== spec.kind) throw new InvalidCall(`${field} must be a ${spec.kind}, got ${show(value)}`);
      return value;
  }
}

const camelCache: { [type: string]: { [field: string]: string } } = {};

/** Wire field name -> the camelCase name a call passes it by (`organization_id` -> `organizationId`). */
function camelNames(type: EventType): { [field: string]: string } {
  let names = camelCache[type];
  if (names === undefined) {
    names = {};
    for (const field in EVENT_FIELDS[type]) {
      names[field] = field.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
    }
    camelCache[type] = names;
  }
  return names;
}

/**
 * The event of `type` from a call's camelCase arguments (undefined and null ones left out), stamped with
 * the current time unless a `timestamp` (ms or Date) is given. Throws InvalidCall naming the first field that breaks the contract.
 */
export function buildEvent(type: EventType, fields: { readonly [field: string]: unknown }): Event {
  const specs = EVENT_FIELDS[type];
  if (typeof type !== "string" || !Object.prototype.hasOwnProperty.call(EVENT_FIELDS, type)) {
    throw new InvalidCall(`unknown event type ${show(type)}`);
  }
  const names = camelNames(type);
  const event: { [field: string]: unknown } = { type };
  for (const field in specs) {
    const spec = specs[field]!;
    let value = fields[names[field]!];
    if (field === "error") value = errorText(value);
    else if (field === "timestamp" && value instanceof Date) value = value.getTime();
    if (value === undefined || value === null) {
      if (spec.required) throw new InvalidCall(`${field} is required`);
      continue;
    }
    event[field] = check(field, spec, value);
  }
  if (event.timestamp === undefined) event.timestamp = Date.now();
  return event as unknown as Event;
}
