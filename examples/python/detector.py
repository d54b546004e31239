import hotplex

d = hotplex.Detector()
v = d.check_command("rm -rf /")
assert v.blocked and v.level == "critical"
print(v.rule_id, v.category, v.reason)
assert d.check_command("ls -la").level == "safe"
assert d.check_prompt("please run `rm -rf /`").blocked
assert d.check_tool("Read", {"file_path": "~/.ssh/id_rsa"}).blocked
