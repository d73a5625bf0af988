@hive
Feature: The hive runs and supervises workers
  The hive spawns `rbee worker` processes on ports from 8001, waits until they
  are ready, restarts them when they crash, remembers them across restarts and
  stops them all when it is told to stop.

  Background:
    Given a hive
    And the model "tiny" is provisioned from "synth:tiny"

  Scenario: A worker is spawned, becomes ready and a second PUT changes nothing
    When I PUT "/v1/workers/chat-0" on the hive:
      """
      {"model": "tiny", "slots": 2, "ctx_size": 512, "pool": "chat"}
      """
    Then the hive answers 201
    And the hive's JSON "state" is "idle"
    And the hive's JSON "slots_total" is "2"
    And the hive's JSON "port" is at least 8001
    And the worker "chat-0" answers on its URL
    When I PUT "/v1/workers/chat-0" on the hive:
      """
      {"model": "tiny", "slots": 2, "ctx_size": 512, "pool": "chat", "load_timeout": "5m"}
      """
    Then the hive answers 200
    And the hive's JSON "restarts" is "0"
    When I GET "/v1/workers/chat-0/logs?lines=1000" on the hive
    Then the hive answers 200
    And the hive's answer contains "starting: "
    And the hive's answer contains "--worker-id chat-0"

  Scenario: A changed configuration replaces the worker
    Given a worker "chat-0" on the model "tiny"
    When I PUT "/v1/workers/chat-0" on the hive:
      """
      {"model": "tiny", "slots": 1, "ctx_size": 1024}
      """
    Then the hive answers 201
    And the hive's JSON "slots_total" is "1"
    And the hive's JSON "config.ctx_size" is "1024"

  Scenario: A busy port is skipped and the log says so
    Given the first free worker port is held by another program
    And a worker "chat-0" on the model "tiny"
    Then the worker "chat-0" does not use the held port
    And the hive's output contains "worker port is busy; trying the next one"

  Scenario: A worker killed with SIGKILL is restarted and the restart shows in the state
    Given a worker "chat-0" on the model "tiny"
    When I kill -9 the worker "chat-0"
    Then the worker "chat-0" is "idle" again with a new pid and 1 restart in the hive's state
    And the worker "chat-0" answers on its URL

  # The worker exits with status 3 (the model cannot load): restarting cannot
  # help, so the restart after the kill is the last one.
  Scenario: A worker whose model cannot load is failed at once, with the reason
    Given a worker "chat-0" on the model "tiny"
    And the model file of "tiny" is replaced by garbage of the same size
    When I kill -9 the worker "chat-0"
    Then the worker "chat-0" becomes "failed"
    When I GET "/v1/workers/chat-0" on the hive
    Then the hive's answer contains "model load failed, not restarting: exited with status 3; last output: error: "
    And the hive's JSON "restarts" is "1"
    When I PUT "/v1/workers/chat-1" on the hive:
      """
      {"model": "tiny", "slots": 1, "ctx_size": 512}
      """
    Then the hive answers 422
    And the hive's JSON "error.code" is "INVALID_MODEL"
    And the hive's answer contains "magic bytes"
    And the hive's answer does not contain "garb"

  Scenario: A worker that is not ready within its load timeout is reported with its last output
    When I PUT "/v1/workers/chat-0" on the hive:
      """
      {"model": "tiny", "slots": 1, "ctx_size": 512, "load_timeout": "1ms"}
      """
    Then the hive answers 502
    And the hive's JSON "error.code" is "WORKER_START_FAILED"
    And the hive's answer contains "not ready within the load timeout of 1ms"
    And the hive's answer contains "--worker-id chat-0"

  Scenario: An idle worker is stopped after its idle timeout and started again by a PUT
    When I PUT "/v1/workers/chat-0" on the hive:
      """
      {"model": "tiny", "slots": 1, "ctx_size": 512, "idle_timeout": "2s"}
      """
    Then the hive answers 201
    And the worker "chat-0" becomes "stopped"
    When I PUT "/v1/workers/chat-0" on the hive:
      """
      {"model": "tiny", "slots": 1, "ctx_size": 512, "idle_timeout": "2s"}
      """
    Then the hive answers 200
    And the hive's JSON "state" is "idle"

  Scenario: A hive restart brings its workers back
    Given a worker "chat-0" on the model "tiny"
    And a worker "chat-1" on the model "tiny"
    When I restart the hive
    Then the worker "chat-0" is "idle" again with a new pid and 0 restarts in the hive's state
    And the worker "chat-1" is "idle" again with a new pid and 0 restarts in the hive's state
    And the hive's catalog has the model "tiny"

  Scenario: SIGTERM stops every worker and leaves no process behind
    Given a worker "chat-0" on the model "tiny"
    And a worker "chat-1" on the model "tiny"
    When I send SIGTERM to the hive
    Then the hive exits with code 0
    And no process of the hive or its workers is left

  Scenario: Deleting a worker stops it; a model in use cannot be deleted
    Given a worker "chat-0" on the model "tiny"
    When I DELETE "/v1/models/tiny" on the hive
    Then the hive answers 409
    And the hive's JSON "error.code" is "MODEL_IN_USE"
    When I DELETE "/v1/workers/chat-0" on the hive
    Then the hive answers 204
    When I GET "/v1/workers" on the hive
    Then the hive's answer does not contain "chat-0"
    When I DELETE "/v1/models/tiny" on the hive
    Then the hive answers 204

  Scenario: A deleted worker drains the requests in flight before it stops, and other workers can change meanwhile
    When I PUT "/v1/workers/chat-0" on the hive:
      """
      {"model": "tiny", "slots": 1, "ctx_size": 1024, "drain_timeout": "5m"}
      """
    Then the hive answers 201
    When I start an inference of 400 tokens on the worker "chat-0"
    And I start a DELETE of "/v1/workers/chat-0" on the hive
    Then the worker "chat-0" becomes "draining"
    When I PUT "/v1/workers/chat-0" on the hive:
      """
      {"model": "tiny", "slots": 1, "ctx_size": 1024, "drain_timeout": "5m"}
      """
    Then the hive answers 409
    And the hive's JSON "error.code" is "WORKER_STOPPING"
    When I PUT "/v1/workers/chat-1?wait=false" on the hive:
      """
      {"model": "tiny", "slots": 1, "ctx_size": 512}
      """
    Then the hive answers 201
    And the inference ends with "max_tokens"
    And the started request answers 204

  Scenario Outline: Preflight refuses what the node cannot run, and says why
    When I PUT "/v1/workers/chat-0" on the hive:
      """
      <body>
      """
    Then the hive answers <status>
    And the hive's JSON "error.code" is "<code>"
    And the hive's answer contains "<text>"

    # The tiny model's KV cache for 1,048,576 tokens × 64 slots is 32 GiB.
    Examples:
      | body                                                        | status | code                | text                          |
      | {"model": "tiny", "ctx_size": 1048576, "slots": 64}         | 507    | INSUFFICIENT_RAM    | available_bytes               |
      | {"model": "tiny", "backend": "metal"}                       | 400    | BACKEND_UNAVAILABLE | available: cpu                |
      | {"model": "tiny", "backend": "cuda"}                        | 400    | BACKEND_UNAVAILABLE | no NVIDIA GPU is listed       |
      | {"model": "tiny", "drain_timeout": "later"}                 | 400    | INVALID_FIELD       | drain_timeout                 |
      | {"model": "tiny", "backend": "cpu", "device": 2}            | 400    | DEVICE_NOT_FOUND    | device 2 does not exist       |
      | {"model": "nope"}                                           | 404    | MODEL_NOT_FOUND     | provision it first            |
      | {"model": "tiny", "backend": "rocm"}                        | 400    | INVALID_FIELD       | allowed: cpu, cuda, metal     |
      | {"model": "tiny", "slots": 0, "ctx_size": 8}                | 400    | INVALID_FIELD       | ctx_size                      |
      | {"model": "tiny", "load_timeout": "soon"}                   | 400    | INVALID_FIELD       | load_timeout                  |
