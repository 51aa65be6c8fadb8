/**
 * Provisioning, checked without hosts (issue 11, tests 1 and 3): yamllint and ansible-lint clean,
 * every playbook through `ansible-playbook --syntax-check`, the Vagrantfile through `vagrant validate`
 * and `vagrant status` (with the files it names present: validate does not look), and the Rexfile's
 * tasks listed by `rex -T`. The rendered units and nginx configuration are checked on the deployed
 * hosts themselves (deploy.test.ts), where systemd and nginx are the real ones.
 */
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { ANSIBLE_DIR, OPS_DIR, run, runOk, tail, toolsSkip } from "../support/ops.js";

const ANSIBLE_ENV = { ANSIBLE_CONFIG: path.join(ANSIBLE_DIR, "ansible.cfg"), ANSIBLE_NOCOLOR: "1" };
const PLAYBOOKS = readdirSync(ANSIBLE_DIR).filter((f) => f.endsWith(".yml") && f !== "requirements.yml");

test("yamllint: ops/ is clean", async (t) => {
  if (toolsSkip(["yamllint"], t)) return;
  await runOk("yamllint", ["--strict", "-c", path.join(OPS_DIR, ".yamllint"), "ops"]);
});

test("ansible-lint: ops/ansible is clean", async (t) => {
  if (toolsSkip(["ansible-lint"], t)) return;
  const result = await run("ansible-lint", [], { cwd: ANSIBLE_DIR, env: ANSIBLE_ENV, timeoutMs: 300_000 });
  assert.equal(result.code, 0, tail(result));
});

test("ansible-playbook --syntax-check: every playbook, against every inventory", async (t) => {
  if (toolsSkip(["ansible-playbook"], t)) return;
  assert.ok(PLAYBOOKS.includes("site.yml") && PLAYBOOKS.includes("restore.yml"), `playbooks: ${PLAYBOOKS}`);
  for (const inventory of readdirSync(path.join(ANSIBLE_DIR, "inventories"))) {
    for (const playbook of PLAYBOOKS) {
      await runOk("ansible-playbook", ["--syntax-check", "-i", `inventories/${inventory}/hosts.yml`, playbook], {
        cwd: ANSIBLE_DIR,
        env: ANSIBLE_ENV,
        name: `syntax-${inventory}-${playbook}`,
      });
    }
  }
});

test("Vagrantfile: validate, status, and every file it names exists", async (t) => {
  if (toolsSkip(["vagrant", "ruby"], t)) return;
  // Files, machines, groups and addresses against the vagrant inventory: validate does not look.
  await runOk("ruby", [path.join(OPS_DIR, "vagrant", "check-vagrantfile.rb")], { name: "check-vagrantfile" });

  const env = { VAGRANT_CHECKPOINT_DISABLE: "1", VAGRANT_DEFAULT_PROVIDER: "libvirt" };
  await runOk("vagrant", ["validate"], { env, timeoutMs: 180_000 });
  for (const gateways of ["2", "3"]) {
    const status = await runOk("vagrant", ["status"], {
      env: { ...env, NOCHAT_GATEWAYS: gateways },
      timeoutMs: 180_000,
      name: `vagrant-status-${gateways}`,
    });
    const machines = ["infra", ...Array.from({ length: Number(gateways) }, (_, i) => `gw${i + 1}`), "worker1"];
    for (const machine of machines) {
      assert.match(status.stdout, new RegExp(`^${machine}\\s+not created`, "m"), `${machine} in:\n${status.stdout}`);
    }
    assert.doesNotMatch(status.stdout, new RegExp(`^gw${Number(gateways) + 1}\\s`, "m"));
  }
});

test("Rexfile: rex -T lists deployServers and deployNode", async (t) => {
  if (toolsSkip(["rex"], t)) return;
  const result = await runOk("rex", ["-f", path.join(OPS_DIR, "rex", "Rexfile"), "-T"], {
    cwd: OPS_DIR,
    env: { COLUMNS: "120" },
  });
  for (const task of ["deployServers", "deployNode", "status", "backup"]) {
    assert.match(result.stdout, new RegExp(`^\\s*${task}\\s+\\S`, "m"), `rex -T lists ${task}:\n${result.stdout}`);
  }
});
