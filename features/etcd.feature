@etcd
Feature: team state on etcd: plan and apply from any machine, one lock for the whole team
  With a state "etcd" block the state lives in a real etcd cluster (three
  members on 127.0.0.1-3 here), not in a folder: two working folders with
  the same file and no local state ("machines" a and b) share the records,
  the hive tokens and one lock. The lock is an etcd lease the running
  command keeps alive, so a holder killed with -9 frees it by itself.

  Background:
    Given a three-member etcd cluster on 127.0.0.1-3 as "ETCD"
    And a local fleet destroyed from "a" and "p"
    And a file "a/rbee.hcl" with:
      """
      state "etcd" {
        endpoints = [${ETCD_ENDPOINTS}]
        prefix    = "team/prod"
      }
      node "local" {
        connection  = "local"
        hive_port   = ${HIVE_PORT}
        install_dir = "${DIR}/node"
      }
      model "tiny" { source = "synth:tiny" }
      pool "chat" {
        model    = "tiny"
        nodes    = ["local"]
        replicas = 1
        slots    = 1
        ctx_size = 256
      }
      """
    And I run "mkdir b && cp a/rbee.hcl b/"

  Scenario: two machines see the same plan; one applies while the other waits, then sees the result
    When I run "cd a && rbee plan"
    Then stdout contains "Plan: 3 to add, 0 to change, 0 to destroy."
    When I run "cd b && rbee plan"
    Then stdout contains "Plan: 3 to add, 0 to change, 0 to destroy."
    Given a named pipe "a.in" held open
    When I start "cd a && exec rbee apply < ${PIPE_A}" in the background as "A"
    Then "A" prints "Enter a value"
    When I run "cd b && rbee apply -auto-approve -lock-timeout 1s"
    Then the exit code is 1
    And stderr contains "the state is locked by"
    And stderr contains "operation \"apply\""
    When I start "cd b && rbee apply -auto-approve -lock-timeout 3m" in the background as "B"
    And I write "yes" to the pipe "a.in"
    Then "A" prints "Apply complete! 3 added, 0 changed, 0 destroyed."
    And "B" exits
    And "B" prints "Apply complete! 0 added, 0 changed, 0 destroyed."
    When I run "cd b && rbee state list"
    Then stdout contains "worker.chat[local/0]"
    When I run "cd b && rbee plan -detailed-exitcode"
    Then the exit code is 0
    And I run "test ! -e a/.rbee/state && test ! -e b/.rbee/state"
    And the command succeeds

  Scenario: the holder is killed with -9 and the other machine gets the lock without rbee state unlock
    Given a named pipe "a.in" held open
    When I start "cd a && exec rbee apply < ${PIPE_A}" in the background as "A"
    Then "A" prints "Enter a value"
    When I run "cd b && rbee plan -lock-timeout 1s"
    Then the exit code is 1
    And stderr contains "frees itself within 5s"
    When I kill -9 "A"
    And I run "cd b && rbee apply -auto-approve -lock-timeout 30s"
    Then the command succeeds
    And stdout contains "Apply complete! 3 added, 0 changed, 0 destroyed."

  Scenario: the cluster loses one member mid-apply and the apply completes
    When I start "cd a && exec rbee apply -auto-approve" in the background as "A"
    Then "A" prints "node.local: Creating..."
    When etcd member 1 of "ETCD" is killed
    Then "A" prints "Apply complete! 3 added, 0 changed, 0 destroyed."
    When I run "cd b && rbee plan -detailed-exitcode"
    Then the exit code is 0

  Scenario: the drift check runs from a fresh clone of the configuration on a machine that never applied
    When I run "cd a && rbee apply -auto-approve"
    Then the command succeeds
    When I run "mkdir c && cp a/rbee.hcl c/ && cd c && rbee plan -refresh-only -detailed-exitcode -lock=false"
    Then the exit code is 0
    When the hive with pid file "node/hive.pid" is stopped
    And I run "cd c && rbee plan -refresh-only -detailed-exitcode -lock=false"
    Then the exit code is 2
    And stdout contains "node.local"

  Scenario: an etcd that does not answer fails the command, naming the endpoints
    Given a file "down/rbee.hcl" with:
      """
      state "etcd" {
        endpoints = ["http://127.0.0.1:9"]
      }
      node "local" { connection = "local" }
      """
    When I run "cd down && rbee state list"
    Then the exit code is 1
    And stderr contains "http://127.0.0.1:9"
    And stderr contains "down or has lost quorum"

  Scenario: migrate Pebble → etcd → Pebble leaves an identical state
    Given a file "p/rbee.hcl" with:
      """
      node "local" {
        connection  = "local"
        hive_port   = ${HIVE_PORT}
        install_dir = "${DIR}/node"
      }
      model "tiny" { source = "synth:tiny" }
      pool "chat" {
        model    = "tiny"
        nodes    = ["local"]
        replicas = 1
        slots    = 1
        ctx_size = 256
      }
      """
    When I run "cd p && rbee apply -auto-approve"
    Then the command succeeds
    When I run "cd p && rbee state migrate --to-config ../a/rbee.hcl"
    Then the command succeeds
    And stdout contains "Copied 3 resources"
    When I run "cd p && rbee state migrate --to-config ../a/rbee.hcl"
    Then the exit code is 1
    And stderr contains "already holds a state"
    When I run "cd b && rbee plan -detailed-exitcode"
    Then the exit code is 0
    When I run "mkdir q && cp p/rbee.hcl q/ && cd b && rbee state migrate --to-config ../q/rbee.hcl"
    Then the command succeeds
    And the Pebble states in "p/.rbee" and "q/.rbee" are identical
    When I run "cd q && rbee plan -detailed-exitcode"
    Then the exit code is 0
