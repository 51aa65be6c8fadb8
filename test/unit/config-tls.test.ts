/**
 * src/config.ts: TRANSPORTER_TLS_* (an `amqps://` TRANSPORTER's CA, client certificate and key, and
 * the name the server's certificate must carry). The TLS connection itself is tested against a real
 * RabbitMQ in test/integration/amqps.test.ts.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";
import { loadConfig } from "../../src/config.js";

const SECRET = "s".repeat(32);

describe("TRANSPORTER_TLS_*", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "nochat-config-tls-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const pem = (name: string): string => {
    const file = path.join(dir, name);
    writeFileSync(file, "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n");
    return file;
  };
  const base = { DATA_DIR: path.join(dir, "data"), JWT_SECRET: SECRET };

  it("amqp:// without TLS variables: no TLS options", () => {
    assert.equal(loadConfig({ ...base, TRANSPORTER: "amqp://u:p@h:5672" }).transporterTls, undefined);
  });

  it("amqps:// alone: TLS with the system's CAs (empty options)", () => {
    assert.deepEqual(loadConfig({ ...base, TRANSPORTER: "amqps://u:p@h:5671" }).transporterTls, {});
  });

  it("amqps:// with CA, client certificate, key and server name: absolute paths and the name", () => {
    const c = loadConfig({
      ...base,
      TRANSPORTER: "amqps://u:p@h:5671",
      TRANSPORTER_TLS_CA: pem("ca.pem"),
      TRANSPORTER_TLS_CERT: pem("client.pem"),
      TRANSPORTER_TLS_KEY: pem("client.key"),
      TRANSPORTER_TLS_SERVERNAME: "rabbit.internal",
    });
    assert.deepEqual(c.transporterTls, {
      ca: path.join(dir, "ca.pem"),
      cert: path.join(dir, "client.pem"),
      key: path.join(dir, "client.key"),
      servername: "rabbit.internal",
    });
  });

  it("refuses TLS variables without an amqps:// TRANSPORTER (they would be silently ignored)", () => {
    for (const TRANSPORTER of [undefined, "amqp://u:p@h:5672", "amqps://u:p@a:5671;amqp://u:p@b:5672"]) {
      assert.throws(
        () => loadConfig({ ...base, TRANSPORTER, TRANSPORTER_TLS_CA: pem("ca.pem") }),
        /TRANSPORTER_TLS_\* are set but TRANSPORTER is not an amqps:\/\/ URL/,
        String(TRANSPORTER),
      );
    }
  });

  it("refuses a missing file, naming the variable", () => {
    assert.throws(
      () => loadConfig({ ...base, TRANSPORTER: "amqps://h", TRANSPORTER_TLS_CA: path.join(dir, "nope.pem") }),
      /TRANSPORTER_TLS_CA: no such file/,
    );
  });

  it("refuses a client certificate without its key and the reverse", () => {
    for (const v of [{ TRANSPORTER_TLS_CERT: pem("c.pem") }, { TRANSPORTER_TLS_KEY: pem("k.pem") }]) {
      assert.throws(() => loadConfig({ ...base, TRANSPORTER: "amqps://h", ...v }), /give both or neither/);
    }
  });
});
