@apply
Feature: a pool's port fixes where its workers listen
  With port = P in a pool, replica i on each node listens on exactly P+i: the
  hive binds that port or refuses (409 PORT_IN_USE, naming who holds it),
  never silently picking another one.

  Background:
    Given 1 free loopback port as "HIVE_PORT"
    And 2 free loopback ports as "POOL_PORT"
    And a file "rbee.hcl" with:
      """
      node "local" {
        connection = "local"
        hive_port  = ${HIVE_PORT}
      }
      model "tiny" { source = "synth:tiny" }
      pool "chat" {
        model    = "tiny"
        nodes    = ["local"]
        replicas = 2
        slots    = 1
        ctx_size = 256
        port     = ${POOL_PORT}
      }
      """

  Scenario: replica i listens on port + i, and a new port replaces the workers
    When I run "rbee apply -auto-approve"
    Then the command succeeds
    When I run "rbee state list"
    Then stdout contains "tiny, http://127.0.0.1:${POOL_PORT}, backend cpu"
    When I run "rbee state show 'worker.chat[local/1]'"
    Then stdout contains "\"url\": \"http://127.0.0.1:${POOL_PORT_1}\""
    When I run "curl -sf http://127.0.0.1:${POOL_PORT_1}/health"
    Then the command succeeds
    Given 2 free loopback ports as "NEW_PORT"
    And a file "rbee.hcl" with:
      """
      node "local" {
        connection = "local"
        hive_port  = ${HIVE_PORT}
      }
      model "tiny" { source = "synth:tiny" }
      pool "chat" {
        model    = "tiny"
        nodes    = ["local"]
        replicas = 2
        slots    = 1
        ctx_size = 256
        port     = ${NEW_PORT}
      }
      """
    When I run "rbee plan -detailed-exitcode"
    Then the exit code is 2
    And stdout contains "worker.chat[local/0]"
    And stdout contains "port ${POOL_PORT} → ${NEW_PORT}"
    And stdout contains "port ${POOL_PORT_1} → ${NEW_PORT_1}"
    When I run "rbee apply -auto-approve"
    Then the command succeeds
    When I run "rbee state show 'worker.chat[local/0]'"
    Then stdout contains "\"url\": \"http://127.0.0.1:${NEW_PORT}\""

  Scenario: a busy port fails the worker with a message naming it
    Given another program listens on 127.0.0.1:"${POOL_PORT_1}"
    When I run "rbee apply -auto-approve"
    Then the exit code is 1
    And output contains "PORT_IN_USE"
    And output contains "cannot listen on port ${POOL_PORT_1}"
    When I run "rbee state show 'worker.chat[local/0]'"
    Then stdout contains "\"url\": \"http://127.0.0.1:${POOL_PORT}\""
