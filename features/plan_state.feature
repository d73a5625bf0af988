@plan
Feature: rbee state lists, shows and forgets recorded resources

  Background:
    Given a file "rbee.hcl" with:
      """
      node "local" { connection = "local" }
      model "tiny" { source = "synth:tiny" }
      pool "chat" {
        model    = "tiny"
        nodes    = ["local"]
        replicas = 2
      }
      """
    And the state records a finished apply of "rbee.hcl"

  Scenario: state list shows every resource with its status
    When I run "rbee state list"
    Then the command succeeds
    And stdout matches "node\.local\s+ready\s+this machine, last contact .* ago, install_dir .*/\.rbee/nodes/local, hive test"
    And stdout matches "model\.tiny@local\s+ready\s+synth:tiny"
    And stdout matches "worker\.chat\[local/1\]\s+idle\s+tiny"

  Scenario: state show prints one record as JSON
    When I run "rbee state show 'worker.chat[local/1]'"
    Then the command succeeds
    And stdout contains "\"pool\": \"chat\""
    And stdout contains "\"index\": 1"
    When I run "rbee state show node.nope"
    Then the exit code is 1
    And stderr contains "node.nope is not in the state"
    When I run "rbee state show pool.chat"
    Then the exit code is 1
    And stderr contains "is not a resource address"

  Scenario: state rm forgets a resource, and the next plan creates it again
    When I run "rbee state rm 'worker.chat[local/1]'"
    Then the command succeeds
    And stdout contains "Removed worker.chat[local/1]"
    When I run "rbee plan -refresh=false -detailed-exitcode"
    Then the exit code is 2
    And stdout contains "  + worker.chat[local/1]: start tiny"
    And stdout contains "Plan: 1 to add, 0 to change, 0 to destroy."

  Scenario: state rm of a node forgets what runs on it too
    When I run "rbee state rm node.local"
    Then the command succeeds
    And stdout contains "Successfully removed 4 resources"
    When I run "rbee state list"
    Then stderr contains "is empty"

  Scenario: state restore undoes the last write session from the backup
    When I run "rbee state rm node.local"
    Then the command succeeds
    When I run "rbee state list"
    Then output does not contain "node.local"
    When I run "rbee state restore"
    Then the command succeeds
    And stdout contains "Restored 4 resources from"
    When I run "rbee state list"
    Then stdout matches "node\.local\s+ready"
    And stdout matches "worker\.chat\[local/1\]\s+idle"
    When I run "rbee plan -refresh=false -detailed-exitcode"
    Then the exit code is 0
    # the restore wrote the state it replaced as the new backup: restoring
    # again undoes the restore
    When I run "rbee state restore"
    Then the command succeeds
    When I run "rbee state list"
    Then output does not contain "node.local"

  Scenario: state restore refuses a file that is not a backup, or one of another state
    Given a file "junk.json" with:
      """
      {"nodes": 3}
      """
    When I run "rbee state restore junk.json"
    Then the exit code is 1
    And stderr contains "junk.json is not an rbee state backup"
    Given a file "empty.json" with:
      """
      {}
      """
    When I run "rbee state restore empty.json"
    Then the exit code is 1
    And stderr contains "names no lineage"
    Given a file "other.json" with:
      """
      {"lineage": "someone-else", "serial": 3, "nodes": [], "models": [], "workers": []}
      """
    When I run "rbee state restore other.json"
    Then the exit code is 1
    And stderr contains "belongs to another state"
    And stderr contains "-force"
    When I run "rbee state list"
    Then stdout matches "node\.local\s+ready"
    When I run "rbee state restore other.json -force"
    Then the command succeeds
    When I run "rbee state list"
    Then output does not contain "node.local"
