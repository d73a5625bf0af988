@watch
Feature: rbee watch keeps an SSH node equal to the file
  The same daemon against a node reached over SSH (a real OpenSSH server on
  its own loopback address): it installs the hive, follows an edit, and
  starts the hive again after it is killed.

  Background:
    Given an SSH host "n1" on 127.0.0.2
    And the environment variable "RBEE_KNOWN_HOSTS" is "${KNOWN_HOSTS}"
    And a file "rbee.hcl" with:
      """
      node "n1" {
        host        = "${N1_HOST}"
        port        = ${N1_PORT}
        user        = "${SSH_USER}"
        identity    = "${SSH_KEY}"
        install_dir = "${N1_DIR}"
        hive_port   = ${N1_HIVE_PORT}
      }
      model "tiny" {
        source = "synth:tiny"
      }
      pool "chat" {
        model    = "tiny"
        nodes    = ["n1"]
        replicas = 1
        slots    = 1
        ctx_size = 256
      }
      """

  Scenario: install, follow an edit, heal a killed hive
    Given the daemon runs with "--interval 2s"
    Then the hive on "n1" runs 1 ready worker of pool "chat"
    And the daemon output contains "node.n1: Creation complete"
    Given a file "rbee.hcl" with:
      """
      node "n1" {
        host        = "${N1_HOST}"
        port        = ${N1_PORT}
        user        = "${SSH_USER}"
        identity    = "${SSH_KEY}"
        install_dir = "${N1_DIR}"
        hive_port   = ${N1_HIVE_PORT}
      }
      model "tiny" {
        source = "synth:tiny"
      }
      pool "chat" {
        model    = "tiny"
        nodes    = ["n1"]
        replicas = 2
        slots    = 1
        ctx_size = 256
      }
      """
    Then the hive on "n1" runs 2 ready workers of pool "chat"
    And the daemon status "last_apply.trigger" becomes "file"
    When the hive on "n1" is killed
    Then the hive on "n1" runs 2 ready workers of pool "chat"
    And the daemon output contains "node.n1: Modifications complete"
    And the daemon status "last_apply.trigger" becomes "timer"
    And the daemon status "last_error" is "null"
