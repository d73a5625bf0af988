@logs
Feature: rbee logs shows the log of a hive or of a worker
  node.NAME is the hive's own log file on its node, worker.POOL[NODE/I] the
  worker's output as its hive keeps it. Everything here runs for real: a hive
  on this machine installed by `rbee apply`, a llama.cpp worker on a
  generated model.

  Background:
    Given a local fleet file with pool "chat" serving model "tiny"

  Scenario: the hive's log and a worker's log
    When I run "rbee apply -auto-approve"
    Then the command succeeds
    When I run "rbee logs node.local"
    Then the command succeeds
    And stdout contains "msg=\"worker ready\" worker=chat-0"
    When I run "rbee logs 'worker.chat[local/0]'"
    Then the command succeeds
    And stdout contains "msg=\"worker ready\""
    When I run "rbee logs 'worker.chat[local/0]' --tail 1000"
    Then the command succeeds
    And stdout contains "[hive] starting: "
    When I run "rbee logs 'worker.chat[local/0]' --tail 2 --json"
    Then the command succeeds
    And stdout matches "^(\{\"source\":\"worker\.chat\[local/0\]\",\"line\":\"[^\n]*\"\}\n){2}$"

  Scenario: -f follows a worker's log until Ctrl-C, which exits 0
    When I run "rbee apply -auto-approve"
    Then the command succeeds
    When I start "rbee logs 'worker.chat[local/0]' -f --tail 1" in the background as "follow"
    And I run "rbee infer --model tiny --prompt hi --max-tokens 3 --ignore-eos"
    Then the command succeeds
    And the output of "follow" comes to match "job finished.* tokens=3 "
    When I send SIGINT to "follow"
    Then "follow" exits with code 0

  Scenario: -f follows the hive's log
    When I run "rbee apply -auto-approve"
    Then the command succeeds
    When I start "rbee logs node.local -f --tail 1" in the background as "follow"
    Then the output of "follow" comes to match "msg="
    Given a local fleet file with pool "chat" serving model "tiny" with 2 replicas
    When I run "rbee apply -auto-approve"
    Then the command succeeds
    And the output of "follow" comes to match "msg=\"worker started\" worker=chat-1"
    When I send SIGINT to "follow"
    Then "follow" exits with code 0

  Scenario: an unknown address lists the logs that exist
    When I run "rbee apply -auto-approve"
    Then the command succeeds
    When I run "rbee logs 'worker.chat[local/7]'"
    Then the exit code is 1
    And stderr contains "\"worker.chat[local/7]\" is not in the state; the logs are those of node.local, worker.chat[local/0]"
    When I run "rbee logs --tail 0 node.local"
    Then the exit code is 1
    And stderr contains "--tail 0: use a number of lines from 1"
