/**
 * docs/openapi.json against src/gateway/routes.ts: the same routes, success statuses and auth,
 * and every $ref resolvable. Which operations are public comes from the code, not from a list
 * kept here: the gateway's routes (their aliases, and whether they authorize) and each action's
 * guard as its service declares it (`auth: "required"` or `roles`, src/infra/permissions.ts).
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import type { ApiRouteSchema } from "moleculer-web";
import ApiService from "../../services/api.service.js";
import AuthService from "../../services/auth.service.js";
import ChatService from "../../services/chat.service.js";
import LogService from "../../services/log.service.js";
import NotifyService from "../../services/notify.service.js";
import UsersService from "../../services/users.service.js";
import { REST_ROUTES } from "../../src/gateway/routes.js";
import type { GuardedAction } from "../../src/infra/permissions.js";

const DOC_PATH = path.resolve(__dirname, "..", "..", "docs", "openapi.json");
const SERVICES = [ApiService, AuthService, ChatService, LogService, NotifyService, UsersService];

/** An action's guard as its service's schema declares it. */
function guardOf(action: string): GuardedAction {
  const [serviceName, actionName] = action.split(".");
  const service = SERVICES.find((s) => s.name === serviceName);
  assert.ok(service, `${action}: no service "${serviceName}"`);
  const schema = (service.actions as Record<string, unknown> | undefined)?.[actionName];
  assert.ok(schema && typeof schema === "object", `${action}: the ${serviceName} service declares no such action`);
  return schema as GuardedAction;
}

/** What the gateway serves: each alias of each route, as "METHOD /path", and who may call it. */
const served = ((ApiService.settings?.routes ?? []) as ApiRouteSchema[]).flatMap((route) =>
  Object.entries(route.aliases ?? {}).map(([alias, action]) => {
    const [method, aliasPath] = alias.split(" ");
    const { auth, roles } = guardOf(String(action));
    // A guarded action behind a route that authorizes needs a principal, i.e. a bearer token.
    const guarded = Boolean(route.authorization) && (auth === "required" || (roles?.length ?? 0) > 0);
    return { key: `${method} ${route.path}/${aliasPath}`.replace(/:([A-Za-z0-9_]+)/g, "{$1}"), action, guarded };
  }),
);
const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"] as const;

interface Operation {
  security?: Record<string, string[]>[];
  parameters?: { $ref?: string; name?: string; in?: string }[];
  responses?: Record<string, unknown>;
  "x-action"?: string;
}

interface OpenApiDoc {
  openapi: string;
  security?: Record<string, string[]>[];
  paths: Record<string, Partial<Record<(typeof METHODS)[number], Operation>>>;
  components?: { securitySchemes?: Record<string, { type?: string; scheme?: string; bearerFormat?: string }> };
}

const doc = JSON.parse(readFileSync(DOC_PATH, "utf8")) as OpenApiDoc;

/** "POST /rooms/:roomId/messages" → "POST /api/rooms/{roomId}/messages" */
function openApiKey(routeKey: string): string {
  const [method, routePath] = routeKey.split(" ");
  return `${method} /api${routePath.replace(/:([A-Za-z0-9_]+)/g, "{$1}")}`;
}

const routes = Object.entries(REST_ROUTES).map(([key, route]) => ({ key: openApiKey(key), route }));

function operations(): { key: string; op: Operation }[] {
  return Object.entries(doc.paths).flatMap(([p, item]) =>
    METHODS.flatMap((m) => {
      const op = item[m];
      return op ? [{ key: `${m.toUpperCase()} ${p}`, op }] : [];
    }),
  );
}

function operationOf(key: string): Operation {
  const [method, p] = key.split(" ");
  const op = doc.paths[p]?.[method.toLowerCase() as (typeof METHODS)[number]];
  assert.ok(op, `${key} is not documented`);
  return op;
}

/** Resolves a local JSON pointer ("#/components/schemas/User"), or undefined. */
function resolvePointer(root: unknown, ref: string): unknown {
  if (ref === "#") return root;
  if (!ref.startsWith("#/")) return undefined;
  let node: unknown = root;
  for (const raw of ref.slice(2).split("/")) {
    const token = decodeURIComponent(raw).replace(/~1/g, "/").replace(/~0/g, "~");
    if (node === null || typeof node !== "object" || !Object.hasOwn(node, token)) return undefined;
    node = (node as Record<string, unknown>)[token];
  }
  return node;
}

function collectRefs(node: unknown, at: string, out: { ref: string; at: string }[]): void {
  if (Array.isArray(node)) {
    node.forEach((item, i) => collectRefs(item, `${at}/${i}`, out));
  } else if (node !== null && typeof node === "object") {
    for (const [key, value] of Object.entries(node)) {
      if (key === "$ref" && typeof value === "string") out.push({ ref: value, at });
      else collectRefs(value, `${at}/${key}`, out);
    }
  }
}

describe("docs/openapi.json", () => {
  it("is OpenAPI 3.1.0", () => {
    assert.equal(doc.openapi, "3.1.0");
  });

  it("documents exactly the routes of REST_ROUTES (METHOD and /api path)", () => {
    const documented = operations()
      .map((o) => o.key)
      .sort();
    const expected = routes.map((r) => r.key).sort();
    assert.ok(expected.length > 0);
    assert.deepEqual(documented, expected);
  });

  it("names each operation's action as REST_ROUTES does (x-action)", () => {
    for (const { key, route } of routes) assert.equal(operationOf(key)["x-action"], route.action, key);
  });

  it("documents the success status of each route that sets one", () => {
    const withStatus = routes.filter((r) => r.route.status !== undefined);
    assert.ok(withStatus.length > 0);
    for (const { key, route } of withStatus) {
      const responses = operationOf(key).responses ?? {};
      assert.ok(String(route.status) in responses, `${key} does not document ${route.status}`);
    }
  });

  it("the gateway serves exactly the REST_ROUTES, each by an action its service declares", () => {
    assert.deepEqual(served.map((s) => [s.key, s.action]).sort(), routes.map((r) => [r.key, r.route.action]).sort());
  });

  it("requires a bearer token on every guarded operation and none on the public ones", () => {
    const scheme = doc.components?.securitySchemes?.bearerAuth;
    assert.equal(scheme?.type, "http");
    assert.equal(scheme?.scheme, "bearer");
    assert.equal(scheme?.bearerFormat, "JWT");
    assert.ok(served.some((s) => s.guarded) && served.some((s) => !s.guarded), "both kinds are served");
    for (const { key, action, guarded } of served) {
      const security = operationOf(key).security ?? doc.security ?? [];
      if (!guarded) {
        assert.ok(
          security.every((requirement) => Object.keys(requirement).length === 0),
          `${key} (${action}) is public but documents a security requirement`,
        );
      } else {
        assert.ok(security.length > 0, `${key} (${action}) has no security requirement`);
        assert.ok(
          security.every((requirement) => "bearerAuth" in requirement),
          `${key} (${action}) must require bearerAuth`,
        );
      }
    }
  });

  it("declares each path template's parameters as path parameters", () => {
    for (const { key, op } of operations()) {
      const names = [...key.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]).sort();
      const declared = (op.parameters ?? [])
        .map((p) => (p.$ref ? (resolvePointer(doc, p.$ref) as { name?: string; in?: string }) : p))
        .filter((p) => p?.in === "path")
        .map((p) => p.name)
        .sort();
      assert.deepEqual(declared, names, key);
    }
  });

  it("resolves every $ref", () => {
    const refs: { ref: string; at: string }[] = [];
    collectRefs(doc, "#", refs);
    assert.ok(refs.length > 0);
    for (const { ref, at } of refs) {
      assert.notEqual(resolvePointer(doc, ref), undefined, `${ref} (at ${at}) does not resolve`);
    }
  });
});
