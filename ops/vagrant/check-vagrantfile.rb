#!/usr/bin/ruby
# frozen_string_literal: true

# Checks what `vagrant validate` does not: that the files the Vagrantfile names exist (the Ansible
# provisioner only looks for them when it runs), and that its machines, groups and addresses are the
# ones ops/ansible/inventories/vagrant/hosts.yml and site.yml use.
#
#   ruby ops/vagrant/check-vagrantfile.rb        (from anywhere; exits 1 on the first failed check)
#
# It loads the Vagrantfile through Vagrant's own library, so it sees the configuration `vagrant up`
# would use (NOCHAT_GATEWAYS unset: the inventory's two gateways). No provider or VM is needed.

require "pathname"
require "yaml"
require "vagrant"

repo = Pathname.new(File.expand_path("../..", __dir__))
failures = []
check = lambda do |ok, what|
  puts "#{ok ? 'ok  ' : 'FAIL'} #{what}"
  failures << what unless ok
end

ENV.delete("NOCHAT_GATEWAYS")
ENV.delete("NOCHAT_VAGRANT_NET")
env = Vagrant::Environment.new(cwd: repo.to_s, ui_class: Vagrant::UI::Silent)
machines = env.machine_names.map(&:to_s)
configs = machines.to_h do |name|
  [name, env.vagrantfile.machine_config(name.to_sym, nil, env.boxes, nil, false)[:config]]
end

# The provisioners and the files they name.
provisioned = configs.select { |_, c| c.vm.provisioners.any? { |p| p.type == :ansible } }
check.call(provisioned.keys == [machines.last], "only the last machine (#{machines.last}) runs the Ansible provisioner")
ansible = provisioned.values.flat_map { |c| c.vm.provisioners.select { |p| p.type == :ansible } }.map(&:config)
ansible.each do |a|
  check.call(a.limit == "all", "the provisioner's limit is \"all\"")
  files = {
    "playbook" => a.playbook, "config_file" => a.config_file, "inventory_path" => a.inventory_path,
    "galaxy_role_file" => a.galaxy_role_file, "vault_password_file" => a.vault_password_file,
    "extra_vars file" => a.extra_vars.is_a?(String) ? a.extra_vars.delete_prefix("@") : nil
  }.compact
  check.call(files.key?("playbook") && files.key?("config_file"), "the provisioner names a playbook and an ansible.cfg")
  files.each do |option, path|
    full = Pathname.new(path).expand_path(repo)
    check.call(full.file? || (option == "inventory_path" && full.exist?), "#{option} #{full.relative_path_from(repo)} exists")
  end

  # Groups and addresses: the same as the vagrant inventory's.
  inventory = YAML.safe_load(repo.join("ops/ansible/inventories/vagrant/hosts.yml").read)["all"]
  inv_groups = inventory["children"].to_h { |g, v| [g, (v["hosts"] || {}).keys.sort] }
  vg_groups = a.groups.reject { |g, _| g.include?(":") }.transform_values { |v| Array(v).sort }
  check.call(vg_groups == inv_groups, "the provisioner's groups equal the vagrant inventory's (#{inv_groups.keys.join(', ')})")
  check.call(inventory["hosts"].keys.sort == machines.sort, "the inventory's hosts are the Vagrantfile's machines")
  inventory["hosts"].each do |host, vars|
    ip = configs[host]&.vm&.networks&.find { |type, _| type == :private_network }&.dig(1, :ip)
    check.call(ip == vars["ansible_host"], "#{host}'s private network address is #{vars['ansible_host']}")
    check.call(a.host_vars.dig(host, "private_address") == vars["ansible_host"], "#{host}'s private_address is its address")
  end

  # Every group a play in the playbook targets is one the provisioner defines.
  plays = YAML.safe_load(Pathname.new(a.playbook).expand_path(repo).read)
  targets = plays.flat_map { |play| play["hosts"].to_s.split(/[:,]/) }.map(&:strip).reject(&:empty?).uniq - ["all"]
  check.call((targets - vg_groups.keys).empty?, "every group site.yml targets is defined (#{targets.join(', ')})")
end
check.call(!ansible.empty?, "the Vagrantfile has an Ansible provisioner")

http = configs["infra"]&.vm&.networks&.find { |type, o| type == :forwarded_port && o[:guest] == 80 }
check.call(http && http[1][:host] == 8080, "infra forwards guest port 80 to host port 8080")

if failures.empty?
  puts "Vagrantfile: all checks passed"
else
  warn "Vagrantfile: #{failures.size} check(s) failed"
  exit 1
end
