@plan
Feature: rbee plan shows what apply would change
  The planner compares rbee.hcl with the recorded state and prints one line per
  change with its reasons. CI uses -detailed-exitcode: 0 no changes, 1 error,
  2 changes. Steps that say "the state records ..." write state records
  directly with the state package, standing in for a finished apply (no hive
  runs in these scenarios); -refresh=false keeps the plan on recorded state.

  Background:
    Given a file "rbee.hcl" with:
      """
      node "local" { connection = "local" }
      model "tiny" { source = "synth:tiny" }
      pool "chat" {
        model    = "tiny"
        nodes    = ["local"]
        replicas = 1
        slots    = 2
        ctx_size = 1024
      }
      """

  Scenario: an empty state plans creating everything
    When I run "rbee plan -detailed-exitcode -refresh=false"
    Then the exit code is 2
    And stdout contains "  + node.local: install hive on this machine"
    And stdout contains "  + model.tiny@local: provision synth:tiny"
    And stdout contains "  + worker.chat[local/0]: start tiny (cpu, ctx_size 1024, 2 slots)"
    And stdout contains "Plan: 3 to add, 0 to change, 0 to destroy."

  Scenario: after a recorded apply there is nothing to do
    Given the state records a finished apply of "rbee.hcl"
    When I run "rbee plan -detailed-exitcode -refresh=false"
    Then the exit code is 0
    And stdout contains "No changes. Your fleet matches the configuration."

  Scenario: a changed context size replaces the worker, with the reason
    Given the state records a finished apply of "rbee.hcl"
    And a file "rbee.hcl" with:
      """
      node "local" { connection = "local" }
      model "tiny" { source = "synth:tiny" }
      pool "chat" {
        model        = "tiny"
        nodes        = ["local"]
        slots        = 2
        ctx_size     = 4096
      }
      """
    When I run "rbee plan -detailed-exitcode -refresh=false"
    Then the exit code is 2
    And stdout contains "+/- worker.chat[local/0]: ctx_size 1024 → 4096"
    And stdout contains "Plan: 1 to add, 0 to change, 1 to destroy."

  Scenario: an idle timeout is updated in place
    Given the state records a finished apply of "rbee.hcl"
    And a file "rbee.hcl" with:
      """
      node "local" { connection = "local" }
      model "tiny" { source = "synth:tiny" }
      pool "chat" {
        model        = "tiny"
        nodes        = ["local"]
        slots        = 2
        ctx_size     = 1024
        idle_timeout = "15m"
      }
      """
    When I run "rbee plan -detailed-exitcode -refresh=false"
    Then the exit code is 2
    And stdout contains "  ~ worker.chat[local/0]: idle_timeout none → 15m0s"
    And stdout contains "Plan: 0 to add, 1 to change, 0 to destroy."

  Scenario: removing the pool deletes its workers and the unused model
    Given the state records a finished apply of "rbee.hcl"
    And a file "rbee.hcl" with:
      """
      node "local" { connection = "local" }
      """
    When I run "rbee plan -detailed-exitcode -refresh=false"
    Then the exit code is 2
    And stdout contains "  - worker.chat[local/0]: pool chat is no longer in the configuration"
    And stdout contains "  - model.tiny@local: model tiny is no longer in the configuration"
    And stdout contains "Plan: 0 to add, 0 to change, 2 to destroy."

  Scenario: drift recorded in state is planned with its reason
    Given the state records a finished apply of "rbee.hcl"
    And the state records the worker "worker.chat[local/0]" as "failed"
    And the state records the hive of node "local" with binary checksum "0000000000000000000000000000000000000000000000000000000000000000"
    When I run "rbee plan -detailed-exitcode -refresh=false"
    Then the exit code is 2
    And stdout contains "-/+ worker.chat[local/0]: worker failed (the hive gave up after 0 restarts)"
    And stdout contains "  ~ node.local: binary checksum differs (hive runs 000000000000…"

  Scenario: a crashed worker that its hive is restarting is left to the hive
    Given the state records a finished apply of "rbee.hcl"
    And the state records the worker "worker.chat[local/0]" as "crashed"
    When I run "rbee plan -detailed-exitcode -refresh=false"
    Then the exit code is 0
    And stdout contains "No changes."

  Scenario: -json prints one object per change and a summary
    When I run "rbee plan -json -refresh=false"
    Then the command succeeds
    And stdout is NDJSON with 3 "change" objects and a "summary" object last
    And the JSON change "worker.chat[local/0]" has action "create" and depends on "node.local,model.tiny@local"
    And the JSON summary has "add" = 3
    And the JSON summary has "destroy" = 0
    And the JSON summary has "changes" = true
    And stdout does not contain "\x1b["

  Scenario: -destroy plans deleting everything in reverse order
    Given the state records a finished apply of "rbee.hcl"
    When I run "rbee plan -destroy -json -refresh=false"
    Then the command succeeds
    And the JSON change "node.local" has action "delete" and depends on "model.tiny@local,worker.chat[local/0]"
    And the JSON change "model.tiny@local" has action "delete" and depends on "worker.chat[local/0]"
    And the JSON summary has "destroy" = 3

  Scenario: -target limits the plan to an address and what it needs
    When I run "rbee plan -refresh=false -target model.tiny@local"
    Then the command succeeds
    And stdout contains "Plan: 2 to add, 0 to change, 0 to destroy."
    And stdout does not contain "worker.chat"
    And stdout contains "this plan is limited by -target"

  Scenario: -out saves a plan file that records the state it was made against
    Given the state records a finished apply of "rbee.hcl"
    And the state records the worker "worker.chat[local/0]" as "failed"
    When I run "rbee plan -refresh=false -out saved.plan"
    Then the command succeeds
    And stdout contains "Saved the plan to saved.plan"
    And the file "saved.plan" contains "\"serial\": 2"
    And the file "saved.plan" contains "\"lineage\": \""
    And the file "saved.plan" contains "\"config_hash\": \""
    And the file "saved.plan" contains "\"address\": \"worker.chat[local/0]\""

  Scenario: a held lock makes plan fail after -lock-timeout, naming the holder, until it is unlocked
    Given another process holds the state lock for "apply"
    When I run "rbee plan -refresh=false -lock-timeout=1s"
    Then the exit code is 1
    And stderr contains "the state is locked by"
    And stderr contains "pid ${LOCK_PID}"
    And stderr contains "operation \"apply\""
    And stderr contains "rbee state unlock ${LOCK_ID}"
    When I run "rbee plan -refresh=false -lock=false"
    Then the command succeeds
    When I run "rbee state unlock not-the-id"
    Then the exit code is 1
    When I run "rbee state unlock ${LOCK_ID}"
    Then the command succeeds
    When I run "rbee plan -refresh=false -detailed-exitcode"
    Then the exit code is 2

  Scenario: an invalid configuration fails the plan with line numbers
    Given a file "rbee.hcl" with:
      """
      node "local" { connection = "local" }
      pool "chat" {
        model = "nope"
        nodes = ["local"]
      }
      """
    When I run "rbee plan -detailed-exitcode -refresh=false"
    Then the exit code is 1
    And stderr contains "Error: rbee.hcl:3:11: Unknown model"
