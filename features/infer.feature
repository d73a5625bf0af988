@infer
Feature: rbee infer streams tokens from a ready worker
  rbee infer finds the model's workers in the state that apply recorded, asks
  each for its live readiness, and streams the tokens of the least loaded one.
  Everything here runs for real: a hive on this machine installed by
  `rbee apply`, a llama.cpp worker on a generated model.

  Background:
    Given a local fleet file with pool "chat" serving model "tiny"

  Scenario: cold start: no worker, then apply, then tokens
    When I run "rbee infer --model tiny --prompt 'Once upon a time'"
    Then the exit code is 1
    And stderr contains "no ready worker for model \"tiny\""
    And stderr contains "Pool \"chat\" serves it: run `rbee apply`"
    When I run "rbee apply -auto-approve"
    Then the command succeeds
    When I run "rbee infer --model tiny --prompt 'Once upon a time' --max-tokens 8 --ignore-eos"
    Then the command succeeds
    And stdout matches "\S"
    And stderr contains "worker.chat[local/0] at http://127.0.0.1:"
    And stderr contains "decode 8 tokens"

  Scenario: warm start reuses the running worker
    When I run "rbee apply -auto-approve"
    Then the command succeeds
    And I note the pid of worker "chat-0" as "PID"
    When I run "rbee infer --model tiny --prompt 'Hello' --max-tokens 4"
    Then the command succeeds
    When I run "rbee infer --model tiny --prompt 'Hello again' --max-tokens 4"
    Then the command succeeds
    And the pid of worker "chat-0" is still "${PID}"
    When I run "rbee state show 'worker.chat[local/0]'"
    Then stdout contains "${PID}"

  Scenario: unknown model names the models that exist
    When I run "rbee infer --model nope --prompt hi"
    Then the exit code is 1
    And stderr contains "unknown model \"nope\""
    And stderr contains "\"tiny\""

  Scenario: --json writes one event per line
    When I run "rbee apply -auto-approve"
    Then the command succeeds
    When I run "rbee infer --model tiny --prompt 'Once upon a time' --max-tokens 6 --ignore-eos --temperature 0 --json"
    Then the command succeeds
    And stdout is a JSON stream of a start event, 6 token events and an end event from "worker.chat[local/0]"

  Scenario: Ctrl-C cancels the job and frees the slot
    When I run "rbee apply -auto-approve"
    Then the command succeeds
    When I start "rbee infer --model tiny --prompt 'Once upon a time' --max-tokens 30000 --ignore-eos --json" in the background as "long"
    And "long" has streamed a token
    And I send SIGINT to "long"
    Then "long" exits with code 130
    And the output of "long" contains "interrupted; job infer-"
    And the worker "chat-0" has all its slots free

  Scenario: a worker that stops sending is cancelled after --stall-timeout
    When I run "rbee apply -auto-approve"
    Then the command succeeds
    When I start "rbee infer --model tiny --prompt 'Once upon a time' --max-tokens 30000 --ignore-eos --json --stall-timeout 2s" in the background as "long"
    And "long" has streamed a token
    And I send SIGSTOP to the fleet's worker "chat-0"
    Then "long" exits with code 1
    And the output of "long" matches "worker\.chat\[local/0\] \(http://127\.0\.0\.1:\d+\) stalled: nothing for 2s after \d+ tokens?; the job was cancelled"
    And the output of "long" contains "rbee logs worker.chat[local/0]"
    When I send SIGCONT to the fleet's worker "chat-0"
    Then the worker "chat-0" has all its slots free

  Scenario: a worker killed mid-stream is named with the tokens it sent
    When I run "rbee apply -auto-approve"
    Then the command succeeds
    When I start "rbee infer --model tiny --prompt 'Once upon a time' --max-tokens 30000 --ignore-eos --json" in the background as "long"
    And "long" has streamed a token
    And I send SIGKILL to the fleet's worker "chat-0"
    Then "long" exits with code 1
    And the output of "long" matches "worker\.chat\[local/0\] \(http://127\.0\.0\.1:\d+\) stopped streaming after \d+ tokens?: the worker exited"
    And the output of "long" does not contain "without an end event"

  Scenario: a busy worker is retried with backoff, then the command gives up
    Given a local fleet file with pool "chat" serving model "tiny" with 1 slot
    When I run "rbee apply -auto-approve"
    Then the command succeeds
    When I start "rbee infer --model tiny --prompt 'Once upon a time' --max-tokens 30000 --ignore-eos --json" in the background as "long"
    And "long" has streamed a token
    And I run "rbee infer --model tiny --prompt hi --max-tokens 4"
    Then the exit code is 1
    And stderr contains "rbee: every worker of model \"tiny\" is busy; trying again in 1s"
    And stderr contains "rbee: every worker of model \"tiny\" is busy; trying again in 4s"
    And stderr contains "stayed busy (worker.chat[local/0]) after retrying for 7s"
    When I send SIGINT to "long"
    Then "long" exits with code 130

  Scenario: --gateway streams through rbee gateway
    When I run "rbee apply -auto-approve"
    Then the command succeeds
    And rbee gateway runs on a free port with every worker ready
    When I run "rbee infer --gateway http://127.0.0.1:${GW_PORT} --model chat --prompt 'Once upon a time' --max-tokens 5 --ignore-eos --json"
    Then the command succeeds
    And stdout is a JSON stream of a start event, 5 token events and an end event through the gateway
    When I run "rbee infer --gateway http://127.0.0.1:${GW_PORT} --model tiny --prompt 'Once upon a time' --max-tokens 4 --ignore-eos"
    Then the command succeeds
    And stdout matches "\S"
    And stderr contains "gateway at http://127.0.0.1:${GW_PORT}: prompt "
    And stderr contains "decode 4 tokens"
    When I run "rbee infer --gateway http://127.0.0.1:${GW_PORT} --model nope --prompt hi"
    Then the exit code is 1
    And stderr contains "the gateway at http://127.0.0.1:${GW_PORT} refused the request"
    And stderr contains "\"chat\""

  Scenario: --ephemeral runs on a temporary worker and stops it
    Given a local fleet file with pool "chat" serving model "tiny" with 0 replicas
    When I run "rbee apply -auto-approve"
    Then the command succeeds
    When I run "rbee infer --model tiny --prompt hi --max-tokens 4"
    Then the exit code is 1
    And stderr contains "--ephemeral"
    When I run "rbee infer --model tiny --prompt hi --max-tokens 4 --ignore-eos --ephemeral --json"
    Then the command succeeds
    And stdout contains "\"ephemeral\":true"
    And stderr contains "rbee: stopped the ephemeral worker on node local"
    And the hive runs no worker

  Scenario: a worker stopped by its idle timeout is started again on demand
    Given a local fleet file with pool "chat" serving model "tiny" with idle timeout "1s"
    When I run "rbee apply -auto-approve"
    Then the command succeeds
    And the hive reports worker "chat-0" as "stopped"
    When I run "rbee infer --model tiny --prompt hi --max-tokens 4 --ignore-eos"
    Then the command succeeds
    And stderr contains "rbee: starting worker.chat[local/0] again (the hive stopped it after its idle timeout)"
    And stderr contains "decode 4 tokens"

  Scenario: the demo script runs twice; the second apply changes nothing
    When I run the demo script
    Then the command succeeds
    And stdout contains "Apply complete! 3 added, 0 changed, 0 destroyed."
    And stderr contains "worker.chat[local/0] at http://127.0.0.1:"
    And stdout contains "destroy -auto-approve --config"
    When I run the demo script
    Then the command succeeds
    And stdout contains "Apply complete! 0 added, 0 changed, 0 destroyed."

  Scenario: the demo says when another program holds the hive's port
    Given another program listens on the demo's hive port
    When I run the demo script
    Then the exit code is 1
    And stderr contains "is already in use by another program"
    And stderr contains "run the demo with its hive on another port"
    And stderr contains "RBEE_DEMO_HIVE_PORT="
