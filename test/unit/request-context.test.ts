/**
 * src/infra/request-context.ts and src/gateway/request-id.ts: JSON log lines name the request they
 * were written for — in a real in-process broker with NoChat's logger formatter and middleware —
 * and which incoming request ids the gateway takes.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ServiceBroker, type Context } from "moleculer";
import { incomingRequestId } from "../../src/gateway/request-id.js";
import {
  currentRequest,
  inRequest,
  jsonLogFormatter,
  RequestContextMiddleware,
} from "../../src/infra/request-context.js";
import { sleep } from "../support/wait.js";

type Line = Record<string, unknown>;

const printArgs = (args: unknown[]): unknown[] => args.map((a) => (typeof a === "object" ? JSON.stringify(a) : a));
const format = (args: unknown[], bindings = { nodeID: "n1", ns: "nochat", mod: "chat", svc: "chat" }): Line =>
  JSON.parse(jsonLogFormatter("info", args, bindings, { printArgs })[0]) as Line;

describe("jsonLogFormatter", () => {
  it("outside a request: Moleculer's json line, nothing added", () => {
    const line = format(["hello", 42]);
    assert.deepEqual(Object.keys(line), ["ts", "level", "msg", "nodeID", "ns", "mod", "svc"]);
    assert.equal(line.msg, "hello 42");
    assert.equal(line.level, "info");
    assert.equal(typeof line.ts, "number");
  });

  it("inside a request: its requestId and userId; the user is read when the line is written", () => {
    const meta: { user?: { id: number } | null } = {};
    inRequest({ requestID: "req-1", meta }, () => {
      assert.deepEqual(currentRequest()?.requestID, "req-1");
      const anonymous = format(["before login"]);
      assert.equal(anonymous.requestId, "req-1");
      assert.equal(anonymous.userId, null, "anonymous: userId null, but there");
      meta.user = { id: 7 };
      const line = format(["after login"]);
      assert.equal(line.requestId, "req-1");
      assert.equal(line.userId, 7);
      assert.equal(line.svc, "chat", "a service logger keeps its own svc");
    });
    assert.equal(currentRequest(), undefined);
  });

  it("a logger that is not a service's gets the request's service as svc", () => {
    inRequest({ requestID: "req-2", service: { name: "users" } }, () => {
      const line = format(["span row"], { nodeID: "n1", ns: "nochat", mod: "tracer" } as never);
      assert.equal(line.svc, "users");
      assert.equal(line.mod, "tracer");
      assert.equal(line.requestId, "req-2");
    });
  });
});

describe("RequestContextMiddleware in a broker with the JSON formatter", () => {
  const lines: Line[] = [];
  const original = console.log;
  let broker: ServiceBroker;

  before(async () => {
    broker = new ServiceBroker({
      nodeID: "unit-node",
      logger: { type: "Console", options: { formatter: jsonLogFormatter as never, colors: false } },
      logLevel: "info",
      middlewares: [RequestContextMiddleware],
    });
    broker.createService({
      name: "front",
      actions: {
        async hop(ctx: Context) {
          this.logger.info("front working");
          // Another action and an event under the same request, after an await.
          await sleep(5);
          await ctx.emit("thing.happened", {});
          return ctx.call("back.work");
        },
      },
    });
    broker.createService({
      name: "back",
      actions: {
        async work(ctx: Context) {
          await Promise.resolve();
          this.logger.info("back working");
          return ctx.requestID;
        },
      },
      events: {
        "thing.happened"(this: { logger: { info(msg: string): void } }) {
          this.logger.info("back heard it");
        },
      },
    });
    await broker.start();
    console.log = (...args: unknown[]) => {
      const text = args.join(" ");
      if (text.startsWith("{")) lines.push(JSON.parse(text) as Line);
      else original(...args);
    };
  });
  after(async () => {
    console.log = original;
    await broker.stop();
  });

  it("every line an action or event handler writes names the request, its user, node and service", async () => {
    const result = await broker.call("front.hop", {}, { requestID: "rid-42", meta: { user: { id: 9 } } });
    assert.equal(result, "rid-42");
    await sleep(20);
    broker.getLogger("front").info("between requests");
    console.log = original;
    const ours = lines.filter((l) => /working|heard/.test(String(l.msg)));
    assert.deepEqual(ours.map((l) => l.msg).sort(), ["back heard it", "back working", "front working"]);
    for (const line of ours) {
      assert.equal(line.requestId, "rid-42", JSON.stringify(line));
      assert.equal(line.userId, 9, JSON.stringify(line));
      assert.equal(line.nodeID, "unit-node");
      assert.ok(line.svc === "front" || line.svc === "back", JSON.stringify(line));
    }
    // A line outside any request is Moleculer's, without the fields.
    const outside = lines.find((l) => l.msg === "between requests");
    assert.ok(outside);
    assert.equal("requestId" in outside, false, JSON.stringify(outside));
    assert.equal("userId" in outside, false, JSON.stringify(outside));
  });
});

describe("incomingRequestId", () => {
  it("takes a sane X-Request-ID, else a sane X-Correlation-ID", () => {
    assert.equal(incomingRequestId({ "x-request-id": "abc-123_x.Y" }), "abc-123_x.Y");
    assert.equal(incomingRequestId({ "x-correlation-id": "corr-1" }), "corr-1");
    assert.equal(incomingRequestId({ "x-request-id": "bad id", "x-correlation-id": "corr-2" }), "corr-2");
    assert.equal(incomingRequestId({ "x-request-id": "a".repeat(64) }), "a".repeat(64));
  });

  it("refuses anything else: Moleculer then makes a fresh id", () => {
    for (const bad of ["", "a".repeat(65), "has space", 'quote"', "new\nline", "ünï", "a/b", "{}"]) {
      assert.equal(incomingRequestId({ "x-request-id": bad }), undefined, JSON.stringify(bad));
    }
    assert.equal(incomingRequestId({}), undefined);
  });
});
