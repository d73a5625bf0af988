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
