@lock
Feature: the model lock file .rbee.lock.hcl
  rbee lock resolves every model to exactly what will be downloaded (a
  Hugging Face revision to its commit, each file to its size and sha256, a
  synth: model to its generator, seed and sha256) and writes it beside the
  configuration. Without the file plan and apply behave as before; once it
  exists they download the locked commit, verify the locked sha256 and refuse
  models it lacks. -check tells CI when an upstream branch moved.

  Background:
    Given a Hugging Face server serving "acme/tiny-GGUF" file "tiny.gguf"
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
        model    = "tiny"
        nodes    = ["local"]
        slots    = 1
        ctx_size = 256
      }
      """

  Scenario: lock, apply the locked commit, follow a moved branch only after -upgrade
    When I run "rbee lock"
    Then the command succeeds
    And stdout contains "+ tiny: hf:acme/tiny-GGUF @main → commit 000000000000"
    And the file ".rbee.lock.hcl" contains "# This file is maintained automatically by \"rbee lock\"."
    And the file ".rbee.lock.hcl" contains "commit   = \"0000000000000000000000000000000000000000\""
    And the file ".rbee.lock.hcl" contains "sha256 = \"${HF_SHA256}\""
    And the file ".rbee.lock.hcl" contains "size   = ${HF_SIZE}"
    And the file ".rbee.lock.hcl" contains "module  = \"github.com/ollama/ollama\""
    And the Hugging Face server got no GET of the file bytes
    When I run "rbee fmt -check --config .rbee.lock.hcl"
    Then the command succeeds
    When I run "rbee apply -auto-approve"
    Then the command succeeds
    And stdout contains "Apply complete! 3 added, 0 changed, 0 destroyed."
    And the Hugging Face server got a GET of revision "0000000000000000000000000000000000000000"
    When I run "rbee lock -check"
    Then the exit code is 0
    And stdout contains ".rbee.lock.hcl is up to date (1 model(s))."
    Given the Hugging Face repo "acme/tiny-GGUF" moves to a new commit whose "tiny.gguf" is the tiny model of seed 2
    When I run "rbee lock -check"
    Then the exit code is 2
    And stdout contains "commit 0000000000000000000000000000000000000000 → ${HF_COMMIT}"
    And stdout contains "Run rbee lock -upgrade to take them."
    When I run "rbee plan -detailed-exitcode"
    Then the exit code is 0
    When I run "rbee lock"
    Then the command succeeds
    And stdout contains "is up to date"
    When I run "rbee lock -upgrade"
    Then the command succeeds
    And stdout contains "~ tiny:"
    And the file ".rbee.lock.hcl" contains "sha256 = \"${HF_SHA256}\""
    When I run "rbee plan -detailed-exitcode"
    Then the exit code is 2
    And stdout contains "revision 0000000000000000000000000000000000000000 → ${HF_COMMIT}"
    When I run "rbee apply -auto-approve"
    Then the command succeeds
    And the Hugging Face server got a GET of revision "${HF_COMMIT}"
    When I run "rbee state show model.tiny@local"
    Then stdout contains "${HF_COMMIT}"
    And stdout contains "${HF_SHA256}"
    When I run "rbee plan -detailed-exitcode"
    Then the exit code is 0
    When I run "rbee lock -check"
    Then the exit code is 0

  Scenario: the locked sha256 is verified: a file replaced under the commit is refused
    When I run "rbee lock"
    Then the command succeeds
    Given the Hugging Face server replaces "acme/tiny-GGUF" file "tiny.gguf" with the tiny model of seed 3
    When I run "rbee apply -auto-approve"
    Then the exit code is 1
    And output contains "CHECKSUM_MISMATCH"
    When I run "rbee lock -check"
    Then the exit code is 2
    And stdout contains "file tiny.gguf sha256"

  Scenario: a model missing from the lock, or changed since, is refused until rbee lock runs
    When I run "rbee plan -refresh=false"
    Then the command succeeds
    When I run "rbee lock"
    Then the command succeeds
    Given a file "rbee.hcl" with:
      """
      node "local" {
        connection = "local"
        hive_port  = ${HIVE}
        env        = { HF_ENDPOINT = "${HF_ENDPOINT}" }
      }
      model "tiny" {
        source   = "hf:acme/tiny-GGUF"
        file     = "tiny.gguf"
        revision = "v2"
      }
      model "gen" { source = "synth:tiny" }
      pool "chat" {
        model    = "gen"
        nodes    = ["local"]
        slots    = 1
        ctx_size = 256
      }
      """
    When I run "rbee plan -refresh=false"
    Then the exit code is 1
    And stderr contains "the model lock file .rbee.lock.hcl does not match the configuration"
    And stderr contains "model \"gen\" is not in the lock"
    And stderr contains "model \"tiny\": the block's revision is v2 but the lock resolved main"
    And stderr contains "run rbee lock to update it"
    When I run "rbee apply -auto-approve -refresh=false"
    Then the exit code is 1
    And stderr contains "model \"gen\" is not in the lock"
    When I run "rbee lock"
    Then the command succeeds
    And stdout contains "revision main → v2"
    And stdout contains "+ gen: synth:tiny"
    And the file ".rbee.lock.hcl" contains "revision = \"v2\""
    When I run "rbee plan -refresh=false"
    Then the command succeeds

  Scenario: -check without a lock file, a MODEL without -upgrade, a damaged lock file
    When I run "rbee lock -check"
    Then the exit code is 1
    And stderr contains "there is no model lock file"
    And stderr contains "run rbee lock to write one"
    When I run "rbee lock tiny"
    Then the exit code is 1
    And stderr contains "a MODEL argument is only taken with -upgrade"
    When I run "rbee lock -upgrade nope"
    Then the exit code is 1
    And stderr contains "the configuration has no model \"nope\""
    Given a file ".rbee.lock.hcl" with:
      """
      model "tiny" {
        source = "hf:acme/tiny-GGUF"
        commit = "main"
      }
      """
    When I run "rbee plan -refresh=false"
    Then the exit code is 1
    And stderr contains ".rbee.lock.hcl:1:1: model \"tiny\": commit \"main\" is not a 40-digit lowercase hexadecimal commit id"
    And stderr contains "delete the file and run rbee lock"

  Scenario: a folder of *.hcl files keeps its lock inside, and a synth model locks its generator and seed
    Given a file "fleet/main.hcl" with:
      """
      model "gen" { source = "synth:tiny" }
      """
    When I run "rbee lock --config fleet"
    Then the command succeeds
    And the file "fleet/.rbee.lock.hcl" contains "generator = \"rbee "
    And the file "fleet/.rbee.lock.hcl" contains "seed      = 1"
    And the file "fleet/.rbee.lock.hcl" contains "file \"tiny.gguf\""
    When I run "rbee validate --config fleet"
    Then the command succeeds

  # The header of a locked model names its content for good (the commit), so
  # the state keeps what plan read; an unlocked branch may move, so plan
  # reads its header again every time.
  Scenario: plan reads a locked model's header once, the state keeps it; an unlocked branch is read every time
    When I run "rbee lock"
    Then the command succeeds
    When I run "rbee plan"
    Then the command succeeds
    And stdout contains "node.local: memory unknown until the hive is installed (1 workers need about"
    And the Hugging Face server got a header read from rbee plan
    When I run "rbee plan"
    Then the command succeeds
    And stdout contains "node.local: memory unknown until the hive is installed (1 workers need about"
    And the Hugging Face server got no header read from rbee plan
    When I run "rm .rbee.lock.hcl"
    And I run "rbee plan"
    Then the command succeeds
    And the Hugging Face server got a header read from rbee plan
    When I run "rbee plan"
    Then the command succeeds
    And the Hugging Face server got a header read from rbee plan
