@apply
Feature: apply makes two SSH machines match the file
  rbee apply installs a hive on each node over SSH (a real OpenSSH server per
  "host", on its own loopback address), provisions the model and spawns the
  workers; plan, refresh and destroy see what really runs.

  Background:
    Given an SSH host "n1" on 127.0.0.2
    And an SSH host "n2" on 127.0.0.3
    And the environment variable "RBEE_KNOWN_HOSTS" is "${KNOWN_HOSTS}"
    And the environment variable "RBEE_CONFIG" is "${DIR}/fleet"
    And a file "fleet/nodes.hcl" with:
      """
      node "n1" {
        host        = "${N1_HOST}"
        port        = ${N1_PORT}
        user        = "${SSH_USER}"
        identity    = "${SSH_KEY}"
        install_dir = "${N1_DIR}"
        hive_port   = ${N1_HIVE_PORT}
      }
      node "n2" {
        host        = "${N2_HOST}"
        port        = ${N2_PORT}
        user        = "${SSH_USER}"
        identity    = "${SSH_KEY}"
        install_dir = "${N2_DIR}"
        hive_port   = ${N2_HIVE_PORT}
      }
      model "tiny" {
        source = "synth:tiny"
      }
      """
    And a file "fleet/pools.hcl" with:
      """
      pool "chat" {
        model    = "tiny"
        nodes    = ["n1", "n2"]
        replicas = 1
        slots    = 2
        ctx_size = 256
      }
      """

  Scenario: cold start, then nothing to do
    When I run "rbee apply -auto-approve"
    Then the command succeeds
    And stdout contains "node.n1: Creation complete"
    And stdout contains "Apply complete! 6 added, 0 changed, 0 destroyed."
    And the hive on "n1" runs 1 ready worker of pool "chat"
    And the hive on "n2" runs 1 ready worker of pool "chat"
    When I run "rbee plan -detailed-exitcode"
    Then the exit code is 0
    When I run "rbee apply -auto-approve"
    Then the command succeeds
    And stdout contains "Apply complete! 0 added, 0 changed, 0 destroyed."

  Scenario: state list shows what each node and worker computes with
    Given the ggml library folder beside the rbee binary
    When I run "rbee apply -auto-approve"
    Then the command succeeds
    When I run "rbee state list"
    Then stdout contains "backend cpu, cpu_variant ${CPU_VARIANT}, ctx_size 256"
    And stdout contains "install_dir ${N1_DIR}, hive "
    # The node's line ends with its CPU library, recorded by the apply that
    # installed the hive; a refresh keeps it.
    And stdout contains "cpu_variant ${CPU_VARIANT}\n"
    When I run "rbee apply -auto-approve"
    Then the command succeeds
    When I run "rbee state list"
    Then stdout contains "cpu_variant ${CPU_VARIANT}\n"
    When I run "rbee state list -json"
    Then the command succeeds
    And the state list JSON of "worker.chat[n1/0]" has "record.backend" equal to "cpu"
    And the state list JSON of "worker.chat[n2/0]" has "record.cpu_variant" equal to "${CPU_VARIANT}"
    And the state list JSON of "node.n1" has "record.cpu_variant" equal to "${CPU_VARIANT}"
    And the state list JSON of "node.n2" has "status" equal to "ready"

  Scenario: add a replica, then remove the pool
    When I run "rbee apply -auto-approve"
    Then the command succeeds
    Given a file "fleet/pools.hcl" with:
      """
      pool "chat" {
        model    = "tiny"
        nodes    = ["n1", "n2"]
        replicas = 2
        slots    = 2
        ctx_size = 256
      }
      """
    When I run "rbee plan -detailed-exitcode"
    Then the exit code is 2
    And stdout contains "worker.chat[n1/1]"
    When I run "rbee apply -auto-approve"
    Then the command succeeds
    And stdout contains "2 added, 0 changed, 0 destroyed."
    And the hive on "n1" runs 2 ready workers of pool "chat"
    And the hive on "n2" runs 2 ready workers of pool "chat"
    Given a file "fleet/pools.hcl" with:
      """
      """
    When I run "rbee apply -auto-approve"
    Then the command succeeds
    And stdout contains "destroyed."
    And the hive on "n1" runs 0 ready workers of pool "chat"
    And the hive on "n2" runs 0 ready workers of pool "chat"
    And only the hive runs from "${N1_DIR}"

  Scenario: an unreachable node fails alone
    Given the SSH host "n2" is stopped
    When I run "rbee apply -auto-approve"
    Then the exit code is 1
    And output contains "SSH connection to n2 (127.0.0.3:${N2_PORT}) failed after 3 attempts"
    And output contains "model.tiny@n2"
    And the hive on "n1" runs 1 ready worker of pool "chat"

  Scenario: a key the node does not accept
    Given an SSH key that no host accepts
    And a file "fleet/pools.hcl" with:
      """
      pool "chat" {
        model = "tiny"
        nodes = ["n1"]
      }
      """
    And a file "fleet/nodes.hcl" with:
      """
      node "n1" {
        host        = "${N1_HOST}"
        port        = ${N1_PORT}
        user        = "${SSH_USER}"
        identity    = "${WRONG_KEY}"
        install_dir = "${N1_DIR}"
        hive_port   = ${N1_HIVE_PORT}
      }
      model "tiny" {
        source = "synth:tiny"
      }
      """
    When I run "rbee apply -auto-approve"
    Then the exit code is 1
    And output contains "SSH authentication to n1"
    And output contains "${WRONG_KEY}"
    And output contains "ssh-add -l"

  Scenario: an unknown host key is refused with the command that records it
    Given a file "empty_known_hosts" with:
      """
      """
    And the environment variable "RBEE_KNOWN_HOSTS" is "${DIR}/empty_known_hosts"
    When I run "rbee apply -auto-approve"
    Then the exit code is 1
    And output contains "SSH host key of n1 (127.0.0.2:${N1_PORT}) is not in ${DIR}/empty_known_hosts"
    And output contains "ssh-keyscan -p ${N1_PORT} 127.0.0.2"
    And the folder "${N1_DIR}" does not exist

  Scenario: a node's known_hosts file is where its host key is checked
    Given the environment variable "RBEE_KNOWN_HOSTS" is ""
    And a file "node_known_hosts" with:
      """
      """
    When I run `sed -i 's#^\( *\)identity .*#&\n\1known_hosts = "${DIR}/node_known_hosts"#' fleet/nodes.hcl`
    And I run "rbee apply -auto-approve"
    Then the exit code is 1
    And output contains "SSH host key of n1 (127.0.0.2:${N1_PORT}) is not in ${DIR}/node_known_hosts"
    When I run "cp ${KNOWN_HOSTS} node_known_hosts"
    And I run "rbee apply -auto-approve"
    Then the command succeeds
    And the hive on "n1" runs 1 ready worker of pool "chat"

  Scenario: a private key readable by others is refused before anything connects
    When I run "cp ${SSH_KEY} loose_key && chmod 644 loose_key && sed -i 's#${SSH_KEY}#${DIR}/loose_key#' fleet/nodes.hcl"
    And I run "rbee apply -auto-approve"
    Then the exit code is 1
    And stderr contains "fleet/nodes.hcl:5:17: Identity readable by others"
    And output contains "has mode 0644"
    And output contains "chmod 600 ${DIR}/loose_key"
    When I run "rbee state list"
    Then output does not contain "node.n1"

  Scenario: a hive killed out of band is drift that apply heals
    When I run "rbee apply -auto-approve"
    Then the command succeeds
    When the hive on "n1" is killed
    And I run "rbee refresh"
    Then the command succeeds
    And stdout contains "node.n1: status ready → unreachable"
    When I run "rbee plan -detailed-exitcode"
    Then the exit code is 2
    And stdout contains "node unreachable"
    When I run "rbee apply -auto-approve"
    Then the command succeeds
    And the hive on "n1" runs 1 ready worker of pool "chat"
    When I run "rbee plan -detailed-exitcode"
    Then the exit code is 0

  Scenario: a hive that refuses the token is named as such, and apply heals it
    When I run "rbee apply -auto-approve"
    Then the command succeeds
    When I run "umask 077 && echo not-the-token > fleet/.rbee/hive-tokens/n1"
    And I run "rbee plan -detailed-exitcode"
    Then the exit code is 2
    And stdout contains "~ node.n1: hive refused the token (401): rbee apply will reinstall the token"
    And stdout does not contain "node unreachable"
    When I run "rbee apply -auto-approve"
    Then the command succeeds
    When I run "rbee plan -detailed-exitcode"
    Then the exit code is 0

  Scenario: destroy leaves nothing behind
    When I run "rbee apply -auto-approve"
    Then the command succeeds
    When I run "rbee destroy -auto-approve"
    Then the command succeeds
    And stdout contains "Destroy complete! Resources: 6 destroyed."
    And no process runs from "${N1_DIR}"
    And no process runs from "${N2_DIR}"
    And the folder "${N1_DIR}" does not exist
    And the folder "${N2_DIR}" does not exist
    When I run "rbee plan -detailed-exitcode"
    Then the exit code is 2

  Scenario: apply asks before it changes anything
    When I run "echo no | rbee apply"
    Then the exit code is 1
    And stdout contains "Plan: 6 to add, 0 to change, 0 to destroy."
    And stdout contains "Enter a value:"
    And stderr contains "apply cancelled"
    And the folder "${N1_DIR}" does not exist
    When I run "echo yes | rbee apply"
    Then the command succeeds
    And stdout contains "Apply complete! 6 added, 0 changed, 0 destroyed."

  Scenario: a stale plan file is refused
    When I run "rbee plan -out first.plan"
    Then the command succeeds
    When I run "rbee apply -auto-approve"
    Then the command succeeds
    When I run "rbee apply first.plan"
    Then the exit code is 1
    And stderr contains "stale"

  Scenario: Ctrl-C lets the change in flight finish, records it and releases the lock
    When I start "rbee apply -auto-approve -parallelism 1" in the background as "apply"
    And "apply" prints "node.n1: Creating..."
    And I send SIGINT to "apply"
    Then "apply" exits with code 130
    And the output of "apply" contains "node.n1: Creation complete"
    And the output of "apply" contains "node.n2: skipped: interrupted"
    When I run "rbee plan -lock-timeout 0s"
    Then the command succeeds
    And stdout contains "+ node.n2"
    And stdout does not contain "+ node.n1"

  Scenario: the node's env reaches the hive: a Hugging Face download over SSH
    Given a Hugging Face server serving "acme/tiny-GGUF" file "tiny-q8.gguf"
    And a file "fleet/nodes.hcl" with:
      """
      node "n1" {
        host        = "${N1_HOST}"
        port        = ${N1_PORT}
        user        = "${SSH_USER}"
        identity    = "${SSH_KEY}"
        install_dir = "${N1_DIR}"
        hive_port   = ${N1_HIVE_PORT}
        env         = { HF_ENDPOINT = "${HF_ENDPOINT}" }
      }
      model "tiny" {
        source = "hf:acme/tiny-GGUF"
        file   = "tiny-q8.gguf"
        sha256 = "${HF_SHA256}"
      }
      """
    And a file "fleet/pools.hcl" with:
      """
      pool "chat" {
        model    = "tiny"
        nodes    = ["n1"]
        slots    = 1
        ctx_size = 256
      }
      """
    When I run "rbee apply -auto-approve"
    Then the command succeeds
    And stdout contains "model.tiny@n1: downloaded"
    And stdout contains "Apply complete! 3 added, 0 changed, 0 destroyed."
    And the Hugging Face server got 1 GET of the file bytes
    And the hive on "n1" runs 1 ready worker of pool "chat"
