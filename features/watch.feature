@watch
Feature: rbee watch keeps the fleet equal to the file
  A real `rbee watch` daemon watches rbee.hcl, plans and applies on every
  save and heals drift on a short timer. The fleet is real: a hive on this
  machine (installed by the daemon's apply under the scenario folder) runs
  llama.cpp workers on the generated tiny model. Nobody types `rbee apply`
  unless a scenario says so.

  Background:
    Given a watched local fleet with 1 replica

  Scenario: an edit in place adds a worker without any command
    Given the daemon runs with "--interval 2s"
    Then the local hive comes to run 1 ready worker of pool "chat"
    And the daemon status "last_apply.ok" becomes "true"
    When I edit rbee.hcl in place to 2 replicas
    Then the local hive comes to run 2 ready workers of pool "chat"
    And the daemon status "last_apply.trigger" becomes "file"
    And the daemon status "last_apply.added" is "1"
    And the daemon output contains "worker.chat[local/1]: Creation complete"
    And the daemon metrics contain "rbee_watch_reconciles_total{trigger=\"file\"} 1"
    And the daemon metrics contain "rbee_watch_workers{state=\"idle\"} 2"

  Scenario: a save by rename is picked up
    Given the daemon runs with "--interval 1m"
    Then the local hive comes to run 1 ready worker of pool "chat"
    When I save rbee.hcl by rename with 2 replicas
    Then the local hive comes to run 2 ready workers of pool "chat"
    And the daemon status "last_plan.trigger" becomes "file"

  Scenario: files added to and removed from a watched folder count
    Given the daemon runs with "--config . --interval 1m --allow-destroy"
    Then the local hive comes to run 1 ready worker of pool "chat"
    Given a file "more.hcl" with:
      """
      pool "extra" {
        model    = "tiny"
        nodes    = ["local"]
        replicas = 1
        slots    = 1
        ctx_size = 256
      }
      """
    Then the local hive comes to run 1 ready worker of pool "extra"
    When I run "rm more.hcl"
    Then the local hive comes to run 0 ready workers of pool "extra"
    And the local hive comes to run 1 ready worker of pool "chat"
    And the daemon status "last_apply.destroyed" becomes "1"

  Scenario: without --allow-destroy the daemon reports a deleting plan and deletes nothing
    Given the daemon runs with "--config . --interval 1m"
    Then the local hive comes to run 1 ready worker of pool "chat"
    Given a file "more.hcl" with:
      """
      pool "extra" {
        model    = "tiny"
        nodes    = ["local"]
        replicas = 1
        slots    = 1
        ctx_size = 256
      }
      """
    Then the local hive comes to run 1 ready worker of pool "extra"
    When I run "rm more.hcl"
    Then the daemon status "last_error.stage" becomes "approval"
    And the local hive comes to run 1 ready worker of pool "extra"
    When I run "rbee plan -detailed-exitcode -lock=false --config ."
    Then the exit code is 2
    And stdout contains "- worker.extra[local/0]"

  Scenario: an invalid edit is reported and tears nothing down; the fix is applied
    Given the daemon runs with "--interval 2s"
    Then the local hive comes to run 1 ready worker of pool "chat"
    And I note the worker pids of pool "chat" as "BEFORE"
    When I save rbee.hcl with the pool using model "tinyy"
    Then the daemon status "config.valid" becomes "false"
    And the daemon status "last_error.stage" is "config"
    And the daemon status "last_error.text" contains "rbee.hcl:11:"
    And the daemon status "last_error.text" contains "Did you mean \"tiny\"?"
    And the daemon status "last_error.message" contains "the last valid configuration keeps running"
    And the daemon metrics contain "rbee_watch_config_valid 0"
    And the daemon output contains "the configuration is invalid"
    # Two more timer passes with the broken file: still nothing torn down.
    And the daemon makes 2 more passes
    And the worker pids of pool "chat" are still "${BEFORE}"
    When I edit rbee.hcl in place to 2 replicas
    Then the local hive comes to run 2 ready workers of pool "chat"
    And the daemon status "config.valid" becomes "true"
    And the daemon status "last_error" is "null"

  Scenario: a hive killed with -9 is healed on the next check
    Given the daemon runs with "--interval 2s"
    Then the local hive comes to run 1 ready worker of pool "chat"
    When I kill -9 the local hive
    Then a new local hive answers
    And the local hive comes to run 1 ready worker of pool "chat"
    And the daemon output contains "node.local: Modifications complete"
    And the daemon status "last_apply.trigger" is "timer"
    And the daemon output contains "reason=\"status ready → unreachable\""

  Scenario: the daemon waits for a lock held by someone else
    Given the daemon runs with "--interval 2s"
    Then the local hive comes to run 1 ready worker of pool "chat"
    And the daemon status "last_success" contains "T"
    When I hold the state lock as "apply"
    And I edit rbee.hcl in place to 2 replicas
    Then the daemon status "phase" becomes "waiting_for_lock"
    And the daemon status "lock_holder" contains "operation \"apply\""
    And the daemon status "last_error" is "null"
    When I release the state lock
    Then the local hive comes to run 2 ready workers of pool "chat"
    And the daemon status "last_apply.ok" becomes "true"

  Scenario: a lock left by a killed rbee process is taken over, so the daemon heals unattended
    # rbee apply waits at its prompt holding the lock, and is killed with -9:
    # the lock stays behind, naming a process that is gone.
    When I start "(trap '' INT; exec sleep 60) | rbee apply" in the background as "apply"
    And "apply" prints "Enter a value:"
    And I send SIGKILL to "apply"
    And I run "rbee state list"
    Then output contains "locked by"
    Given the daemon runs with "--interval 2s"
    Then the local hive comes to run 1 ready worker of pool "chat"
    And the daemon output contains "took over the state lock of a process that is gone"

  Scenario: a manual apply while the daemon runs: no corruption, no double spawn
    Given the daemon runs with "--interval 2s"
    Then the local hive comes to run 1 ready worker of pool "chat"
    And I note the worker pids of pool "chat" as "FIRST"
    When I edit rbee.hcl in place to 3 replicas
    And I run "rbee apply -auto-approve -lock-timeout 2m"
    Then the command succeeds
    And the local hive comes to run 3 ready workers of pool "chat"
    And the daemon status "last_plan.description" becomes "No changes. The fleet matches the configuration."
    And the daemon status "last_error" is "null"
    And exactly 3 worker processes run from the scenario folder
    And the state is not locked and lists 3 workers
    When I run "rbee plan -detailed-exitcode -lock-timeout 1m"
    Then the exit code is 0
    When I run "rbee state list"
    Then the command succeeds
    And stdout contains "worker.chat[local/2]"

  Scenario: the CI drift check exits 0 when clean, 2 on drift, 1 on error
    When I run "rbee apply -auto-approve"
    Then the command succeeds
    When I run "rbee plan -refresh-only -detailed-exitcode -lock=false"
    Then the exit code is 0
    # -lock=false lets the check run beside a daemon that holds the lock.
    When I hold the state lock as "watch"
    And I run "rbee plan -refresh-only -detailed-exitcode -lock=false"
    Then the exit code is 0
    When I run "rbee plan -refresh-only -detailed-exitcode"
    Then the exit code is 1
    And stderr contains "the state is locked by"
    When I kill -9 the local hive
    And I run "rbee plan -refresh-only -detailed-exitcode -lock=false"
    Then the exit code is 2
    And stdout contains "node.local"
    When I run "rbee plan -refresh-only -detailed-exitcode -lock=false -json"
    Then the exit code is 2
    And stdout contains "\"type\":\"drift\""
    Given a file "rbee.hcl" with:
      """
      pool "chat" {
      """
    When I run "rbee plan -refresh-only -detailed-exitcode -lock=false"
    Then the exit code is 1
    When I release the state lock
    And I run "rbee validate"
    Then the exit code is 1

  Scenario: SIGTERM during an apply leaves a consistent state; the next start converges
    Given I edit rbee.hcl in place to 2 replicas
    And the daemon runs with "--interval 2s"
    When I send SIGTERM to the daemon while it applies
    Then the daemon exits with code 0
    And the daemon output contains "signal received"
    And the daemon output contains "apply interrupted: the changes in flight finished and were recorded"
    When I run "rbee state list"
    Then the command succeeds
    And stderr does not contain "locked"
    When I run "rbee plan -lock-timeout 1m"
    Then the command succeeds
    Given the daemon runs with "--interval 2s"
    Then the local hive comes to run 2 ready workers of pool "chat"
    And the daemon status "last_plan.description" becomes "No changes. The fleet matches the configuration."
    And the state is not locked and lists 2 workers
    And exactly 2 worker processes run from the scenario folder

  Scenario: a status address that is not host:port with a port in 1024-65535 is refused
    When I run "timeout 20 rbee watch --plan-only --listen 127.0.0.1:80"
    Then the exit code is 1
    And stderr contains "use a port in 1024-65535"
    When I run "timeout 20 rbee watch --plan-only --listen garbage"
    Then the exit code is 1
    And stderr contains "is not host:port"
