@status
Feature: rbee status shows the live fleet
  rbee status asks every hive the state records for its live state and every
  worker for its readiness and counters, and prints one table. Everything here
  runs for real: a hive on this machine installed by `rbee apply`, a llama.cpp
  worker on a generated model.

  Background:
    Given a local fleet file with pool "chat" serving model "tiny"

  Scenario: one table of nodes and workers, as text and as JSON
    When I run "rbee apply -auto-approve"
    Then the command succeeds
    When I run "rbee status"
    Then the command succeeds
    And stdout matches "NODE\s+HIVE\s+WORKER\s+STATE\s+MODEL\s+BACKEND\s+SLOTS\s+TOK/S\s+RESTARTS"
    And stdout matches "local\s+v\S+\s+worker\.chat\[local/0\]\s+idle\s+tiny\s+cpu\s+0/2\s+-\s+0"
    And stdout contains "tokens/s needs counts over time"
    And stdout does not contain "\x1b["
    When I run "rbee status --json"
    Then the command succeeds
    And stdout JSON "nodes.0.name" is "local"
    And stdout JSON "nodes.0.reachable" is "true"
    And stdout JSON "nodes.0.hive_url" is "http://127.0.0.1:${HIVE_PORT}"
    And stdout JSON "nodes.0.workers.0.address" is "worker.chat[local/0]"
    And stdout JSON "nodes.0.workers.0.state" is "idle"
    And stdout JSON "nodes.0.workers.0.slots_total" is "2"
    And stdout JSON "nodes.0.workers.0.backend" is "cpu"

  Scenario: an unreachable node is shown with its recorded workers
    When I run "rbee apply -auto-approve"
    Then the command succeeds
    And the local hive is stopped
    When I run "rbee status"
    Then the command succeeds
    And stdout matches "local\s+unreachable\s+worker\.chat\[local/0\]\s+unknown\s+tiny"
    And stdout contains "node.local: the hive at http://127.0.0.1:${HIVE_PORT} did not answer"
    And stdout contains "connection refused"
    When I run "rbee status --json"
    Then stdout JSON "nodes.0.reachable" is "false"
    And stdout JSON "nodes.0.workers.0.state" is "unknown"

  Scenario: --watch redraws with tokens per second until Ctrl-C, which exits 0
    When I run "rbee apply -auto-approve"
    Then the command succeeds
    When I start "rbee status --watch --interval 500ms" in the background as "watch"
    Then the output of "watch" has 2 or more lines matching "^NODE\s+HIVE"
    When I run "rbee infer --model tiny --prompt 'Once upon a time' --max-tokens 16 --ignore-eos"
    Then the command succeeds
    And the output of "watch" comes to match "worker\.chat\[local/0\]\s+idle\s+tiny\s+cpu\s+0/2\s+[0-9]*[1-9][0-9]*\.[0-9]"
    When I send SIGINT to "watch"
    Then "watch" exits with code 0

  Scenario: no fleet yet
    When I run "rbee status"
    Then the command succeeds
    And stdout contains "the state records no node: run `rbee apply` first"
