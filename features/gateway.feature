@gateway
Feature: rbee gateway, one OpenAI-compatible endpoint for the whole fleet
  The gateway reads which workers exist from the state that apply records,
  polls each one's readiness, and sends every request to the ready worker of
  the named pool (or model) with the most free slots, queueing it when every
  slot is busy. Everything here runs for real: a hive on this machine, llama.cpp
  workers on a generated model, and the official OpenAI Go client.

  Scenario: the OpenAI client streams chat and completions and lists the models
    Given a local fleet file with these pools of model "tiny":
      | pool  | replicas | slots | ctx_size |
      | chat  | 2        | 2     | 4096     |
      | other | 1        | 1     | 4096     |
    When I run "rbee apply -auto-approve"
    Then the command succeeds
    And the gateway runs
    Then the OpenAI client lists these models:
      | id    | kind  | ready | workers |
      | chat  | pool  | 2     | 2       |
      | other | pool  | 1     | 1       |
      | tiny  | model | 3     | 3       |
    And the OpenAI client streams a chat completion of 8 tokens from "chat"
    And the OpenAI client streams a completion of 8 tokens from "other"
    And the OpenAI client streams a completion of 4 tokens from "tiny"
    And the OpenAI client gets a chat completion from "chat"
    And a completion request to "nope" through the gateway answers 404 with code "model_not_found"
    And the gateway metrics contain "rbee_gateway_requests_total{model=\"chat\",outcome=\"ok\"} 2"
    And the gateway metrics contain "rbee_gateway_tokens_out_total{model=\"other\"} 8"
    And the gateway metrics contain "rbee_gateway_workers{state=\"idle\"} 3"

  Scenario: more concurrent streams than slots all finish through the queue
    Given a local fleet file with these pools of model "tiny":
      | pool | replicas | slots | ctx_size |
      | chat | 2        | 1     | 4096     |
    When I run "rbee apply -auto-approve"
    Then the command succeeds
    And the gateway runs with "--queue-timeout 5m"
    When 6 OpenAI clients at once each stream a completion of 16 tokens from "chat"
    Then the gateway metrics show requests to "chat" that waited in the queue
    And the gateway metrics contain "rbee_gateway_requests_total{model=\"chat\",outcome=\"ok\"} 6"

  Scenario: a full queue answers 503 QUEUE_FULL, a long wait 504 QUEUE_TIMEOUT
    Given a local fleet file with these pools of model "tiny":
      | pool | replicas | slots | ctx_size |
      | solo | 1        | 1     | 32768    |
    When I run "rbee apply -auto-approve"
    Then the command succeeds
    And the gateway runs with "--queue 1 --queue-timeout 3s"
    When I start a stream of 30000 tokens from "solo" through the gateway as "long"
    And stream "long" has had a token
    And I start a stream of 2 tokens from "solo" through the gateway as "queued"
    Then the gateway metrics contain "rbee_gateway_queue_depth{model=\"solo\"} 1"
    And a completion request to "solo" through the gateway answers 503 with code "QUEUE_FULL"
    And the answer has the header "Retry-After"
    And stream "queued" is answered 504 with code "QUEUE_TIMEOUT"
    And the gateway metrics contain "rbee_gateway_requests_total{model=\"solo\",outcome=\"queue_full\"} 1"
    And the gateway metrics contain "rbee_gateway_requests_total{model=\"solo\",outcome=\"queue_timeout\"} 1"

  Scenario: a worker killed with -9 ends its stream with an error; new requests go to the other
    Given a local fleet file with these pools of model "tiny":
      | pool | replicas | slots | ctx_size |
      | chat | 2        | 2     | 32768    |
    When I run "rbee apply -auto-approve"
    Then the command succeeds
    And the gateway runs
    When I start a stream of 30000 tokens from "chat" through the gateway as "doomed"
    And stream "doomed" has had a token
    And I kill -9 the worker that serves stream "doomed"
    Then stream "doomed" ends with an error event that contains "stopped mid-stream after"
    And a completion request to "chat" through the gateway answers 200
    And a completion request to "chat" through the gateway answers 200
    And a completion request to "chat" through the gateway answers 200
    And the gateway metrics contain "outcome=\"worker_died\"} 1"

  Scenario: off loopback the gateway needs API keys, and checks them
    Given a local fleet file with these pools of model "tiny":
      | pool | replicas | slots | ctx_size |
      | chat | 1        | 1     | 4096     |
    When I run "rbee apply -auto-approve"
    Then the command succeeds
    When I run "rbee gateway --listen 0.0.0.0:${GW_PORT}"
    Then the exit code is 1
    And stderr contains "without API keys"
    Given a file "api-keys" with:
      """
      # clients
      key-one-7f3a
      """
    When I run "chmod 600 api-keys"
    And clients send the API key "key-one-7f3a"
    And the gateway runs with "--listen 0.0.0.0:${GW_PORT} --api-keys-file api-keys"
    Then GET "/v1/models" of the gateway answers 200
    And the OpenAI client streams a completion of 4 tokens from "chat"
    When clients send the API key "wrong"
    Then GET "/v1/models" of the gateway answers 401
    And the answer is an OpenAI error with code "invalid_api_key"
    And GET "/health" of the gateway answers 200
    And the gateway output does not contain "key-one-7f3a"

  Scenario: an apply that changes ctx_size of a 2-replica pool while a client streams loses no request
    Given a local fleet file with these pools of model "tiny":
      | pool | replicas | slots | ctx_size |
      | chat | 2        | 1     | 1024     |
    When I run "rbee apply -auto-approve"
    Then the command succeeds
    And the gateway runs
    When a client streams completions of 8 tokens from "chat" through the gateway in a loop as "loop"
    Then client loop "loop" has completed 2 requests without an error
    When I run "sed -i 's/ctx_size = 1024/ctx_size = 2048/' rbee.hcl"
    And I run "rbee plan"
    Then stdout contains "+/- worker.chat[local/0]: ctx_size 1024 → 2048"
    And stdout contains "+/- worker.chat[local/1]: ctx_size 1024 → 2048"
    When I run "rbee apply -auto-approve"
    Then the command succeeds
    And client loop "loop" has completed 2 more requests without an error
    And client loop "loop" lost no request
    When I run "rbee plan -detailed-exitcode"
    Then the exit code is 0

  Scenario: rbee watch serves the gateway of the file's gateway block on its own address
    Given a local fleet file with these pools of model "tiny":
      | pool | replicas | slots | ctx_size |
      | chat | 1        | 1     | 1024     |
    And I run "printf 'gateway {\n  queue = 4\n}\n' >> rbee.hcl"
    And the daemon runs with "--interval 1m"
    And the daemon serves the gateway
    Then the OpenAI client streams a completion of 4 tokens from "chat"
    And the gateway metrics contain "rbee_watch_config_valid 1"
    And the gateway metrics contain "rbee_gateway_requests_total{model=\"chat\",outcome=\"ok\"} 1"
