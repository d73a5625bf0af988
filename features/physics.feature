@physics
Feature: plan knows what the workers need and how fast they can decode
  Before anything changes, rbee plan adds up the memory each node's workers
  need (weights, KV cache for slots × ctx_size at the pool's kv_cache_type,
  compute buffer) from the models' GGUF metadata, compares it with the
  node's live memory, and bounds each pool's decode speed by the node's
  measured memory bandwidth ÷ the bytes read per token.

  Background:
    Given a local fleet on a free hive port, destroyed afterwards
    And a file "rbee.hcl" with:
      """
      node "local" {
        connection = "local"
        hive_port  = ${HIVE_PORT}
      }
      model "q3" { source = "synth:qwen3-tiny" }
      pool "chat" {
        model    = "q3"
        nodes    = ["local"]
        replicas = 2
        slots    = 4
        ctx_size = 2048
      }
      """

  Scenario: a node without a hive is unknown until apply installs it
    When I run "rbee plan"
    Then the exit code is 0
    And stdout contains "node.local: memory unknown until the hive is installed (2 workers need about"
    And stdout contains "pool.chat: decode ceiling unknown until the hive is installed"

  Scenario: after apply the plan shows the node's memory and the decode ceiling
    When I run "rbee apply -auto-approve"
    Then the exit code is 0
    When I run "rbee plan"
    Then the exit code is 0
    And stdout contains "node.local: RAM "
    And stdout contains "GiB after apply (2 workers)"
    And stdout contains "pool.chat: decode ≤ "
    And stdout contains "tok/s per stream ("

  Scenario: a pool that does not fit fails the plan before anything changes
    When I run "rbee apply -auto-approve"
    Then the exit code is 0
    Given a file "rbee.hcl" with:
      """
      node "local" {
        connection = "local"
        hive_port  = ${HIVE_PORT}
      }
      model "q3" { source = "synth:qwen3-tiny" }
      pool "chat" {
        model    = "q3"
        nodes    = ["local"]
        replicas = 2
        slots    = 64
        ctx_size = 1048576
      }
      """
    When I run "rbee plan"
    Then the exit code is 1
    And output contains "the configuration does not fit on its nodes; nothing was changed"
    And output contains "node.local: the workers need"
    And output contains "KV cache 64.0 GiB for 64 slots × 1048576 ctx at f16"
    And output contains "pool.chat would fit with slots = "

  Scenario: a ctx_size above the trained context is a warning
    Given a file "rbee.hcl" with:
      """
      node "local" {
        connection = "local"
        hive_port  = ${HIVE_PORT}
      }
      model "q3" { source = "synth:qwen3-tiny" }
      pool "chat" {
        model    = "q3"
        nodes    = ["local"]
        ctx_size = 8192
      }
      """
    When I run "rbee plan"
    Then the exit code is 0
    And output contains "pool.chat: ctx_size 8192 is above the 4096 tokens model.q3 was trained on"
