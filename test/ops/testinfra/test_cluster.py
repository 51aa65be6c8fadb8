"""The deployed test cluster, host by host (run by test/ops/deploy.test.ts with py.test-3 and
testinfra over SSH): units active and enabled, ports listening on the private address, RabbitMQ's
guest user gone, secrets readable by root only, each host running only what its groups assign."""

INFRA = "10.199.0.10"
GATEWAYS = {"10.199.0.11", "10.199.0.12"}
WORKERS = {"10.199.0.21"}


def address(host):
    return host.backend.hostname


def env_file(host):
    lines = host.file("/etc/nochat/nochat.env").content_string.splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


def test_base_system(host):
    assert host.user("nochat").exists
    assert host.user("nochat").shell in ("/usr/sbin/nologin", "/bin/false")
    assert host.service("systemd-timesyncd").is_enabled
    assert host.service("ssh").is_running


def test_infra_servers(host):
    if address(host) != INFRA:
        return
    for unit in ("rabbitmq-server", "mariadb", "ferretdb", "nginx"):
        assert host.service(unit).is_running, unit
        assert host.service(unit).is_enabled, unit
    for port in (5672, 3306, 27017):
        assert host.socket(f"tcp://{INFRA}:{port}").is_listening, port
        assert not host.socket(f"tcp://0.0.0.0:{port}").is_listening, f"{port} only on the private address"
    assert host.socket("tcp://0.0.0.0:80").is_listening
    users = host.check_output("rabbitmqctl -q list_users")
    names = {line.split()[0] for line in users.splitlines() if line.strip()}
    assert "guest" not in names
    assert "nochat" in names
    vhosts = host.check_output("rabbitmqctl -q list_vhosts").split()
    assert "nochat" in vhosts
    grants = host.check_output("mysql -N -e \"SHOW GRANTS FOR 'nochat'@'10.199.0.%'\"")
    assert "ALL PRIVILEGES ON *.*" not in grants and "ON *.*" not in grants.replace("USAGE ON *.*", "")
    assert "`nochat`.*" in grants


def test_app_hosts(host):
    if address(host) not in GATEWAYS | WORKERS:
        return
    assert host.service("nochat").is_running
    assert host.service("nochat").is_enabled
    env = host.file("/etc/nochat/nochat.env")
    assert env.user == "root" and env.mode == 0o600
    assert host.file("/opt/nochat/current").is_symlink
    assert host.file("/opt/nochat/current").linked_to.startswith("/opt/nochat/releases/")
    assert host.check_output("/usr/local/bin/node --version").startswith("v24.")
    values = env_file(host)
    assert values["NODE_ID"]
    assert values["TRANSPORTER"].startswith(f"amqp://nochat:")
    assert values["TRANSPORTER"].endswith(f"@{INFRA}:5672/nochat")
    if address(host) in GATEWAYS:
        assert values["SERVICES"] == "api"
        assert host.socket(f"tcp://{address(host)}:3000").is_listening
    else:
        assert values["SERVICES"] == "auth,users,chat,notify,log"
        assert not host.socket("tcp://0.0.0.0:3000").is_listening
        assert host.service("nochat-backup.timer").is_enabled
        assert host.service("nochat-backup.timer").is_running
    for unit in ("rabbitmq-server", "mariadb", "nginx"):
        assert not host.service(unit).is_running, f"{unit} runs only on infra"
