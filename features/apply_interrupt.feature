@apply
Feature: Ctrl-C before apply executes releases the state lock
  apply and destroy hold the state lock while they refresh, plan and wait at
  the confirmation prompt. Interrupting them there changes nothing, must not
  leave a stale lock behind and exits with status 130.

  Scenario: Ctrl-C at the confirmation prompt: exit 130, lock released
    Given a file "rbee.hcl" with:
      """
      node "local" {
        connection = "local"
      }
      """
    # stdin stays open, as a terminal's does: the writer ignores the SIGINT
    # sent to the whole process group, so rbee never reads end-of-file.
    When I start "(trap '' INT; exec sleep 30) | rbee apply" in the background as "apply"
    And "apply" prints "Enter a value:"
    And I send SIGINT to "apply"
    Then "apply" exits with code 130
    And the output of "apply" contains "Apply cancelled."
    When I run "rbee plan -lock-timeout=0s"
    Then the command succeeds
    And output does not contain "lock"
    And stdout contains "+ node.local"

  Scenario: Ctrl-C while apply refreshes from a hung hive: exit 130, lock released
    Given a server that accepts connections but never answers, on port ${HUNG_PORT}
    And a file "rbee.hcl" with:
      """
      node "local" {
        connection = "local"
        hive_port  = ${HUNG_PORT}
      }
      model "tiny" { source = "synth:tiny" }
      pool "chat" {
        model = "tiny"
        nodes = ["local"]
      }
      """
    And the state records a finished apply of "rbee.hcl"
    When I start "rbee apply" in the background as "apply"
    And I run "until rbee state list 2>&1 | grep -q 'locked by'; do sleep 0.1; done"
    And I send SIGINT to "apply"
    Then "apply" exits with code 130
    And the output of "apply" contains "Apply cancelled."
    When I run "rbee state list"
    Then the command succeeds
    And output does not contain "locked by"
