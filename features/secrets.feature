@secrets
Feature: secrets stay secret
  A node's env is where tokens go (env = { HF_TOKEN = var.hf_token }). Every
  env value, whatever its source, is shown as (sensitive) in plans, plan
  -json and state show; the state records a digest of it (enough to see a
  change), plan files hold neither, and apply reads the values from the
  configuration again. The value travels to the hive over the transport and
  lands in <install_dir>/hive.env (mode 0600), which the hive reads with
  --env-file and passes on to its workers' environment: never a command line. A variable declared sensitive = true may be used only in env.

  Background:
    Given a local node "local" on a free hive port

  Scenario: a sensitive token reaches the hive and its workers and is printed nowhere
    Given a Hugging Face server serving "acme/tiny-GGUF" file "tiny-q8.gguf"
    And the Hugging Face server requires the token "hf_s3cretT0kenA1"
    And a file "rbee.hcl" with:
      """
      variable "hf_token" {
        default   = ""
        sensitive = true
      }
      node "local" {
        connection = "local"
        hive_port  = ${HIVE_PORT}
        env        = { HF_TOKEN = var.hf_token, HF_ENDPOINT = "${HF_ENDPOINT}" }
      }
      model "tiny" {
        source = "hf:acme/tiny-GGUF"
        file   = "tiny-q8.gguf"
        sha256 = "${HF_SHA256}"
      }
      pool "chat" {
        model    = "tiny"
        nodes    = ["local"]
        slots    = 1
        ctx_size = 256
      }
      """
    When I run "rbee plan -var hf_token=hf_s3cretT0kenA1"
    Then the command succeeds
    And stdout contains "+ node.local: install hive on this machine"
    And output does not contain "hf_s3cretT0kenA1"
    When I run "rbee plan -json -var hf_token=hf_s3cretT0kenA1"
    Then the command succeeds
    And stdout contains "\"env\":{\"HF_ENDPOINT\":\"(sensitive)\",\"HF_TOKEN\":\"(sensitive)\"}"
    And output does not contain "hf_s3cretT0kenA1"
    When I run "rbee apply -auto-approve -var hf_token=hf_s3cretT0kenA1"
    Then the command succeeds
    And stdout contains "model.tiny@local: downloaded"
    And output does not contain "hf_s3cretT0kenA1"
    And the Hugging Face server got 1 GET of the file bytes
    And the hive on "local" runs 1 ready worker of pool "chat"
    And the workers of the hive on "local" have "HF_TOKEN=hf_s3cretT0kenA1" in their environment
    And the file ".rbee/nodes/local/hive.env" has mode 0600 and contains "HF_TOKEN=hf_s3cretT0kenA1"
    And no file under ".rbee" but "nodes/local/hive.env" contains "hf_s3cretT0kenA1"
    And no command line in "ps -eo args" contains "hf_s3cretT0kenA1"
    When I run "rbee state show node.local"
    Then the command succeeds
    And stdout contains "\"HF_TOKEN\": \"(sensitive)\""
    And stdout contains "\"HF_TOKEN\": \"sha256:"
    And output does not contain "hf_s3cretT0kenA1"
    When I run "rbee state list"
    Then the command succeeds
    And output does not contain "hf_s3cretT0kenA1"
    When I run "rbee plan -detailed-exitcode -var hf_token=hf_s3cretT0kenA1"
    Then the exit code is 0

  Scenario: a changed token is planned as changed; a saved plan holds no value and is applied with the configuration's
    Given a file "rbee.hcl" with:
      """
      variable "hf_token" {
        default   = ""
        sensitive = true
      }
      node "local" {
        connection = "local"
        hive_port  = ${HIVE_PORT}
        env        = { HF_TOKEN = var.hf_token }
      }
      model "tiny" { source = "synth:tiny" }
      pool "chat" {
        model    = "tiny"
        nodes    = ["local"]
        slots    = 1
        ctx_size = 256
      }
      """
    And the environment variable "RBEE_VAR_hf_token" is "hf_s3cretT0kenA2"
    When I run "rbee apply -auto-approve"
    Then the command succeeds
    And the hive on "local" runs 1 ready worker of pool "chat"
    When I run "rbee plan -detailed-exitcode -var hf_token=hf_s3cretT0kenB2"
    Then the exit code is 2
    And stdout contains "~ node.local: env.HF_TOKEN (sensitive) changed"
    And stdout contains "worker.chat[local/0]: env of node.local changed"
    And output does not contain "hf_s3cretT0kenA2"
    And output does not contain "hf_s3cretT0kenB2"
    When I run "rbee plan -var hf_token=hf_s3cretT0kenB2 -out fleet.plan"
    Then the command succeeds
    And no file under "fleet.plan" contains "hf_s3cretT0kenB2"
    When I run "rbee apply fleet.plan -var hf_token=hf_s3cretT0kenC2"
    Then the command fails
    And stderr contains "the env of node.local in the configuration differs from the plan's (env.HF_TOKEN changed)"
    And output does not contain "hf_s3cretT0kenC2"
    When I run "rbee apply fleet.plan -var hf_token=hf_s3cretT0kenB2"
    Then the command succeeds
    And output does not contain "hf_s3cretT0kenB2"
    And the file ".rbee/nodes/local/hive.env" has mode 0600 and contains "HF_TOKEN=hf_s3cretT0kenB2"
    And the hive on "local" runs 1 ready worker of pool "chat"
    And the workers of the hive on "local" have "HF_TOKEN=hf_s3cretT0kenB2" in their environment
    And no file under ".rbee" but "nodes/local/hive.env" contains "hf_s3cretT0kenB2"
    And no command line in "ps -eo args" contains "hf_s3cretT0kenB2"

  Scenario: a sensitive variable used outside env is refused without showing its value
    Given a file "rbee.hcl" with:
      """
      variable "hf_token" { sensitive = true }
      node "gpu1" { host = "gpu-${var.hf_token}.example" }
      """
    When I run "rbee validate -var hf_token=hf_s3cretT0kenD3"
    Then the command fails
    And output contains "Sensitive value not allowed here"
    And output contains "host uses a sensitive value (from var.hf_token)"
    And output does not contain "hf_s3cretT0kenD3"
