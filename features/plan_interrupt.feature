@plan
Feature: Ctrl-C during rbee plan releases the state lock
  plan holds the state lock while it refreshes from the hives, which can take
  up to the refresh timeout when a hive hangs. Interrupting it then must not
  leave a stale lock behind for the next apply.

  Scenario: Ctrl-C while plan waits on a hung hive: exit 130, lock released
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
    When I start "rbee plan" in the background as "plan"
    And I run "until rbee state list 2>&1 | grep -q 'locked by'; do sleep 0.1; done"
    And I send SIGINT to "plan"
    Then "plan" exits with code 130
    And the output of "plan" contains "the state lock was released"
    When I run "rbee state list"
    Then the command succeeds
    And output does not contain "locked by"

  Scenario: Ctrl-C while plan waits for another holder's lock: exit 130, their lock stays
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
    When I start "rbee plan" in the background as "first"
    And I run "until rbee state list 2>&1 | grep -q 'locked by'; do sleep 0.1; done"
    And I start "rbee plan -lock-timeout=1m" in the background as "second"
    And I run "sleep 0.5"
    And I send SIGINT to "second"
    Then "second" exits with code 130
    And the output of "second" contains "Nothing was changed."
    And the output of "second" does not contain "lock was released"
    When I run "rbee state list"
    Then output contains "locked by"
    When I send SIGINT to "first"
    Then "first" exits with code 130
    When I run "rbee state list"
    Then output does not contain "locked by"
