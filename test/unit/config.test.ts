/**
 * src/config.ts: the environment → Config mapping, from plain env objects (never process.env).
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { ALL_SERVICES, loadConfig } from "../../src/config.js";

const SECRET = "s".repeat(32);

describe("loadConfig", () => {
  let dataDir: string;
  before(() => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), "nochat-config-"));
  });
  after(() => rmSync(dataDir, { recursive: true, force: true }));

  /** A fresh sub-folder of the temp dir, not created yet. */
  let n = 0;
  const freshDir = (): string => path.join(dataDir, `d${++n}`);

  it("defaults: port 3000, all six services, embedded (no transporter, SQLite, embedded log store)", () => {
    const c = loadConfig({ DATA_DIR: freshDir() });
    assert.equal(c.port, 3000);
    assert.equal(c.host, "0.0.0.0");
    assert.deepEqual(c.services, ["api", "auth", "users", "chat", "notify", "log"]);
    assert.deepEqual(c.services, [...ALL_SERVICES]);
    assert.equal(c.transporter, undefined);
    assert.equal(c.databaseUrl, undefined, "no DATABASE_URL → SQLite under DATA_DIR");
    assert.equal(c.mongoUrl, undefined);
    assert.equal(c.namespace, "nochat");
    assert.equal(c.logLevel, "info");
    assert.equal(c.accessTokenTtlSeconds, 900);
    assert.equal(c.refreshTokenTtlDays, 30);
    assert.equal(c.requestTimeoutMs, 10_000);
    assert.deepEqual(c.admins, []);
    assert.deepEqual(c.allowedOrigins, []);
    assert.ok(path.isAbsolute(c.dataDir));
  });

  it("empty strings count as unset", () => {
    const c = loadConfig({ DATA_DIR: freshDir(), PORT: "", TRANSPORTER: "", DATABASE_URL: "", SERVICES: "" });
    assert.equal(c.port, 3000);
    assert.equal(c.transporter, undefined);
    assert.equal(c.databaseUrl, undefined);
    assert.equal(c.services.length, 6);
  });

  it("reads the given values", () => {
    const dir = freshDir();
    const c = loadConfig({
      DATA_DIR: dir,
      PORT: "8080",
      HOST: "127.0.0.1",
      NAMESPACE: "ns1",
      NODE_ID: "node-1",
      DATABASE_URL: "mysql://root@db/nochat",
      MONGO_URL: "mongodb://mongo/nochat",
      LOG_LEVEL: "DEBUG",
      NOCHAT_ADMINS: " Alice , bob,,",
      ALLOWED_ORIGINS: "https://a.example, https://b.example",
    });
    assert.equal(c.port, 8080);
    assert.equal(c.host, "127.0.0.1");
    assert.equal(c.namespace, "ns1");
    assert.equal(c.nodeID, "node-1");
    assert.equal(c.dataDir, path.resolve(dir));
    assert.equal(c.databaseUrl, "mysql://root@db/nochat");
    assert.equal(c.mongoUrl, "mongodb://mongo/nochat");
    assert.equal(c.logLevel, "debug");
    assert.deepEqual(c.admins, ["alice", "bob"]);
    assert.deepEqual(c.allowedOrigins, ["https://a.example", "https://b.example"]);
  });

  describe("SERVICES", () => {
    it("a subset, in the given order, spaces trimmed", () => {
      assert.deepEqual(loadConfig({ DATA_DIR: freshDir(), SERVICES: "auth, users ,chat" }).services, [
        "auth",
        "users",
        "chat",
      ]);
      assert.deepEqual(loadConfig({ DATA_DIR: freshDir(), SERVICES: "api" }).services, ["api"]);
    });

    it('"none" → no services', () => {
      assert.deepEqual(loadConfig({ DATA_DIR: freshDir(), SERVICES: "none" }).services, []);
    });

    it("an unknown name throws, naming it", () => {
      assert.throws(() => loadConfig({ DATA_DIR: freshDir(), SERVICES: "api,gateway" }), /unknown service "gateway"/);
      assert.throws(() => loadConfig({ DATA_DIR: freshDir(), SERVICES: "API" }), /unknown service "API"/);
      // "none" only means nothing on its own.
      assert.throws(() => loadConfig({ DATA_DIR: freshDir(), SERVICES: "none,api" }), /unknown service "none"/);
    });
  });

  describe("JWT_SECRET", () => {
    it("is required when TRANSPORTER is set", () => {
      const dir = freshDir();
      assert.throws(
        () => loadConfig({ DATA_DIR: dir, TRANSPORTER: "amqp://guest:guest@127.0.0.1:5672" }),
        /JWT_SECRET is required when TRANSPORTER is set/,
      );
      assert.equal(existsSync(path.join(dir, "jwt-secret")), false, "a cluster must not generate its own secret");
      const c = loadConfig({ DATA_DIR: dir, TRANSPORTER: "amqp://127.0.0.1", JWT_SECRET: SECRET });
      assert.equal(c.transporter, "amqp://127.0.0.1");
      assert.equal(c.jwtSecret, SECRET);
    });

    it("must be at least 32 characters when given", () => {
      assert.throws(() => loadConfig({ DATA_DIR: freshDir(), JWT_SECRET: "short" }), /at least 32/);
      assert.throws(
        () => loadConfig({ DATA_DIR: freshDir(), TRANSPORTER: "amqp://x", JWT_SECRET: "s".repeat(31) }),
        /at least 32/,
      );
    });

    it("refuses the .env.example placeholder and other known placeholders", () => {
      const example = readFileSync(path.join(__dirname, "..", "..", ".env.example"), "utf8");
      const placeholder = /^#?\s*JWT_SECRET=(\S+)/m.exec(example)?.[1];
      assert.ok(placeholder, ".env.example shows a JWT_SECRET");
      for (const secret of [
        placeholder,
        "changeme-changeme-changeme-changeme",
        "x".repeat(40),
        "your-secret-here-0000000000000000000",
      ]) {
        assert.throws(
          () => loadConfig({ DATA_DIR: freshDir(), TRANSPORTER: "amqp://x", JWT_SECRET: secret }),
          /placeholder/,
          secret,
        );
      }
    });

    it("embedded: generated once, kept in DATA_DIR and reused on the next load", () => {
      const dir = freshDir();
      const first = loadConfig({ DATA_DIR: dir }).jwtSecret;
      assert.ok(first.length >= 32, `generated secret is only ${first.length} characters`);
      const file = path.join(dir, "jwt-secret");
      assert.ok(existsSync(file), "the secret is written to DATA_DIR/jwt-secret");
      assert.equal(readFileSync(file, "utf8").trim(), first);
      if (process.platform !== "win32") {
        assert.equal(statSync(file).mode & 0o077, 0, "the secret file is private to its owner");
      }
      assert.equal(loadConfig({ DATA_DIR: dir }).jwtSecret, first, "same secret on a second load");
      const other = loadConfig({ DATA_DIR: freshDir() }).jwtSecret;
      assert.notEqual(other, first, "another DATA_DIR gets its own secret");
    });

    it("a given secret wins over the stored one", () => {
      const dir = freshDir();
      loadConfig({ DATA_DIR: dir });
      assert.equal(loadConfig({ DATA_DIR: dir, JWT_SECRET: SECRET }).jwtSecret, SECRET);
    });
  });

  describe("TRACING", () => {
    it("is off by default; console and event (any case) switch it on", () => {
      assert.equal(loadConfig({ DATA_DIR: freshDir() }).tracing, "off");
      assert.equal(loadConfig({ DATA_DIR: freshDir(), TRACING: "" }).tracing, "off");
      assert.equal(loadConfig({ DATA_DIR: freshDir(), TRACING: "console" }).tracing, "console");
      assert.equal(loadConfig({ DATA_DIR: freshDir(), TRACING: "Event" }).tracing, "event");
      assert.equal(loadConfig({ DATA_DIR: freshDir(), TRACING: "off" }).tracing, "off");
    });
    it("anything else throws, naming the variable, the choices and the value", () => {
      assert.throws(
        () => loadConfig({ DATA_DIR: freshDir(), TRACING: "jaeger" }),
        /TRACING must be one of console, event, off, got "jaeger"/,
      );
    });
  });

  describe("bad values throw", () => {
    for (const level of ["verbose", "warning", "1"]) {
      it(`LOG_LEVEL=${level}`, () => {
        assert.throws(() => loadConfig({ DATA_DIR: freshDir(), LOG_LEVEL: level }), /LOG_LEVEL must be one of/);
      });
    }
    for (const port of ["abc", "-1", "80.5", "3e"]) {
      it(`PORT=${port}`, () => {
        assert.throws(() => loadConfig({ DATA_DIR: freshDir(), PORT: port }), /PORT must be an integer/);
      });
    }
    it("ACCESS_TOKEN_TTL below its minimum", () => {
      assert.throws(() => loadConfig({ DATA_DIR: freshDir(), ACCESS_TOKEN_TTL: "5" }), /ACCESS_TOKEN_TTL/);
    });
    it("REQUEST_TIMEOUT that is not a number", () => {
      assert.throws(() => loadConfig({ DATA_DIR: freshDir(), REQUEST_TIMEOUT: "soon" }), /REQUEST_TIMEOUT/);
    });
    for (const port of ["0", "65536", "x"]) {
      it(`METRICS_PORT=${port}`, () => {
        assert.throws(
          () => loadConfig({ DATA_DIR: freshDir(), METRICS_PORT: port }),
          /METRICS_PORT must be an integer/,
        );
      });
    }
  });

  describe("metrics", () => {
    it("off by default, with no endpoint", () => {
      const c = loadConfig({ DATA_DIR: freshDir() });
      assert.equal(c.metrics, false);
      assert.equal(c.metricsPort, undefined);
    });
    it("METRICS=true: metrics without an endpoint", () => {
      const c = loadConfig({ DATA_DIR: freshDir(), METRICS: "true" });
      assert.equal(c.metrics, true);
      assert.equal(c.metricsPort, undefined);
    });
    it("METRICS_PORT: an endpoint, and metrics on", () => {
      const c = loadConfig({ DATA_DIR: freshDir(), METRICS_PORT: "9464" });
      assert.equal(c.metrics, true);
      assert.equal(c.metricsPort, 9464);
    });
  });
});
