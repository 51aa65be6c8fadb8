/**
 * NoChat over `amqps://` (issue 10, item 7): a throwaway CA, a server certificate and a client
 * certificate made with openssl; a private RabbitMQ node (test/support/private-rabbitmq.ts) with only
 * a TLS listener for the nodes, requiring a client certificate signed by that CA; then
 *   gateway   SERVICES=api                          CA + client cert/key, URL host localhost
 *   worker    SERVICES=auth,users,chat,notify,log   CA + client cert/key, TRANSPORTER_TLS_SERVERNAME
 * find each other, and REST calls that cross the bus succeed (register, create a room, send, read).
 * RabbitMQ lists both nodes' connections as TLS. A node without the CA, and one expecting another
 * server name, do not connect (the certificate is refused), and say so in their log.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { api, register } from "../support/accounts-helpers.js";
import { createRoom, fullHistory, sendRest } from "../support/chat-helpers.js";
import { PrivateRabbitMQ, privateRabbitUnavailable } from "../support/private-rabbitmq.js";
import { startNode } from "../support/processes.js";
import { freePort, isCI, uniqueNamespace } from "../support/servers.js";
import { eventually } from "../support/wait.js";

function openssl(cwd: string, ...args: string[]): void {
  execFileSync("openssl", args, { cwd, stdio: ["ignore", "ignore", "pipe"], timeout: 30_000 });
}

/** ca.pem, server.pem/.key (localhost, rabbit.nochat.test, 127.0.0.1), client.pem/.key; all signed by the CA. */
function makeCertificates(dir: string): void {
  openssl(
    dir,
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
    "-days",
    "1",
    "-subj",
    "/CN=NoChat test CA",
  );
  writeFileSync(
    path.join(dir, "server.ext"),
    "subjectAltName=DNS:localhost,DNS:rabbit.nochat.test,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
  );
  writeFileSync(path.join(dir, "client.ext"), "extendedKeyUsage=clientAuth\n");
  for (const [name, cn] of [
    ["server", "localhost"],
    ["client", "nochat-node"],
  ]) {
    openssl(
      dir,
      "req",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.csr`,
      "-subj",
      `/CN=${cn}`,
    );
    openssl(
      dir,
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      `${name}.pem`,
      "-days",
      "1",
      "-extfile",
      `${name}.ext`,
    );
  }
}

test("two NoChat nodes over amqps:// (CA, client certificate, server name) find each other; a REST call crosses the bus", async (t) => {
  const missing = privateRabbitUnavailable(); // throws under CI=true
  if (missing) {
    t.skip(`no private RabbitMQ: ${missing}`);
    return;
  }
  try {
    execFileSync("openssl", ["version"], { stdio: "ignore" });
  } catch {
    if (isCI()) throw new Error("openssl is required (CI=true)");
    t.skip("no openssl");
    return;
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), "nochat-tls-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  makeCertificates(dir);
  const file = (name: string): string => path.join(dir, name);

  const started = Date.now();
  const rabbit = await PrivateRabbitMQ.start({
    tls: { caFile: file("ca.pem"), certFile: file("server.pem"), keyFile: file("server.key"), requireClientCert: true },
  });
  t.after(async () => {
    if ((t as { passed?: boolean }).passed === false)
      process.stderr.write(`----- private RabbitMQ log -----\n${rabbit.log().slice(-6000)}\n`);
    await rabbit.destroy();
  });
  t.diagnostic(`private RabbitMQ ${rabbit.nodeName} with TLS on ${rabbit.tlsPort} in ${Date.now() - started} ms`);

  const tlsEnv = {
    TRANSPORTER: rabbit.tlsUrl,
    NAMESPACE: uniqueNamespace("nochat-tls"),
    TRANSPORTER_TLS_CA: file("ca.pem"),
    TRANSPORTER_TLS_CERT: file("client.pem"),
    TRANSPORTER_TLS_KEY: file("client.key"),
  };
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const [gateway, worker] = await Promise.all([
    startNode({ t, name: "gateway", services: ["api"], env: { ...tlsEnv, PORT: String(port) } }),
    startNode({
      t,
      name: "worker",
      services: ["auth", "users", "chat", "notify", "log"],
      // The URL says localhost; the certificate is checked for this name instead.
      env: { ...tlsEnv, TRANSPORTER_TLS_SERVERNAME: "rabbit.nochat.test" },
    }),
  ]);
  await eventually(
    "the gateway sees the worker's services over amqps://",
    async () => (await api(base, "GET", "/api/health")).status === 200,
    { timeoutMs: 20_000 },
  );

  // Every step below is a request from the gateway to the worker over the TLS connections.
  const ann = await register(base);
  const room = await createRoom(base, ann, { name: "over-tls", kind: "public" });
  const sent = await sendRest(base, ann, room.id, "hello over amqps://");
  const history = await fullHistory(base, ann, room.id);
  assert.deepEqual(
    history.map((m) => [m.id, m.body]),
    [[sent.id, "hello over amqps://"]],
  );

  // RabbitMQ's view: every client connection is TLS (the nodes have no other listener to use).
  const connections = (
    await rabbit.rabbitmqctl("-q", "list_connections", "ssl", "peer_cert_subject", "--no-table-headers")
  )
    .trim()
    .split("\n")
    .filter(Boolean);
  assert.ok(connections.length >= 2, `connections: ${JSON.stringify(connections)}`);
  for (const line of connections)
    assert.match(line, /^true\s+CN=nochat-node/, `a TLS connection with the client cert: ${line}`);
  for (const node of [gateway, worker]) assert.doesNotMatch(node.output(), /AMQP connection error/);
  t.diagnostic(
    `${connections.length} TLS connections; the cluster answered over amqps:// in ${Date.now() - started} ms`,
  );

  // Refused: no CA (the system's CAs don't know ours), and a server name the certificate lacks.
  for (const [label, env, expected] of [
    ["without the CA", { TRANSPORTER_TLS_CA: undefined }, /self[- ]signed certificate|unable to (get|verify)/i],
    [
      "expecting another server name",
      { TRANSPORTER_TLS_SERVERNAME: "rabbit.example.org" },
      /Hostname\/IP does not match|altnames/i,
    ],
  ] as const) {
    const node = await startNode({
      name: `refused (${label})`,
      services: ["api"],
      env: { ...tlsEnv, ...env, PORT: String(await freePort()) },
      ready: "none",
    });
    try {
      await node.waitForOutput(expected, { timeoutMs: 20_000 });
      assert.doesNotMatch(node.output(), /NoChat node \S+ up:/, `a node ${label} must not come up`);
    } finally {
      await node.stop();
    }
  }
});
