/**
 * A real multi-host deployment (issue 11, test 2). ops/test/hosts.sh boots four systemd-nspawn hosts
 * — each a real systemd with its own network namespace and sshd — on a private bridge:
 *   infra   10.199.0.10  RabbitMQ, MariaDB, FerretDB (the docstore), nginx, in front of the gateways
 *   gw1     10.199.0.11  SERVICES=api
 *   gw2     10.199.0.12  SERVICES=api
 *   worker1 10.199.0.21  SERVICES=auth,users,chat,notify,log, and the backups
 * (ops/ansible/inventories/test). Then, in order: site.yml over SSH; site.yml again with changed=0;
 * testinfra (units, ports, users, modes); every deployed unit through systemd-analyze verify and the
 * nginx configuration through nginx -t, on the hosts; end to end through nginx — two socket.io clients
 * on different gateways exchange messages, one gateway's unit stops, its client reconnects to the
 * other and syncs what it missed; a backup, the database and the audit log dropped, restore.yml, and
 * the data compared; `rex deployServers` and `rex deployNode` on the same hosts. The hosts are torn
 * down at the end. Nothing here touches the machine's own RabbitMQ or MariaDB.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import http from "node:http";
import path from "node:path";
import { test } from "node:test";
import { MongoClient } from "mongodb";
import { io } from "socket.io-client";
import type { Message } from "../../src/contracts/objects.js";
import { api, register, type Account } from "../support/accounts-helpers.js";
import { createRoom, fullHistory, newClientMsgId } from "../support/chat-helpers.js";
import { ANSIBLE_DIR, HOSTS_SH, OPS_DIR, OPS_STATE, playRecap, run, runOk, tail, toolsSkip } from "../support/ops.js";
import { REPO_ROOT } from "../support/processes.js";
import { call, okData, type ChatSocket, waitSubscribed } from "../support/sockets.js";
import { eventually, sleep } from "../support/wait.js";

const NET = "10.199.0";
const BRIDGE = "ncbr0";
const HOSTS = { infra: `${NET}.10`, gw1: `${NET}.11`, gw2: `${NET}.12`, worker1: `${NET}.21` } as const;
type HostName = keyof typeof HOSTS;
const GATEWAYS: HostName[] = ["gw1", "gw2"];
const BASE = `http://${HOSTS.infra}`;
const SSH_KEY = path.join(OPS_STATE, "id_ed25519");
/** Extra addresses of this machine on the bridge: nginx hashes client addresses onto gateways. */
const CLIENT_ADDRESSES = [2, 3, 4, 5, 6, 7, 8, 9].map((n) => `${NET}.${n}`);
/** Tables whose content a restore must bring back exactly (nothing writes them while clients are away). */
const COMPARED_TABLES = ["auth_credentials", "rooms", "room_members", "messages", "message_reactions"];

const secret = () => randomBytes(24).toString("base64url");
const ENV: Record<string, string> = {
  NOCHAT_OPS_NET: NET,
  NOCHAT_OPS_BRIDGE: BRIDGE,
  NOCHAT_OPS_STATE: OPS_STATE,
  NOCHAT_OPS_HOSTS: Object.entries(HOSTS)
    .map(([name, ip]) => `${name}:${ip.split(".")[3]}`)
    .join(" "),
  NOCHAT_OPS_SSH_KEY: SSH_KEY,
  NOCHAT_INVENTORY: "test",
  NOCHAT_RABBITMQ_PASSWORD: secret(),
  NOCHAT_MARIADB_PASSWORD: secret(),
  NOCHAT_JWT_SECRET: secret() + secret(),
  ANSIBLE_CONFIG: path.join(ANSIBLE_DIR, "ansible.cfg"),
  ANSIBLE_NOCOLOR: "1",
};
const INVENTORY = "inventories/test/hosts.yml";

function ssh(host: HostName, command: string, timeoutMs = 120_000) {
  return run(
    "ssh",
    [
      "-i",
      SSH_KEY,
      "-o",
      "BatchMode=yes",
      "-o",
      "StrictHostKeyChecking=no",
      "-o",
      "UserKnownHostsFile=/dev/null",
      "-o",
      "LogLevel=ERROR",
      `root@${HOSTS[host]}`,
      command,
    ],
    { timeoutMs, name: `ssh-${host}` },
  );
}

async function sshOk(host: HostName, command: string, timeoutMs?: number): Promise<string> {
  const result = await ssh(host, command, timeoutMs);
  assert.equal(result.code, 0, `${host}: ${command}\n${tail(result)}`);
  return result.stdout;
}

function playbook(file: string, extra: string[] = [], name = file) {
  const release = ENV.NOCHAT_RELEASE ? ["-e", `nochat_release_tarball=${ENV.NOCHAT_RELEASE}`] : [];
  return run("ansible-playbook", ["-i", INVENTORY, file, ...release, ...extra], {
    cwd: ANSIBLE_DIR,
    env: ENV,
    timeoutMs: 1_500_000,
    name: `ansible-${name}`,
  });
}

/** GET through nginx from one of this machine's addresses: the status and the gateway that answered. */
function getFrom(localAddress: string, urlPath: string): Promise<{ status: number; upstream: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${BASE}${urlPath}`, { localAddress, timeout: 10_000 }, (res) => {
      res.resume();
      res.on("end", () =>
        // $upstream_addr lists every gateway tried ("a:3000, b:3000"): the last one answered.
        resolve({
          status: res.statusCode ?? 0,
          upstream: String(res.headers["x-nochat-upstream"] ?? "")
            .split(", ")
            .pop()!,
        }),
      );
    });
    req.on("timeout", () => req.destroy(new Error(`GET ${urlPath} from ${localAddress}: timeout`)));
    req.on("error", reject);
  });
}

/** A socket.io client through nginx from a given address of this machine, reconnecting by itself. */
async function connectFrom(localAddress: string, account: Account, roomId: number): Promise<ChatSocket> {
  const socket: ChatSocket = io(BASE, {
    path: "/socket.io",
    transports: ["websocket"],
    forceNew: true,
    reconnectionDelay: 300,
    reconnectionDelayMax: 1_000,
    auth: { token: account.accessToken },
    // engine.io passes it on to the WebSocket of Node's `ws`.
    ...({ localAddress } as object),
  });
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    setTimeout(() => reject(new Error(`no connection from ${localAddress}`)), 15_000);
  });
  await waitSubscribed(socket, roomId);
  return socket;
}

function nextMessage(socket: ChatSocket, body: string, timeoutMs = 15_000): Promise<Message> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`"${body}" did not arrive`)), timeoutMs);
    const onMessage = (message: Message) => {
      if (message.body !== body) return;
      clearTimeout(timer);
      socket.off("message:new", onMessage);
      resolve(message);
    };
    socket.on("message:new", onMessage);
  });
}

async function send(socket: ChatSocket, roomId: number, body: string): Promise<Message> {
  const ack = await call(socket, "message:send", { roomId, body, clientMsgId: newClientMsgId("ops") }, 15_000);
  return okData(ack, `send "${body}"`);
}

async function tableChecksums(): Promise<string> {
  const list = COMPARED_TABLES.map((table) => `nochat.${table}`).join(", ");
  return sshOk("infra", `mysql -N -e 'CHECKSUM TABLE ${list}'`);
}

async function countAuditEvents(): Promise<number> {
  const client = new MongoClient(`mongodb://${HOSTS.infra}:27017/nochat`, { serverSelectionTimeoutMS: 10_000 });
  try {
    return await client.db("nochat").collection("events").countDocuments({});
  } finally {
    await client.close();
  }
}

async function healthy(): Promise<void> {
  await eventually(
    "the cluster answers /api/health through nginx",
    async () => {
      const res = await api(BASE, "GET", "/api/health");
      assert.equal(res.status, 200, res.text);
      return true;
    },
    { timeoutMs: 120_000, intervalMs: 1_000 },
  );
}

test(
  "deployment: site.yml onto four systemd hosts, idempotent, the chat through nginx across two gateways, backup and restore, Rex",
  { timeout: 60 * 60_000 },
  async (t) => {
    const tools = ["ansible-playbook", "systemd-nspawn", "debootstrap", "ssh", "ip", "rex", "py.test-3"];
    if (toolsSkip(tools, t)) return;
    if (process.getuid?.() !== 0) {
      if (process.env.CI === "true") assert.fail("the deployment test needs root (systemd-nspawn, a bridge)");
      t.skip("needs root");
      return;
    }

    // ---- hosts -------------------------------------------------------------------------------------
    const started = Date.now();
    await runOk("bash", [HOSTS_SH, "down"], { env: ENV, name: "hosts-down-before" });
    await runOk("bash", [HOSTS_SH, "rootfs"], { env: ENV, timeoutMs: 1_800_000, name: "hosts-rootfs" });
    t.diagnostic(`root filesystem ready after ${Math.round((Date.now() - started) / 1000)} s`);
    t.after(async () => {
      if (process.env.NOCHAT_OPS_KEEP === "1") return;
      await run("bash", [HOSTS_SH, "down"], { env: ENV, name: "hosts-down" });
    });
    const booted = Date.now();
    await runOk("bash", [HOSTS_SH, "up"], { env: ENV, timeoutMs: 300_000, name: "hosts-up" });
    t.diagnostic(`4 hosts up in ${Math.round((Date.now() - booted) / 1000)} s`);
    for (const address of CLIENT_ADDRESSES) await runOk("ip", ["addr", "replace", `${address}/24`, "dev", BRIDGE]);

    // ---- the release, built once (a tree edited meanwhile must not make the second run differ) --------
    const release = (
      await runOk("bash", [path.join(REPO_ROOT, "scripts", "release.sh")], { timeoutMs: 900_000 })
    ).stdout
      .trim()
      .split("\n")
      .pop()!;
    ENV.NOCHAT_RELEASE = release;

    // ---- site.yml, twice ---------------------------------------------------------------------------
    const first = Date.now();
    const deploy = await playbook("site.yml", [], "site-1");
    assert.equal(deploy.code, 0, `site.yml failed\n${tail(deploy, 80)}`);
    t.diagnostic(`site.yml, first run: ${Math.round((Date.now() - first) / 1000)} s`);
    const second = Date.now();
    const again = await playbook("site.yml", [], "site-2");
    assert.equal(again.code, 0, `site.yml (second run) failed\n${tail(again, 80)}`);
    t.diagnostic(`site.yml, second run: ${Math.round((Date.now() - second) / 1000)} s`);
    const recap = playRecap(again.stdout);
    assert.deepEqual([...recap.keys()].sort(), Object.keys(HOSTS).sort(), `PLAY RECAP:\n${tail(again, 10)}`);
    for (const [host, counters] of recap) {
      assert.equal(counters.changed, 0, `second run changed ${counters.changed} on ${host}\n${tail(again, 120)}`);
      assert.equal(counters.failed, 0, `${host} failed`);
    }

    // ---- testinfra -----------------------------------------------------------------------------------
    const infra = await run(
      "py.test-3",
      [
        "-q",
        "-p",
        "no:cacheprovider",
        path.join(REPO_ROOT, "test", "ops", "testinfra", "test_cluster.py"),
        `--hosts=${Object.values(HOSTS)
          .map((ip) => `ssh://root@${ip}`)
          .join(",")}`,
        `--ssh-identity-file=${SSH_KEY}`,
        `--ssh-config=${path.join(REPO_ROOT, "test", "ops", "testinfra", "ssh_config")}`,
      ],
      { env: ENV, timeoutMs: 600_000, name: "testinfra" },
    );
    assert.equal(infra.code, 0, `testinfra\n${tail(infra, 80)}`);
    t.diagnostic(infra.stdout.trim().split("\n").pop() ?? "");

    // ---- the rendered units and nginx's configuration, checked where they run -----------------------
    const units: Record<HostName, string[]> = {
      infra: ["ferretdb.service"],
      gw1: ["nochat.service"],
      gw2: ["nochat.service"],
      worker1: ["nochat.service", "nochat-backup.service", "nochat-backup.timer"],
    };
    for (const [host, names] of Object.entries(units) as [HostName, string[]][]) {
      const paths = names.map((unit) => `/etc/systemd/system/${unit}`).join(" ");
      const verify = await ssh(host, `systemd-analyze verify ${paths}`);
      assert.equal(verify.code, 0, `systemd-analyze verify on ${host}\n${tail(verify)}`);
      assert.equal(verify.stderr.trim(), "", `systemd-analyze verify on ${host} warns:\n${verify.stderr}`);
    }
    const nginx = await ssh("infra", "nginx -t");
    assert.equal(nginx.code, 0, `nginx -t\n${tail(nginx)}`);

    // ---- end to end through nginx ------------------------------------------------------------------
    await healthy();
    const byGateway = new Map<string, string>();
    for (const address of CLIENT_ADDRESSES) {
      const res = await getFrom(address, "/api/health");
      assert.equal(res.status, 200);
      if (!byGateway.has(res.upstream)) byGateway.set(res.upstream, address);
    }
    const gatewayAddresses = GATEWAYS.map((gw) => `${HOSTS[gw]}:3000`);
    assert.deepEqual([...byGateway.keys()].sort(), gatewayAddresses, "nginx spreads clients over both gateways");
    const [addressA, addressB] = gatewayAddresses.map((upstream) => byGateway.get(upstream)!);
    const gatewayOfA = GATEWAYS[0];

    const alice = await register(BASE, `alice${Date.now() % 100000}`);
    const bob = await register(BASE, `bob${Date.now() % 100000}`);
    const room = await createRoom(BASE, alice, { name: "ops", kind: "public", members: [bob.user.id] });
    const socketA = await connectFrom(addressA, alice, room.id);
    const socketB = await connectFrom(addressB, bob, room.id);
    t.after(() => {
      socketA.close();
      socketB.close();
    });
    let arriving = nextMessage(socketB, "hello from gw1");
    const m1 = await send(socketA, room.id, "hello from gw1");
    assert.equal((await arriving).id, m1.id, "B (on gw2) gets A's message (sent on gw1)");
    arriving = nextMessage(socketA, "hello from gw2");
    const m2 = await send(socketB, room.id, "hello from gw2");
    assert.equal((await arriving).id, m2.id, "A gets B's message");

    // gw1 stops: A's socket drops and reconnects through nginx to gw2, then syncs what it missed.
    const reconnected = new Promise<void>((resolve) => socketA.io.once("reconnect", () => resolve()));
    await sshOk(gatewayOfA, "systemctl stop nochat");
    const missed = await send(socketB, room.id, "sent while gw1 was down");
    await Promise.race([
      reconnected,
      sleep(60_000).then(() => assert.fail("A did not reconnect within 60 s after gw1 stopped")),
    ]);
    const synced = okData(await call(socketA, "sync", { rooms: { [room.id]: m2.seq } }), "sync");
    const caughtUp = synced.rooms[String(room.id)]?.messages ?? [];
    assert.deepEqual(
      caughtUp.map((m) => m.id),
      [missed.id],
      "the sync after the reconnect brings exactly what A missed",
    );
    assert.equal((await getFrom(addressA, "/api/health")).upstream, `${HOSTS.gw2}:3000`, "A is now served by gw2");
    arriving = nextMessage(socketB, "back, through gw2");
    await send(socketA, room.id, "back, through gw2");
    await arriving;
    await sshOk(gatewayOfA, "systemctl start nochat");
    await eventually(
      "gw1 serves again",
      async () => {
        assert.equal((await getFrom(addressA, "/api/health")).upstream, `${HOSTS.gw1}:3000`);
        return true;
      },
      { timeoutMs: 60_000, intervalMs: 1_000 },
    );
    socketA.close();
    socketB.close();

    // ---- backup, loss, restore ---------------------------------------------------------------------
    const history = await fullHistory(BASE, alice, room.id);
    assert.equal(history.length, 4);
    await sleep(2_000); // the audit events of the last messages on their way
    const eventsBefore = await countAuditEvents();
    const checksumsBefore = await tableChecksums();
    const backup = await playbook("backup.yml", [], "backup");
    assert.equal(backup.code, 0, `backup.yml\n${tail(backup, 60)}`);
    const listing = await sshOk("worker1", "ls -1 /var/backups/nochat");
    assert.ok(listing.trim().split("\n").length >= 1, `a backup was written: ${listing}`);

    await sshOk("infra", "mysql -e 'DROP DATABASE nochat'");
    const mongo = new MongoClient(`mongodb://${HOSTS.infra}:27017/nochat`);
    await mongo.db("nochat").dropDatabase();
    await mongo.close();

    const restore = await playbook("restore.yml", ["-e", "backup=latest"], "restore");
    assert.equal(restore.code, 0, `restore.yml\n${tail(restore, 60)}`);
    await healthy();
    assert.equal(await tableChecksums(), checksumsBefore, "the restored tables equal the ones backed up");
    assert.ok((await countAuditEvents()) >= eventsBefore, "the audit log is back");
    const again2 = await register(BASE, `carol${Date.now() % 100000}`).catch((err: unknown) => err);
    assert.ok(!(again2 instanceof Error), `the restored cluster takes new accounts: ${String(again2)}`);
    const relogged = await api(BASE, "POST", "/api/auth/login", {
      body: { username: alice.user.username, password: alice.password },
    });
    assert.equal(relogged.status, 200, `alice signs in after the restore: ${relogged.text}`);
    const restoredHistory = await fullHistory(BASE, { ...alice, accessToken: relogged.body.accessToken }, room.id);
    assert.deepEqual(
      restoredHistory.map((m) => [m.id, m.seq, m.body]),
      history.map((m) => [m.id, m.seq, m.body]),
      "the room's history is back",
    );

    // ---- Rex on the same hosts ---------------------------------------------------------------------
    for (const task of ["deployServers", "deployNode", "status"]) {
      const rex = await run("rex", ["-f", path.join(OPS_DIR, "rex", "Rexfile"), task], {
        cwd: path.join(OPS_DIR, "rex"),
        env: ENV,
        timeoutMs: 900_000,
        name: `rex-${task}`,
      });
      assert.equal(rex.code, 0, `rex ${task}\n${tail(rex, 60)}`);
    }
    await healthy();
    const afterRex = await api(BASE, "POST", "/api/auth/login", {
      body: { username: alice.user.username, password: alice.password },
    });
    assert.equal(afterRex.status, 200, "the cluster works after rex deployNode");
    t.diagnostic(`deployment test: ${Math.round((Date.now() - started) / 1000)} s in all`);
  },
);
