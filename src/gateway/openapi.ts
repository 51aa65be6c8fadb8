/**
 * `GET /api/openapi.json`: docs/openapi.json as it ships with this build (scripts/release.sh packs
 * it), read once when the gateway starts and served with a strong ETag, so a client revalidates
 * cheaply (304) and a new release is seen at once.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import { PROJECT_ROOT } from "../config.js";

export const OPENAPI_PATH = path.join(PROJECT_ROOT, "docs", "openapi.json");

/** Shared caches and browsers may keep it for 5 minutes, then revalidate with the ETag. */
export const OPENAPI_CACHE_CONTROL = "public, max-age=300";

export interface OpenApiDocument {
  /** The file's text, as it is (JSON). */
  body: string;
  /** `"sha256-…"` of the text. */
  etag: string;
}

/** Reads and checks the document; throws when it is missing or not JSON. */
export function loadOpenApi(file = OPENAPI_PATH): OpenApiDocument {
  const body = readFileSync(file, "utf8");
  const doc = JSON.parse(body) as { openapi?: unknown };
  if (typeof doc.openapi !== "string") throw new Error(`${file} is not an OpenAPI document (no "openapi" field)`);
  return { body, etag: `"sha256-${createHash("sha256").update(body).digest("base64url")}"` };
}
