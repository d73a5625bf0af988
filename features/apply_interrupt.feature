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

  Scenario: Ctrl-C while apply executes: the step in flight finishes and is recorded, the next apply converges
    Given a Hugging Face server serving "acme/tiny-GGUF" file "tiny.gguf"
    And the Hugging Face server sends at most 600000 bytes per second
    And 1 free loopback port as "HIVE"
    And a file "rbee.hcl" with:
      """
      node "local" {
        connection = "local"
        hive_port  = ${HIVE}
        env        = { HF_ENDPOINT = "${HF_ENDPOINT}" }
      }
      model "tiny" {
        source = "hf:acme/tiny-GGUF"
        file   = "tiny.gguf"
      }
      pool "chat" {
        model = "tiny"
        nodes = ["local"]
        slots = 1
      }
      """
    When I start "rbee apply -auto-approve" in the background as "apply"
    And "apply" prints "model.tiny@local: Creating..."
    And I send SIGINT to "apply"
    Then "apply" exits with code 130
    And the output of "apply" contains "Interrupt received: no new change starts"
    And the output of "apply" contains "model.tiny@local: Creation complete"
    And the output of "apply" does not contain "worker.chat[local/0]: Creation complete"
    When I run "rbee state list"
    Then stdout matches "model\.tiny@local\s+ready"
    And output does not contain "worker.chat"
    And output does not contain "locked by"
    When I run "rbee apply -auto-approve"
    Then the command succeeds
    And stdout contains "Apply complete! 1 added, 0 changed, 0 destroyed."
    When I run "rbee destroy -auto-approve"
    Then the command succeeds
