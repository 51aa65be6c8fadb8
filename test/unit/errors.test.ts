/**
 * src/errors.ts: whatever is thrown → the public error body (code, status, message, fields).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Errors, ServiceBroker } from "moleculer";
import ApiGateway from "moleculer-web";
import { AppError, ERROR_STATUS, toEnvelope, toErrorBody } from "../../src/errors.js";
import { rules } from "../../src/contracts/limits.js";

describe("toErrorBody", () => {
  describe("AppError", () => {
    const cases: [AppError, keyof typeof ERROR_STATUS, number][] = [
      [AppError.badRequest("Bad thing"), "BAD_REQUEST", 400],
      [AppError.unauthorized(), "UNAUTHORIZED", 401],
      [AppError.forbidden(), "FORBIDDEN", 403],
      [AppError.notFound("Room"), "NOT_FOUND", 404],
      [AppError.conflict("Username is already taken"), "CONFLICT", 409],
      [AppError.tooLarge("Too big"), "PAYLOAD_TOO_LARGE", 413],
      [AppError.rateLimited(2.2), "RATE_LIMITED", 429],
      [new AppError("UNAVAILABLE", "Down"), "UNAVAILABLE", 503],
    ];
    for (const [err, code, status] of cases) {
      it(`${code} → ${status} with its message`, () => {
        const res = toErrorBody(err, "req-1");
        assert.equal(res.status, status);
        assert.equal(res.body.code, code);
        assert.equal(res.body.message, err.message);
        assert.equal(res.internal, false);
        assert.equal(res.body.requestId, undefined, "only INTERNAL errors carry the request id");
        // AppError itself carries the contract: Moleculer `code` = status, `type` = contract code.
        assert.equal(err.code, status);
        assert.equal(err.type, code);
      });
    }

    it("messages of the factories", () => {
      assert.equal(toErrorBody(AppError.notFound("Room")).body.message, "Room not found");
      assert.equal(toErrorBody(AppError.unauthorized()).body.message, "Authentication required");
    });

    it("RATE_LIMITED carries retryAfter (whole seconds, at least 1)", () => {
      assert.equal(toErrorBody(AppError.rateLimited(2.2)).body.retryAfter, 3);
      assert.equal(toErrorBody(AppError.rateLimited(0)).body.retryAfter, 1);
      assert.deepEqual(toErrorBody(AppError.rateLimited(30, "Slow down")).body, {
        code: "RATE_LIMITED",
        message: "Slow down",
        retryAfter: 30,
      });
    });

    it("AppError.validation → 422 with the fields", () => {
      const err = AppError.validation([
        { field: "username", message: "is taken" },
        { field: "password", message: "is too short" },
      ]);
      const { status, body } = toErrorBody(err);
      assert.equal(status, 422);
      assert.equal(body.code, "VALIDATION_ERROR");
      assert.deepEqual(body.fields, [
        { field: "username", message: "is taken" },
        { field: "password", message: "is too short" },
      ]);
    });

    it("an INTERNAL AppError hides its message and gets the request id", () => {
      const res = toErrorBody(new AppError("INTERNAL", "db password is hunter2"), "req-9");
      assert.deepEqual(res, {
        status: 500,
        body: { code: "INTERNAL", message: "Internal error", requestId: "req-9" },
        internal: true,
      });
    });

    it("survives serialisation as it would cross the bus (plain object with name/type/code/data)", () => {
      const err = AppError.conflict("Username is already taken");
      const plain = JSON.parse(JSON.stringify({ ...err, name: err.name, message: err.message }));
      assert.deepEqual(toErrorBody(plain).body, { code: "CONFLICT", message: "Username is already taken" });
    });
  });

  describe("Moleculer's ValidationError", () => {
    it("constructed → 422 VALIDATION_ERROR with { field, message } only", () => {
      const err = new Errors.ValidationError("Parameters validation error!", "VALIDATION_ERROR", [
        { field: "username", message: "The 'username' field is required.", type: "required", actual: undefined },
      ]);
      const { status, body, internal } = toErrorBody(err);
      assert.equal(status, 422);
      assert.equal(internal, false);
      assert.equal(body.code, "VALIDATION_ERROR");
      assert.deepEqual(body.fields, [{ field: "username", message: "The 'username' field is required." }]);
      assert.equal(body.message, "The 'username' field is required.");
    });

    describe("from a real broker call with bad params", () => {
      let broker: ServiceBroker;
      before(async () => {
        broker = new ServiceBroker({ transporter: null, logger: false, validator: true });
        broker.createService({
          name: "v",
          actions: {
            create: {
              params: { username: rules.username, age: { type: "number", integer: true } },
              handler: () => "ok",
            },
          },
        });
        await broker.start();
      });
      after(() => broker.stop());

      it("→ 422 with every bad field", async () => {
        const err = await broker.call("v.create", { username: "no spaces!", age: "x" }).then(
          () => assert.fail("the call should have been rejected"),
          (e: unknown) => e,
        );
        assert.ok(err instanceof Errors.ValidationError);
        const { status, body } = toErrorBody(err);
        assert.equal(status, 422);
        assert.equal(body.code, "VALIDATION_ERROR");
        assert.deepEqual(body.fields?.map((f) => f.field).sort(), ["age", "username"]);
        const username = body.fields?.find((f) => f.field === "username");
        assert.match(username!.message, /may contain only/);
        for (const f of body.fields ?? []) assert.deepEqual(Object.keys(f).sort(), ["field", "message"]);
      });
    });
  });

  describe("unavailable services → 503 UNAVAILABLE", () => {
    const errors = [
      new Errors.ServiceNotFoundError({ action: "auth.login" }),
      new Errors.ServiceNotAvailableError({ action: "auth.login", nodeID: "n1" }),
      new Errors.RequestTimeoutError({ action: "auth.login", nodeID: "n1" }),
      // moleculer-web's, for a REST alias whose action no node has registered (code 503, no type).
      new ApiGateway.Errors.ServiceUnavailableError(undefined as unknown as string),
    ];
    for (const err of errors) {
      it(err.name, () => {
        const res = toErrorBody(err, "req-2");
        assert.equal(res.status, 503);
        assert.equal(res.body.code, "UNAVAILABLE");
        assert.equal(res.internal, false);
        assert.doesNotMatch(res.body.message, /auth\.login/, "no internals in the message");
      });
    }

    it("ServiceNotFoundError from a real call to a missing action", async () => {
      const broker = new ServiceBroker({ transporter: null, logger: false });
      await broker.start();
      try {
        const err = await broker.call("nobody.home").then(
          () => assert.fail("should have been rejected"),
          (e: unknown) => e,
        );
        assert.deepEqual(toErrorBody(err).body, {
          code: "UNAVAILABLE",
          message: "A service is unavailable, try again",
        });
      } finally {
        await broker.stop();
      }
    });
  });

  describe("anything else → 500 INTERNAL without its message", () => {
    it("plain Error with a request id", () => {
      const res = toErrorBody(new Error("SQL secret stuff"), "req-42");
      assert.deepEqual(res, {
        status: 500,
        body: { code: "INTERNAL", message: "Internal error", requestId: "req-42" },
        internal: true,
      });
      assert.doesNotMatch(JSON.stringify(toEnvelope(new Error("SQL secret stuff"), "r")), /secret/);
    });

    it("plain Error without a request id has no requestId key", () => {
      const { body } = toErrorBody(new Error("SQL secret stuff"));
      assert.deepEqual(body, { code: "INTERNAL", message: "Internal error" });
      assert.equal("requestId" in body, false);
    });

    it("a MoleculerError with a non-contract type, a string, null and undefined", () => {
      for (const thrown of [new Errors.MoleculerError("boom secret", 500, "SOMETHING"), "oops", null, undefined, 42]) {
        const res = toErrorBody(thrown);
        assert.equal(res.status, 500);
        assert.deepEqual(res.body, { code: "INTERNAL", message: "Internal error" });
        assert.equal(res.internal, true);
      }
    });
  });

  describe("body-parser and moleculer-web request errors", () => {
    it("entity.too.large (413) → PAYLOAD_TOO_LARGE", () => {
      const err = Object.assign(new Error("request entity too large"), { type: "entity.too.large", status: 413 });
      assert.deepEqual(toErrorBody(err), {
        status: 413,
        body: { code: "PAYLOAD_TOO_LARGE", message: "Request body is too large" },
        internal: false,
      });
      assert.equal(toErrorBody({ type: "entity.too.large" }).status, 413);
    });

    it("entity.parse.failed (400) → BAD_REQUEST", () => {
      const err = Object.assign(new SyntaxError("Unexpected token } in JSON"), {
        type: "entity.parse.failed",
        status: 400,
      });
      assert.deepEqual(toErrorBody(err), {
        status: 400,
        body: { code: "BAD_REQUEST", message: "Malformed request body" },
        internal: false,
      });
      assert.equal(toErrorBody({ type: "entity.parse.failed" }).status, 400);
    });

    it("moleculer-web errors by their status code", () => {
      assert.equal(toErrorBody({ name: "UnAuthorizedError", code: 401 }).body.code, "UNAUTHORIZED");
      assert.equal(toErrorBody({ name: "ForbiddenError", code: 403 }).body.code, "FORBIDDEN");
      assert.equal(toErrorBody({ name: "NotFoundError", code: 404 }).body.code, "NOT_FOUND");
      const unsupported = toErrorBody({ name: "UnsupportedMediaTypeError", code: 415 });
      assert.equal(unsupported.status, 400);
      assert.equal(unsupported.body.code, "BAD_REQUEST");
      const rate = toErrorBody({ name: "RateLimitExceeded", code: 429 });
      assert.deepEqual(rate.body, { code: "RATE_LIMITED", message: "Too many requests", retryAfter: 1 });
    });
  });

  it("toEnvelope wraps the body", () => {
    assert.deepEqual(toEnvelope(AppError.forbidden()), {
      error: { code: "FORBIDDEN", message: "You are not allowed to do that" },
    });
  });
});
