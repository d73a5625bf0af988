@state
Feature: the state keeps a history of its writes and survives damage it can see
  Every write to the state records who made it, under which operation and
  what changed. Damaged Pebble files (flipped bytes in the real tables and
  write-ahead log), a lost last write and a deleted database are errors that
  say where and what to do, and rbee state restore recovers from each.

  Scenario: apply, state rm and restore each add entries with their operation and user
    Given a local fleet file with pool "chat" serving model "tiny"
    When I run "rbee apply -auto-approve"
    Then the command succeeds
    When I run "rbee state rm 'worker.chat[local/0]'"
    Then the command succeeds
    When I run "rbee state restore"
    Then the command succeeds
    When I run "rbee state history -json"
    Then the command succeeds
    And stdout is the JSON history of "state restore, state rm, apply" by this user
    When I run "rbee state history"
    Then the command succeeds
    And stdout matches "(?m)^SERIAL\s+TIME\s+OPERATION\s+WHO\s+CHANGES$"
    And stdout matches "(?m)^\d+\s+\S+ \S+\s+state restore\s+\S+@\S+ \(pid \d+\)\s+1 put \(worker\.chat\[local/0\]\)$"
    And stdout matches "(?m)^\d+\s+\S+ \S+\s+state rm\s+\S+@\S+ \(pid \d+\)\s+1 deleted \(worker\.chat\[local/0\]\)$"
    When I run "rbee state history -json --limit 2"
    Then the command succeeds
    And stdout is 2 lines of history JSON
    And stdout is the JSON history of "state restore, state rm" by this user

  Scenario: state history of a state never written, its help, and a bad limit
    When I run "rbee state history"
    Then the command succeeds
    And stderr contains "has no history"
    When I run "rbee state history -json"
    Then the command succeeds
    And stdout is 0 lines of history JSON
    When I run "rbee state history --help"
    Then the command succeeds
    And stdout contains "rbee state history --limit 5"
    And stdout contains "-json"
    When I run "rbee state history --limit -1"
    Then the exit code is 1
    And stderr contains "Error: --limit -1: give a number of entries, or 0 for all"

  Scenario: a damaged table is one error that says where and to restore, and restore recovers
    Given a file "rbee.hcl" with:
      """
      node "local" { connection = "local" }
      model "tiny" { source = "synth:tiny" }
      pool "chat" {
        model = "tiny"
        nodes = ["local"]
      }
      """
    And the state records a finished apply of "rbee.hcl"
    When I run "rbee state rm 'worker.chat[local/0]'"
    Then the command succeeds
    Given every table of the state database has a flipped byte
    When I run "rbee state list"
    Then the exit code is 1
    And stderr matches "^Error: state is corrupt: the state database in \S+/\.rbee/state cannot be read: \d+\.sst is damaged \("
    And stderr contains "Run rbee state restore: it sets the damaged database aside and puts back the backup ${DIR}/.rbee/state.backup.json"
    And stderr does not contain ".go:"
    And stderr does not contain "Wraps:"
    And stderr has 1 line
    When I run "rbee plan -refresh=false"
    Then the exit code is 1
    And stderr contains "Error: state is corrupt"
    When I run "rbee state restore"
    Then the command succeeds
    And stderr contains "it was moved to ${DIR}/.rbee/state.damaged-"
    When I run "rbee state list"
    Then stdout matches "node\.local\s+ready"
    And stdout matches "worker\.chat\[local/0\]\s+idle"
    When I run "rbee state history -json"
    Then stdout is the JSON history of "state restore" by this user

  Scenario: a garbled write-ahead log that lost the last write (the unlock) is reported, not read past
    Given a file "rbee.hcl" with:
      """
      node "local" { connection = "local" }
      """
    And the state records a finished apply of "rbee.hcl"
    When I run "rbee state rm node.local"
    Then the command succeeds
    Given the last write in the state's write-ahead log is garbled
    When I run "rbee state list"
    Then the exit code is 1
    And stderr contains "the state database in ${DIR}/.rbee/state lost writes"
    And stderr contains "Run rbee state restore"
    And stderr has 1 line
    When I run "rbee state unlock whatever"
    Then the exit code is 1
    And stderr contains "lost writes"
    When I run "rbee state restore"
    Then the command succeeds
    When I run "rbee state list"
    Then stdout matches "node\.local"
    And stderr does not contain "locked"

  Scenario: a deleted state database is refused, and restore puts it back with no -force
    Given a file "rbee.hcl" with:
      """
      node "local" { connection = "local" }
      model "tiny" { source = "synth:tiny" }
      pool "chat" {
        model = "tiny"
        nodes = ["local"]
      }
      """
    And the state records a finished apply of "rbee.hcl"
    When I run "rbee state rm 'worker.chat[local/0]'"
    Then the command succeeds
    When I run "mv .rbee/state .rbee/state.old"
    When I run "rbee plan -refresh=false"
    Then the exit code is 1
    And stderr contains "Error: state is missing: the state database ${DIR}/.rbee/state is gone"
    And stderr contains "Planning against an empty state would start again everything that still runs"
    And stderr contains "Run rbee state restore to put back the backup ${DIR}/.rbee/state.backup.json, then rbee refresh"
    When I run "rbee state restore"
    Then the command succeeds
    When I run "rbee state list"
    Then stdout matches "worker\.chat\[local/0\]\s+idle"
    When I run "rbee plan -refresh=false -detailed-exitcode"
    Then the exit code is 0

  Scenario: a backup restored into a folder moved aside needs no -force
    Given a file "rbee.hcl" with:
      """
      node "local" { connection = "local" }
      """
    And the state records a finished apply of "rbee.hcl"
    When I run "rbee state rm node.local"
    Then the command succeeds
    When I run "mv .rbee broken && rbee state restore broken/state.backup.json"
    Then the command succeeds
    And stdout contains "Restored 1 resource from broken/state.backup.json"
    When I run "rbee state list"
    Then stdout matches "node\.local\s+ready"

  Scenario: a whole state folder gone while the hives run is said in the plan, not silently planned from nothing
    Given a local fleet file with pool "chat" serving model "tiny"
    When I run "rbee apply -auto-approve"
    Then the command succeeds
    When I run "mkdir aside && mv .rbee/state .rbee/state.* aside/"
    And I run "rbee plan -no-color -lock=false"
    Then the command succeeds
    And output contains "the state is empty, but the hive of node.local"
    And output contains "was the state folder deleted?"
    When I run "mv aside/* .rbee/"
    And I run "rbee plan -detailed-exitcode"
    Then the exit code is 0
