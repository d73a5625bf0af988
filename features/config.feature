@config
Feature: rbee validate and rbee fmt check and tidy the configuration
  Problems are reported all at once, like Terraform does: file:line:col, the
  offending line, and a sentence saying what is wrong and what is allowed.

  Scenario: the example configuration is valid
    Given I run "cp ${RBEE_EXAMPLE} rbee.hcl"
    When I run "rbee validate"
    Then the command succeeds
    And stdout contains "Success! The configuration is valid (1 node, 1 model, 1 pool)."

  Scenario: a syntax error is reported with its line and column
    Given a file "rbee.hcl" with:
      """
      node "local" {
        connection = "local"
        hive_port  =
      }
      """
    When I run "rbee validate"
    Then the exit code is 1
    And stderr contains "Error: rbee.hcl:3:"
    And stderr contains "3 |   hive_port  ="

  Scenario: every problem is reported at once, each at its place
    Given a file "rbee.hcl" with:
      """
      node "gpu1" {
        host      = "10.0.0.5"
        hive_port = 80
        identity  = "/nonexistent/id_ed25519"
      }
      node "gpu1" { host = "10.0.0.6" }
      node "GPU_2" { connection = "local" }
      model "tiny" { source = "tiny.gguf" }
      pool "chat" {
        model    = "tinyy"
        nodes    = ["gpu1", "gpu9"]
        replicas = -1
        backend  = "rocm"
      }
      """
    When I run "rbee validate"
    Then the exit code is 1
    And stderr contains "Error: rbee.hcl:3:15: Invalid port"
    And stderr contains "allowed: 1024-65535"
    And stderr contains "Error: rbee.hcl:4:15: Identity file not found"
    And stderr contains "Error: rbee.hcl:6:6: Duplicate node"
    And stderr contains "Error: rbee.hcl:7:6: Invalid node name"
    And stderr contains "Error: rbee.hcl:8:25: Invalid model source"
    And stderr contains "Error: rbee.hcl:10:14: Unknown model"
    And stderr contains "Did you mean \"tiny\"?"
    And stderr contains "Error: rbee.hcl:11:23: Unknown node"
    And stderr contains "Error: rbee.hcl:12:14: Invalid replicas"
    And stderr contains "Error: rbee.hcl:13:14: Unknown backend"
    And stderr contains "allowed: cpu, cuda, metal"
    And stderr contains "Error: the configuration has 9 errors"

  Scenario: a node's known_hosts file must exist
    Given a file "rbee.hcl" with:
      """
      node "gpu1" {
        host        = "10.0.0.5"
        known_hosts = "${DIR}/gpu1_known_hosts"
      }
      """
    When I run "rbee validate"
    Then the exit code is 1
    And stderr contains "Error: rbee.hcl:3:17: Known hosts file not found"
    And stderr contains "ssh-keyscan -p 22 10.0.0.5"
    Given a file "gpu1_known_hosts" with:
      """
      """
    When I run "rbee validate"
    Then the command succeeds

  Scenario: two nodes on one machine cannot share a hive port
    Given a file "rbee.hcl" with:
      """
      node "local" { connection = "local" }
      node "loop" {
        host                     = "127.0.0.1"
        insecure_ignore_host_key = true
      }
      """
    When I run "rbee validate"
    Then the exit code is 1
    And stderr contains "Error: rbee.hcl:2:1: Conflicting ports"
    And stderr contains "hive_port 9200 of node \"loop\" is already used by the hive_port of node \"local\""
    And stderr contains "Warning: rbee.hcl:4:30: Host key checking disabled"

  Scenario: variables come from defaults, RBEE_VAR_ and -var, in that order
    Given a file "rbee.hcl" with:
      """
      variable "ctx" { default = 1024 }
      node "local" { connection = "local" }
      model "tiny" { source = "synth:tiny" }
      pool "chat" {
        model    = "tiny"
        nodes    = ["local"]
        ctx_size = var.ctx
      }
      """
    When I run "rbee plan -refresh=false -json"
    Then stdout contains "\"ctx_size\":1024"
    When I run "RBEE_VAR_ctx=2048 rbee plan -refresh=false -json"
    Then stdout contains "\"ctx_size\":2048"
    When I run "RBEE_VAR_ctx=2048 rbee plan -refresh=false -json -var ctx=4096"
    Then stdout contains "\"ctx_size\":4096"
    When I run "rbee validate -var nope=1"
    Then the exit code is 1
    And stderr contains "no variable \"nope\" block exists"

  Scenario: a folder of *.hcl files is one configuration
    Given a file "fleet/nodes.hcl" with:
      """
      node "local" { connection = "local" }
      """
    And a file "fleet/pools.hcl" with:
      """
      model "tiny" { source = "synth:tiny" }
      pool "chat" {
        model = "tiny"
        nodes = ["local"]
      }
      """
    When I run "rbee validate --config fleet"
    Then the command succeeds
    And stdout contains "(1 node, 1 model, 1 pool)"

  Scenario: fmt -check and -diff report unformatted files, fmt rewrites them
    Given a file "rbee.hcl" with:
      """
      node "local" {
      connection="local"
          hive_port = 9200
      }
      """
    When I run "rbee fmt -check -diff"
    Then the exit code is 3
    And stdout contains "rbee.hcl"
    And stdout contains "-connection=\"local\""
    And stdout contains "+  connection = \"local\""
    And stdout contains "+  hive_port  = 9200"
    And the file "rbee.hcl" contains "connection=\"local\""
    When I run "rbee fmt"
    Then the command succeeds
    And the file "rbee.hcl" contains "  connection = \"local\"\n  hive_port  = 9200"
    When I run "rbee fmt -check"
    Then the command succeeds
    And stdout does not contain "rbee.hcl"

  Scenario: fmt refuses to touch a file with syntax errors
    Given a file "rbee.hcl" with:
      """
      node "local" {
      """
    When I run "rbee fmt"
    Then the exit code is 1
    And stderr contains "rbee.hcl:1:"

  Scenario: locals name a value once; a misspelt one is an error at its line
    Given a file "rbee.hcl" with:
      """
      variable "ctx" { default = 512 }
      locals {
        nodes = ["local"]
        ctx   = var.ctx * 2
      }
      node "local" { connection = "local" }
      model "tiny" { source = "synth:tiny" }
      pool "chat" {
        model    = "tiny"
        nodes    = local.nodes
        ctx_size = local.ctx
      }
      """
    When I run "rbee plan -refresh=false"
    Then the command succeeds
    And stdout contains "+ worker.chat[local/0]: start tiny (cpu, ctx_size 1024"
    Given a file "rbee.hcl" with:
      """
      locals { nodes = ["local"] }
      node "local" { connection = "local" }
      model "tiny" { source = "synth:tiny" }
      pool "chat" {
        model = "tiny"
        nodes = local.node
      }
      """
    When I run "rbee validate"
    Then the exit code is 1
    And stderr contains "Error: rbee.hcl:6:11: Undefined local value"
    And stderr contains "Did you mean \"nodes\"?"

  Scenario: a file nested 70,000 deep is refused at its place, without a crash
    Given a file "rbee.hcl" with repetitions:
      """
      locals { x = {{[ * 70000}}{{] * 70000}} }
      """
    When I run "rbee validate"
    Then the exit code is 1
    And stderr contains "Error: rbee.hcl:1:113: Nested too deeply"
    And stderr contains "at most 100 levels"
    And stderr does not contain "stack overflow"
    Given a file "rbee.hcl" with repetitions:
      """
      locals { x = {{( * 70000}}1{{) * 70000}} }
      """
    When I run "rbee validate"
    Then the exit code is 1
    And stderr contains "Error: rbee.hcl:1:113: Nested too deeply"
    Given a file "rbee.hcl" with repetitions:
      """
      locals { x = {{! * 70000}}true }
      """
    When I run "rbee validate"
    Then the exit code is 1
    And stderr contains "Error: rbee.hcl:1:1014: Expression too long"
    And stderr contains "at most 1000 operators"
    When I run "rbee fmt"
    Then the exit code is 1
    And stderr contains "Error: rbee.hcl:1:1014: Expression too long"

  Scenario: a configuration over 2 MiB is refused before it is parsed
    Given a file "rbee.hcl" with repetitions:
      """
      node "local" { connection = "local" }
      # {{padding * 300000}}
      """
    When I run "rbee validate"
    Then the exit code is 1
    And stderr contains "Error: rbee.hcl:1:1: Configuration too large"
    And stderr contains "rbee.hcl is 2100041 bytes; a configuration may hold at most 2097152 (2.0 MiB)"

  Scenario: a file with old-Mac CR line endings reads as its lines, not as nothing
    Given a file "rbee.hcl" with CR line ends:
      """
      # the fleet
      node "local" {
        connection = "local"
        hive_port  = 80
      }
      """
    When I run "rbee validate"
    Then the exit code is 1
    And stderr contains "Error: rbee.hcl:4:16: Invalid port"
    And stderr contains "4 |   hive_port  = 80"
    And stderr contains "Warning: rbee.hcl:1:1: Old Mac line endings"
    Given a file "rbee.hcl" with CR line ends:
      """
      # the fleet
      node "local" {
        connection = "local"
      }
      """
    When I run "rbee validate"
    Then the command succeeds
    And stdout contains "(1 node, 0 models, 0 pools)"
    When I run "rbee fmt"
    Then the command succeeds
    And the file "rbee.hcl" has no CR
    When I run "rbee validate"
    Then the command succeeds
    And stderr does not contain "Old Mac line endings"

  Scenario: a UTF-16 file is refused, not read as an empty fleet
    Given a file "rbee.hcl" in UTF-16 with:
      """
      node "local" { connection = "local" }
      """
    When I run "rbee validate"
    Then the exit code is 1
    And stderr contains "Error: rbee.hcl:1:1: File is UTF-16 or UTF-32"
    And stderr contains "save the file as UTF-8"

  Scenario: oversize values are refused at their line, naming the limit
    Given a file "rbee.hcl" with repetitions:
      """
      node "gpu1" {
        host        = "{{a * 1048576}}"
        user        = "{{u * 5000}}"
        install_dir = "/{{d * 8192}}"
        env = {
          BIG = "{{v * 204800}}"
        }
      }
      node "gpu2" { host = "{{b * 64}}.example.com" }
      """
    When I run "rbee validate"
    Then the exit code is 1
    And stderr contains "Error: rbee.hcl:2:17: Invalid host"
    And stderr contains "a DNS name has at most 253"
    And stderr contains "Error: rbee.hcl:3:17: Invalid user"
    And stderr contains "a POSIX login name has at most 32"
    And stderr contains "Error: rbee.hcl:4:17: Invalid install_dir"
    And stderr contains "a path has at most 4096"
    And stderr contains "Error: rbee.hcl:6:5: Environment value too long"
    And stderr contains "at most 32.0 KiB per value"
    And stderr contains "Error: rbee.hcl:5:9: Environment too large"
    And stderr contains "at most 128.0 KiB in all"
    And stderr contains "Error: rbee.hcl:9:22: Invalid host"
    And stderr contains "has a label of 64 characters"
    And stderr contains "Error: the configuration has 6 errors"

  Scenario: the gateway, watch and state blocks are checked like the rest
    Given a file "rbee.hcl" with:
      """
      node "local" {
        connection = "local"
        file_roots = ["/models", "models"]
      }
      gateway {
        listen = "0.0.0.0:8080"
        queue  = 200000
      }
      watch { allow_destroy = true }
      state "etcd" {
        endpoints = ["http://10.0.0.9:2379"]
      }
      state "consul" {}
      """
    When I run "rbee validate"
    Then the exit code is 1
    And stderr contains "Error: rbee.hcl:3:28: Invalid file_roots"
    And stderr contains "Error: rbee.hcl:6:12: Missing api_keys_file"
    And stderr contains "Error: rbee.hcl:7:12: Invalid queue"
    And stderr contains "Error: rbee.hcl:11:16: Invalid endpoint"
    And stderr contains "set insecure = true"
    And stderr contains "Error: rbee.hcl:13:1: Duplicate state block"
    Given a file "rbee.hcl" with:
      """
      node "local" {
        connection = "local"
        file_roots = ["/models"]
      }
      gateway {}
      watch { allow_destroy = true }
      state "etcd" {
        endpoints = ["https://etcd1:2379"]
      }
      """
    When I run "rbee validate"
    Then the command succeeds

  Scenario: locals that double a string, or a for expression, cannot exhaust memory
    Given a file "rbee.hcl" with repetitions:
      """
      locals {
        s0 = "{{x * 1000}}"
        s1 = "${local.s0}${local.s0}"
        s2 = "${local.s1}${local.s1}"
        s3 = "${local.s2}${local.s2}"
        s4 = "${local.s3}${local.s3}"
        s5 = "${local.s4}${local.s4}"
        s6 = "${local.s5}${local.s5}"
        s7 = "${local.s6}${local.s6}"
        s8 = "${local.s7}${local.s7}"
        s9 = "${local.s8}${local.s8}"
        s10 = "${local.s9}${local.s9}"
        s11 = "${local.s10}${local.s10}"
        s12 = "${local.s11}${local.s11}"
        s13 = "${local.s12}${local.s12}"
        s14 = "${local.s13}${local.s13}"
        s15 = "${local.s14}${local.s14}"
        s16 = "${local.s15}${local.s15}"
        s17 = "${local.s16}${local.s16}"
        s18 = "${local.s17}${local.s17}"
        s19 = "${local.s18}${local.s18}"
        s20 = "${local.s19}${local.s19}"
        s21 = "${local.s20}${local.s20}"
        s22 = "${local.s21}${local.s21}"
        s23 = "${local.s22}${local.s22}"
        s24 = "${local.s23}${local.s23}"
        s25 = "${local.s24}${local.s24}"
        s26 = "${local.s25}${local.s25}"
        s27 = "${local.s26}${local.s26}"
        s28 = "${local.s27}${local.s27}"
        s29 = "${local.s28}${local.s28}"
        s30 = "${local.s29}${local.s29}"
        s31 = "${local.s30}${local.s30}"
        s32 = "${local.s31}${local.s31}"
        s33 = "${local.s32}${local.s32}"
        s34 = "${local.s33}${local.s33}"
        s35 = "${local.s34}${local.s34}"
        s36 = "${local.s35}${local.s35}"
        s37 = "${local.s36}${local.s36}"
        s38 = "${local.s37}${local.s37}"
        s39 = "${local.s38}${local.s38}"
        s40 = "${local.s39}${local.s39}"
      }
      node "local" { connection = "local" }
      """
    When I run "rbee validate"
    Then the exit code is 1
    And stderr contains "Error: rbee.hcl:11:8: Value too large"
    And stderr contains "local.s9 is more than 256.0 KiB"
    And stderr contains "Error: the configuration has 1 error"
    Given a file "rbee.hcl" with:
      """
      locals {
        a = [1, 2, 3]
        b = [for x in local.a : [for y in local.a : y]]
      }
      """
    When I run "rbee validate"
    Then the exit code is 1
    And stderr contains "Error: rbee.hcl:3:8: Unsupported for expression"

  @watch
  Scenario: rbee watch survives a save nested 70,000 deep and keeps the fleet
    Given a watched local fleet with 1 replica
    And the daemon runs with "--interval 2s"
    Then the local hive comes to run 1 ready worker of pool "chat"
    When I save "rbee.hcl" by rename with repetitions:
      """
      locals { x = {{[ * 70000}}{{] * 70000}} }
      """
    Then the daemon status "config.valid" becomes "false"
    And the daemon status "last_error.text" contains "rbee.hcl:1:113: Nested too deeply"
    And the daemon makes 1 more passes
    And the local hive comes to run 1 ready worker of pool "chat"
