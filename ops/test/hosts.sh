#!/usr/bin/env bash
# Test hosts for the Ansible roles: systemd-nspawn containers, each a real systemd with its own sshd and
# network namespace, on a private bridge of this machine. See ops/test/README.md.
#
#   hosts.sh rootfs            build (once) and cache the Debian bookworm root filesystem; prints its path
#   hosts.sh up                boot every host of NOCHAT_OPS_HOSTS; prints `export NOCHAT_OPS_SSH_KEY=...`
#   hosts.sh down              stop every host, remove their directories and the bridge (idempotent)
#   hosts.sh ssh HOST [CMD…]   ssh to a host as root with the generated key
#   hosts.sh status            what runs
#
# Environment:
#   NOCHAT_OPS_NET     first three octets of the hosts' /24 (default 10.199.0); this machine is .1 on the bridge
#   NOCHAT_OPS_BRIDGE  the bridge's name (default ncbr0)
#   NOCHAT_OPS_STATE   state directory: key, per-host roots, console logs, pid files (default /tmp/nochat-ops)
#   NOCHAT_OPS_HOSTS   "name:lastoctet ..." (default "infra:10 gw1:11 gw2:12 worker1:21")
#   NOCHAT_OPS_CACHE   where root filesystems are cached (default $XDG_CACHE_HOME/nochat/ops or ~/.cache/nochat/ops)
#   NOCHAT_OPS_BOOT_TIMEOUT  seconds `up` waits for every host's sshd (default 90)
#   NOCHAT_OPS_OVERLAY       0: copy the root filesystem for each host instead of an overlay on it
#
# Logs go to stderr; stdout carries only what callers use (the rootfs path, the export lines).
set -euo pipefail

# Bump when the way the root filesystem is built changes: a new cache directory follows.
ROOTFS_VERSION=2
SUITE=bookworm
PACKAGES=(
  systemd systemd-sysv dbus libpam-systemd openssh-server python3 python3-apt sudo iproute2 iputils-ping
  ca-certificates curl rsync gzip xz-utils tar procps less rabbitmq-server mariadb-server mariadb-client
  python3-pymysql nginx systemd-timesyncd nftables locales
  # Ansible (become_user needs acl; the common role wants tzdata), the backup timer's tools, debugging.
  acl tzdata cron logrotate openssl netcat-openbsd unzip
)
# Installed but not started at boot: the roles enable them (epmd.service takes epmd.socket along; RabbitMQ
# wants the socket itself).
DISABLED_UNITS=(rabbitmq-server.service mariadb.service nginx.service epmd.service)
# Never at boot on a test host: timers that would reach for the network or hold dpkg's lock during a
# play, and units with nothing to do in a container.
MASKED_UNITS=(apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer e2scrub_reap.service
  fstrim.timer)

NET=${NOCHAT_OPS_NET:-10.199.0}
BRIDGE=${NOCHAT_OPS_BRIDGE:-ncbr0}
STATE=${NOCHAT_OPS_STATE:-/tmp/nochat-ops}
HOSTS=${NOCHAT_OPS_HOSTS:-infra:10 gw1:11 gw2:12 worker1:21}
CACHE=${NOCHAT_OPS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nochat/ops}
BOOT_TIMEOUT=${NOCHAT_OPS_BOOT_TIMEOUT:-90}
KEY=$STATE/id_ed25519
SOURCES=/etc/apt/sources.list.d/debian.sources

log() { printf '[hosts.sh] %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

need_root() { [[ $(id -u) -eq 0 ]] || die "needs root (debootstrap, mounts, systemd-nspawn, a bridge)"; }
need() {
  local tool
  for tool in "$@"; do command -v "$tool" >/dev/null || die "$tool not found (apt install ${TOOL_PACKAGE[$tool]:-$tool})"; done
}
declare -A TOOL_PACKAGE=([systemd-nspawn]=systemd-container [debootstrap]=debootstrap [ssh]=openssh-client
  [ssh-keygen]=openssh-client [ip]=iproute2 [flock]=util-linux)

# ---- root filesystem ---------------------------------------------------------------------------------

rootfs_hash() {
  printf '%s\n' "$ROOTFS_VERSION" "$SUITE" "${PACKAGES[@]}" "${DISABLED_UNITS[@]}" "${MASKED_UNITS[@]}" | sha256sum | cut -c1-16
}
rootfs_dir() { printf '%s/rootfs-%s' "$CACHE" "$(rootfs_hash)"; }

# The mirror apt already uses: "main <uri>" and "security <uri>" lines, from the deb822 sources
# (or a one-line sources.list).
apt_mirrors() {
  if [[ -r $SOURCES ]]; then
    awk '
      function flush() { if (uri != "" && suites != "") {
          n = split(suites, s, /[ \t]+/)
          for (i = 1; i <= n; i++) {
            if (s[i] == "'"$SUITE"'") print "main", uri
            if (s[i] == "'"$SUITE"'-security") print "security", uri
          } }
        uri = ""; suites = "" }
      /^[ \t]*#/ { next }
      /^[ \t]*$/ { flush(); next }
      tolower($1) == "uris:" { uri = $2 }
      tolower($1) == "suites:" { $1 = ""; suites = $0; sub(/^[ \t]+/, "", suites) }
      END { flush() }' "$SOURCES"
  fi
  if [[ -r /etc/apt/sources.list ]]; then
    awk '$1 == "deb" { u = $2; if (u ~ /^\[/) u = $3
      for (i = 2; i <= NF; i++) { if ($i == "'"$SUITE"'") print "main", u; if ($i == "'"$SUITE"'-security") print "security", u } }' \
      /etc/apt/sources.list
  fi
}

# Older root filesystems no running host uses (as an overlay's lower directory) are removed.
prune_rootfs() {
  local keep=$1 old
  for old in "$CACHE"/rootfs-*/; do
    old=${old%/}
    [[ -d $old && $old != "$keep" ]] || continue
    # Still a running host's lower directory: kept.
    grep -qF "lowerdir=$old," /proc/self/mounts && continue
    log "removing the outdated $old"
    rm -rf "$old" "$old.lock"
  done
}

cmd_rootfs() {
  need_root
  need debootstrap flock chroot unshare sha256sum
  local dir
  dir=$(rootfs_dir)
  if [[ -f $dir/.nochat-rootfs ]]; then
    prune_rootfs "$dir"
    printf '%s\n' "$dir"
    return
  fi
  mkdir -p "$CACHE"
  exec 9>"$dir.lock"
  if ! flock -n 9; then
    log "another build of $dir is under way: waiting for it"
    flock 9
  fi
  if [[ -f $dir/.nochat-rootfs ]]; then
    exec 9>&-
    printf '%s\n' "$dir"
    return
  fi
  local mirror security
  mirror=$(apt_mirrors | awk '$1 == "main" { print $2; exit }')
  security=$(apt_mirrors | awk '$1 == "security" { print $2; exit }')
  [[ -n $mirror ]] || die "no $SUITE mirror found in $SOURCES or /etc/apt/sources.list"
  local started=$SECONDS tmp
  tmp=$(mktemp -d "$CACHE/.rootfs-build.XXXXXX")
  chmod 0755 "$tmp" # the image's / (mktemp's 0700 locks every non-root user out, mysql and _apt among them)
  # shellcheck disable=SC2064 # expand now: the trap must remove this build's directory
  trap "rm -rf '$tmp'" EXIT
  log "building the root filesystem in $tmp (debootstrap $SUITE from $mirror${security:+, security from $security})"
  debootstrap --variant=minbase --keyring=/usr/share/keyrings/debian-archive-keyring.gpg \
    "$SUITE" "$tmp" "$mirror" >&2
  log "debootstrap done after $((SECONDS - started)) s"

  # apt sources inside: the same mirror, with updates and security.
  rm -f "$tmp/etc/apt/sources.list"
  {
    printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\n' "$mirror" "$SUITE" "$SUITE"
    printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
    if [[ -n $security ]]; then
      printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\n' "$security" "$SUITE"
      printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
    fi
  } >"$tmp/etc/apt/sources.list.d/debian.sources"
  # Nothing starts inside the chroot.
  printf '#!/bin/sh\nexit 101\n' >"$tmp/usr/sbin/policy-rc.d"
  chmod 0755 "$tmp/usr/sbin/policy-rc.d"
  cp /etc/resolv.conf "$tmp/etc/resolv.conf"
  printf 'en_US.UTF-8 UTF-8\nC.UTF-8 UTF-8\n' >"$tmp/etc/locale.gen"
  printf 'LANG=C.UTF-8\n' >"$tmp/etc/default/locale"

  # A private mount namespace: /proc, /sys and /dev vanish with it, whatever happens.
  # shellcheck disable=SC2016 # expanded by the inner shell
  unshare --mount --propagation private -- bash -euo pipefail -c '
    root=$1; shift
    mount -t proc proc "$root/proc"
    mount -t sysfs sysfs "$root/sys"
    mount --rbind /dev "$root/dev"
    export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8
    chroot "$root" apt-get update
    chroot "$root" apt-get -y upgrade
    chroot "$root" apt-get install -y --no-install-recommends "$@"
    # mariadb-server'"'"'s postinst runs mysql_install_db and ignores its failure: make sure of the tables.
    if [[ -x $root/usr/bin/mysql_install_db && ! -d $root/var/lib/mysql/mysql ]]; then
      TMPDIR= chroot "$root" bash /usr/bin/mysql_install_db --rpm --cross-bootstrap --user=mysql --disable-log-bin \
        --skip-test-db
    fi
    [[ ! -x $root/usr/bin/mysql_install_db || -d $root/var/lib/mysql/mysql ]]
    chroot "$root" apt-get clean
  ' install "$tmp" "${PACKAGES[@]}" >&2
  log "packages installed after $((SECONDS - started)) s"

  chroot "$tmp" systemctl disable "${DISABLED_UNITS[@]}" >&2
  chroot "$tmp" systemctl mask "${MASKED_UNITS[@]}" >&2
  chroot "$tmp" systemctl enable systemd-networkd.service ssh.service >&2
  # Per-host identity comes at boot (`up`): no machine id, no host keys in the image.
  rm -f "$tmp"/etc/ssh/ssh_host_*
  : >"$tmp/etc/machine-id"
  rm -f "$tmp/var/lib/dbus/machine-id"
  rm -f "$tmp/usr/sbin/policy-rc.d"
  # No resolver: the hosts reach nothing beyond the bridge; names are in /etc/hosts.
  : >"$tmp/etc/resolv.conf"
  printf '%s\n' "$ROOTFS_VERSION $(rootfs_hash) built $(date -u +%FT%TZ) in $((SECONDS - started)) s" >"$tmp/.nochat-rootfs"
  mv -T "$tmp" "$dir"
  trap - EXIT
  exec 9>&-
  log "root filesystem ready: $dir (built in $((SECONDS - started)) s)"
  prune_rootfs "$dir"
  printf '%s\n' "$dir"
}

# ---- hosts --------------------------------------------------------------------------------------------

host_pairs() {
  local pair
  local -A seen=()
  for pair in $HOSTS; do
    [[ $pair =~ ^([a-zA-Z0-9][a-zA-Z0-9-]{0,30}):([0-9]{1,3})$ ]] || die "bad NOCHAT_OPS_HOSTS entry: $pair (want name:octet)"
    ((BASH_REMATCH[2] >= 2 && BASH_REMATCH[2] <= 254)) || die "$pair: the last octet must be 2..254 (.1 is this machine)"
    [[ -z ${seen[${BASH_REMATCH[1]}]:-} && -z ${seen[${BASH_REMATCH[2]}]:-} ]] || die "$pair: name or address twice"
    seen[${BASH_REMATCH[1]}]=1
    seen[${BASH_REMATCH[2]}]=1
    printf '%s %s\n' "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}"
  done
}

# The pid in a pid file if that process is still a systemd-nspawn.
running_pid() {
  local pidfile=$1 pid cmdline
  [[ -f $pidfile ]] || return 1
  pid=$(<"$pidfile")
  [[ $pid =~ ^[0-9]+$ && -r /proc/$pid/cmdline ]] || return 1
  cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ $cmdline == *systemd-nspawn* ]] || return 1
  printf '%s\n' "$pid"
}

ssh_opts() {
  printf '%s\n' -i "$KEY" -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
    -o LogLevel=ERROR -o ConnectTimeout=3
}

bridge_up() {
  if ! ip link show dev "$BRIDGE" >/dev/null 2>&1; then
    log "creating bridge $BRIDGE ($NET.1/24)"
    ip link add "$BRIDGE" type bridge
  fi
  ip addr replace "$NET.1/24" dev "$BRIDGE"
  ip link set dev "$BRIDGE" up
  printf '%s\n' "$BRIDGE" >"$STATE/bridge"
}

# The host's own root: an overlay on the cached image, else a copy.
prepare_root() {
  local rootfs=$1 dir=$2
  mkdir -p "$dir/upper" "$dir/work" "$dir/root"
  if [[ ${NOCHAT_OPS_OVERLAY:-1} != 0 ]] &&
    mount -t overlay overlay -o "lowerdir=$rootfs,upperdir=$dir/upper,workdir=$dir/work" "$dir/root" 2>/dev/null; then
    printf 'overlay\n' >"$dir/mode"
  else
    log "$(basename "$dir"): overlayfs not available here, copying the root filesystem"
    rmdir "$dir/root" "$dir/upper" "$dir/work"
    cp -a --reflink=auto "$rootfs" "$dir/root"
    printf 'copy\n' >"$dir/mode"
  fi
}

configure_host() {
  local name=$1 octet=$2 root=$3 other otheroctet
  printf '%s\n' "$name" >"$root/etc/hostname"
  {
    printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n'
    while read -r other otheroctet; do printf '%s\t%s\n' "$NET.$otheroctet" "$other"; done < <(host_pairs)
  } >"$root/etc/hosts"
  od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$root/etc/machine-id"
  printf '\n' >>"$root/etc/machine-id"
  rm -f "$root"/etc/ssh/ssh_host_*
  ssh-keygen -q -A -f "$root" >/dev/null
  install -d -m 0700 "$root/root/.ssh"
  install -m 0600 "$KEY.pub" "$root/root/.ssh/authorized_keys"
  # Overrides the distribution's DHCP configuration for host0 (same file name, /etc wins).
  cat >"$root/etc/systemd/network/80-container-host0.network" <<EOF
[Match]
Virtualization=container
Name=host0

[Network]
Address=$NET.$octet/24
LinkLocalAddressing=no
IPv6AcceptRA=no

# A default route without a gateway: Ansible's ansible_default_ipv4 (and \`ip route get\`) name host0 as on
# a real host, while nothing answers ARP for outside addresses, so nothing leaves the bridge.
[Route]
Destination=0.0.0.0/0
Scope=link
EOF
}

# Without systemd as PID 1 (no machined, no scopes) systemd-nspawn puts its supervisor/ and payload/
# cgroups under its own cgroup: start every host from a cgroup of its own, else two hosts' systemds
# share (and kill in) the same cgroups. Prints the directories it joined.
join_cgroup() {
  local leaf=$1 id ctrl path mnt dir
  while IFS=: read -r id ctrl path; do
    mnt=
    if [[ $ctrl == name=systemd && -d /sys/fs/cgroup/systemd ]]; then
      mnt=/sys/fs/cgroup/systemd
    elif [[ $id == 0 && -z $ctrl ]]; then
      if [[ $(stat -fc %T /sys/fs/cgroup) == cgroup2fs ]]; then
        mnt=/sys/fs/cgroup
      elif [[ -d /sys/fs/cgroup/unified ]]; then
        mnt=/sys/fs/cgroup/unified
      fi
    fi
    [[ -n $mnt ]] || continue
    dir=$mnt${path%/}/nochat-ops/$leaf
    if mkdir -p "$dir" && printf '%s\n' "$BASHPID" >"$dir/cgroup.procs"; then
      printf '%s\n' "$dir"
    else
      log "could not move into $dir"
    fi
  done </proc/self/cgroup
}

# The processes still in a host's cgroups (a container whose systemd-nspawn was killed keeps running).
cgroup_pids() {
  local file=$1 dir
  [[ -f $file ]] || return 0
  while read -r dir; do
    [[ -d $dir ]] && find "$dir" -name cgroup.procs -exec cat {} + 2>/dev/null
  done <"$file"
  return 0
}

kill_cgroups() {
  local file=$1 dir pid i
  [[ -f $file ]] || return 0
  for ((i = 0; i < 50; i++)); do
    [[ -n $(cgroup_pids "$file") ]] || return 0
    while read -r dir; do
      if [[ -f $dir/cgroup.kill ]]; then
        printf '1\n' >"$dir/cgroup.kill" 2>/dev/null || true
      fi
    done <"$file"
    for pid in $(cgroup_pids "$file"); do kill -KILL "$pid" 2>/dev/null || true; done
    sleep 0.1
  done
  log "processes left in $(xargs <"$file"): $(cgroup_pids "$file" | xargs)"
}

remove_cgroups() {
  local file=$1 dir
  [[ -f $file ]] || return 0
  while read -r dir; do
    [[ $dir == /sys/fs/cgroup/*/nochat-ops/* || $dir == /sys/fs/cgroup/nochat-ops/* ]] || continue
    [[ -d $dir ]] && { find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null || true; }
    rmdir "$(dirname "$dir")" 2>/dev/null || true
  done <"$file"
}

boot_host() {
  local name=$1 dir=$2 tag leaf
  tag=$(printf '%s' "$STATE" | sha256sum | cut -c1-8)
  leaf=$tag-$name
  log "$name: booting"
  # In the background, from its own cgroup, in its own session (setsid: it outlives this script); all
  # its output goes to the console log.
  (
    join_cgroup "$leaf" >"$dir/cgroups"
    # The machine name (the host side of the veth is vb-<machine>, shortened with a hash when long) is
    # tagged with the state directory: two sets of hosts may both have an "infra". The host's own name
    # comes from its /etc/hostname.
    exec setsid systemd-nspawn --quiet --boot --register=no --keep-unit --link-journal=no --console=read-only \
      --network-bridge="$BRIDGE" --resolv-conf=off --timezone=off -M "$name-${tag:0:4}" -D "$dir/root"
  ) </dev/null >>"$dir/console.log" 2>&1 8>&- 9>&- &
  local pid=$! i
  printf '%s\n' "$pid" >"$dir/pid"
  # Until the subshell has become systemd-nspawn, running_pid would take it for gone.
  for ((i = 0; i < 100; i++)); do
    running_pid "$dir/pid" >/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  running_pid "$dir/pid" >/dev/null || die "$name: systemd-nspawn did not start; see $dir/console.log"
}

# The state directory holds the key every host trusts: this user's own, 0700, or nothing. One that
# another user made (/tmp is everyone's: they could plant a key there) or may write is refused.
secure_state() {
  [[ -e $STATE || -L $STATE ]] || install -d -m 0700 "$STATE"
  check_state
}

check_state() {
  [[ -d $STATE && ! -L $STATE ]] || die "$STATE is not a directory"
  local owner mode
  read -r owner mode < <(stat -c '%u %a' "$STATE")
  [[ $owner == "$(id -u)" ]] || die "$STATE belongs to uid $owner, not to $(id -un): remove it or set NOCHAT_OPS_STATE"
  (((8#$mode & 8#022) == 0)) || die "$STATE is writable by others (mode $mode): remove it or set NOCHAT_OPS_STATE"
  chmod 0700 "$STATE"
  if [[ -e $KEY || -L $KEY ]]; then
    [[ -f $KEY && ! -L $KEY && $(stat -c %u "$KEY") == "$(id -u)" ]] || die "$KEY is not $(id -un)'s own file"
  fi
}

# up and down of one state directory take turns (fd 8; booted hosts don't inherit it).
lock_state() {
  secure_state
  exec 8>"$STATE/lock"
  if ! flock -n 8; then
    log "waiting for another up/down on $STATE"
    flock 8
  fi
}

cmd_up() {
  need_root
  need systemd-nspawn ssh ssh-keygen ip flock
  local rootfs started=$SECONDS name octet dir
  secure_state
  rootfs=$(cmd_rootfs)
  lock_state
  mkdir -p "$STATE/hosts"
  [[ -f $KEY ]] || ssh-keygen -q -t ed25519 -N '' -C "nochat-ops@$(hostname)" -f "$KEY"
  bridge_up
  while read -r name octet; do
    dir=$STATE/hosts/$name
    if running_pid "$dir/pid" >/dev/null; then
      log "$name: already running"
      continue
    fi
    teardown_host "$dir"
    mkdir -p "$dir"
    printf '%s\n' "$NET.$octet" >"$dir/ip"
    prepare_root "$rootfs" "$dir"
    configure_host "$name" "$octet" "$dir/root"
    boot_host "$name" "$dir"
  done < <(host_pairs)

  # Every pending host probed at once each round (a host still without its address costs a connect timeout).
  local -a opts pending left
  local -A probe=()
  mapfile -t opts < <(ssh_opts)
  mapfile -t pending < <(host_pairs | awk '{ print $1 }')
  local deadline=$((SECONDS + BOOT_TIMEOUT))
  while ((${#pending[@]})); do
    for name in "${pending[@]}"; do
      dir=$STATE/hosts/$name
      running_pid "$dir/pid" >/dev/null || die "$name: systemd-nspawn exited; see $dir/console.log"
      ssh "${opts[@]}" "root@$(<"$dir/ip")" true </dev/null >/dev/null 2>&1 8>&- &
      probe[$name]=$!
    done
    left=()
    for name in "${pending[@]}"; do
      if wait "${probe[$name]}"; then
        log "$name: sshd answers ($((SECONDS - started)) s)"
      else
        left+=("$name")
      fi
    done
    pending=("${left[@]}")
    ((${#pending[@]})) || break
    ((SECONDS < deadline)) || die "not reachable over SSH after ${BOOT_TIMEOUT} s: ${pending[*]} (console logs in $STATE/hosts)"
    sleep 1
  done
  log "hosts up in $((SECONDS - started)) s"
  printf 'export NOCHAT_OPS_SSH_KEY=%s\n' "$KEY"
}

# Stop one host (orderly poweroff on SIGTERM, SIGKILL after 30 s), unmount its root, remove its directory.
teardown_host() {
  local dir=$1 pid i
  [[ -d $dir ]] || return 0
  if pid=$(running_pid "$dir/pid"); then
    log "$(basename "$dir"): powering off"
    # systemd-nspawn turns each SIGTERM into an orderly poweroff request to the container's systemd,
    # which ignores it while it is still starting up: asked again every 5 s.
    for ((i = 0; i < 300; i++)); do
      ((i % 50)) || kill -TERM "$pid" 2>/dev/null || true
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      log "$(basename "$dir"): still running after 30 s, killing it"
      kill -KILL "$pid" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
      done
    fi
  fi
  kill_cgroups "$dir/cgroups"
  remove_cgroups "$dir/cgroups"
  if mountpoint -q "$dir/root"; then
    umount "$dir/root" 2>/dev/null || umount -l "$dir/root"
  fi
  rm -rf "$dir"
}

cmd_down() {
  local dir bridge
  if [[ -e $STATE || -L $STATE ]]; then check_state; fi
  if [[ -d $STATE/hosts ]]; then
    need_root
    lock_state
    for dir in "$STATE"/hosts/*/; do
      [[ -d $dir ]] && teardown_host "${dir%/}" &
    done
    wait
    rmdir "$STATE/hosts" 2>/dev/null || true
  fi
  for bridge in "$(cat "$STATE/bridge" 2>/dev/null || true)" "$BRIDGE"; do
    [[ -n $bridge ]] || continue
    ip link show dev "$bridge" >/dev/null 2>&1 || continue
    need_root
    # Another set of hosts (another state directory) may share it: kept while anything is attached.
    if [[ -n $(ip -o link show master "$bridge" 2>/dev/null) ]]; then
      log "keeping bridge $bridge: other hosts are attached to it"
      continue
    fi
    log "deleting bridge $bridge"
    ip link del "$bridge"
  done
  rm -f "$STATE/bridge"
}

host_ip() {
  local name=$1 n o
  if [[ -f $STATE/hosts/$name/ip ]]; then
    cat "$STATE/hosts/$name/ip"
    return
  fi
  while read -r n o; do
    [[ $n == "$name" ]] && printf '%s\n' "$NET.$o" && return
  done < <(host_pairs)
  die "unknown host: $name"
}

cmd_ssh() {
  (($#)) || die "usage: hosts.sh ssh HOST [COMMAND…]"
  local ip
  local -a opts
  ip=$(host_ip "$1")
  shift
  mapfile -t opts < <(ssh_opts)
  exec ssh "${opts[@]}" "root@$ip" "$@"
}

cmd_status() {
  local dir name pid state
  local -a opts
  mapfile -t opts < <(ssh_opts)
  printf 'rootfs  %s%s\n' "$(rootfs_dir)" "$([[ -f $(rootfs_dir)/.nochat-rootfs ]] || printf ' (not built)')"
  if ip link show dev "$BRIDGE" >/dev/null 2>&1; then
    printf 'bridge  %s %s\n' "$BRIDGE" "$(ip -br addr show dev "$BRIDGE" | awk '{ $1 = ""; $2 = ""; print }' | xargs)"
  else
    printf 'bridge  %s (absent)\n' "$BRIDGE"
  fi
  for dir in "$STATE"/hosts/*/; do
    [[ -d $dir ]] || continue
    dir=${dir%/}
    name=$(basename "$dir")
    if pid=$(running_pid "$dir/pid"); then
      state=$(timeout 10 ssh "${opts[@]}" "root@$(<"$dir/ip")" systemctl is-system-running </dev/null 2>/dev/null || true)
      printf '%-10s %-15s pid %-8s %s %s\n' "$name" "$(<"$dir/ip")" "$pid" "$(cat "$dir/mode" 2>/dev/null)" \
        "${state:-unreachable}"
    else
      printf '%-10s %-15s stopped\n' "$name" "$(cat "$dir/ip" 2>/dev/null)"
    fi
  done
}

usage() { sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0" >&2; }

case ${1:-} in
  rootfs) cmd_rootfs ;;
  up) cmd_up ;;
  down) cmd_down ;;
  ssh)
    shift
    cmd_ssh "$@"
    ;;
  status) cmd_status ;;
  -h | --help | help) usage ;;
  *)
    usage
    exit 2
    ;;
esac
