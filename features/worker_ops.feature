@worker
Feature: the worker stays up, drains, and says why it cannot start
  One request never kills a worker: sampling values llama.cpp cannot take
  are refused or made greedy. Every route checks its method. A drained worker
  finishes what it has and takes nothing new. Engine flags reach llama.cpp,
  and a model that cannot be loaded as asked exits 3 with one line saying why.

  Background:
    Given the tiny worker model

  Scenario Outline: a tiny or subnormal sampling value is greedy or a 400, never a crash
    Given a ready worker on the tiny model
    When I POST to "<path>" on the worker:
      """
      <body>
      """
    Then the response status is <status>
    And the worker is still running
    When I GET "/health" from the worker
    Then the response status is 200

    Examples:
      | path                 | body                                                                                        | status |
      | /v1/completions      | {"prompt": "hi", "max_tokens": 5, "temperature": 1e-39}                                     | 200    |
      | /v1/completions      | {"prompt": "hi", "max_tokens": 5, "temperature": 1e-44}                                     | 200    |
      | /v1/completions      | {"prompt": "hi", "max_tokens": 5, "temperature": 2e-38}                                     | 200    |
      | /v1/inference        | {"prompt": "hi", "max_tokens": 5, "temperature": 1e-39, "top_p": 1e-40, "min_p": 1e-40}     | 200    |
      | /v1/chat/completions | {"messages": [{"role": "user", "content": "hi hi hi"}], "max_tokens": 5, "repeat_penalty": 1e-40} | 400 |
      | /v1/chat/completions | {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 5, "presence_penalty": 1e-40, "frequency_penalty": -1e-40} | 200 |

  Scenario: a tiny temperature decodes greedily, like temperature 0
    Given a ready worker on the tiny model
    When I POST to "/v1/inference" on the worker:
      """
      {"prompt": "Tell me a story", "max_tokens": 10, "temperature": 0, "ignore_eos": true}
      """
    And I remember the streamed text as "greedy"
    And I POST to "/v1/inference" on the worker:
      """
      {"prompt": "Tell me a story", "max_tokens": 10, "temperature": 1e-39, "seed": 5, "ignore_eos": true}
      """
    Then the streamed text is "${greedy}"

  Scenario Outline: every route answers a wrong method with 405 and Allow
    Given a ready worker on the tiny model
    When I <method> "<path>" on the worker
    Then the response status is 405
    And the response header "Allow" is "<allow>"
    And the response JSON "error.code" is "METHOD_NOT_ALLOWED"

    Examples:
      | method | path                 | allow     |
      | DELETE | /metrics             | GET, HEAD |
      | PUT    | /metrics             | GET, HEAD |
      | DELETE | /v1/ready            | GET, HEAD |
      | PUT    | /v1/models           | GET, HEAD |
      | GET    | /v1/chat/completions | POST      |
      | DELETE | /v1/admin/drain      | POST      |

  Scenario: /metrics passes promtool and has latency histograms
    Given a ready worker on the tiny model with "--slots 2"
    When I POST to "/v1/completions" on the worker:
      """
      {"prompt": "count me", "max_tokens": 4, "ignore_eos": true}
      """
    Then the worker's metrics pass "promtool check metrics"
    And the response body contains "rbee_worker_slots 2"
    And the response body contains "rbee_worker_time_to_first_token_seconds_count{endpoint=\"completions\"} 1"
    And the response body contains "rbee_worker_request_duration_seconds_count{endpoint=\"completions\"} 1"
    And the response body contains "rbee_worker_prompt_tokens_cached_total"

  Scenario: a drained worker finishes what it runs and refuses what is new
    Given a ready worker on the tiny model with "--slots 2 --ctx-size 8192"
    When I start streaming to "/v1/inference" on the worker as "long":
      """
      {"prompt": "Tell me a long story", "max_tokens": 200, "ignore_eos": true}
      """
    And the stream "long" has received 3 token events
    And I POST to "/v1/admin/drain" on the worker:
      """
      {}
      """
    Then the response status is 202
    And the response JSON "state" is "draining"
    And the response JSON "in_flight" is 1
    When I GET "/v1/ready" from the worker
    Then the response JSON "ready" is false
    And the response JSON "state" is "draining"
    When I POST to "/v1/chat/completions" on the worker:
      """
      {"messages": [{"role": "user", "content": "me too"}], "max_tokens": 4}
      """
    Then the response status is 503
    And the response JSON "error.code" is "DRAINING"
    And the response header "Retry-After" is "1"
    And the stream "long" runs to its end with "stop_reason" "max_tokens"
    When I GET "/v1/ready" from the worker
    Then the response JSON "in_flight" is 0
    And the response JSON "state" is "draining"

  Scenario: engine flags reach the engine and show in /v1/ready
    Given a ready worker on the tiny model with "--flash-attn --kv-cache-type q8_0 --chat-template llama3 --ctx-size 256"
    When I GET "/v1/ready" from the worker
    Then the response JSON "chat_template" is "llama3"
    And the response JSON "ctx_size" is 256
    And the output of the worker contains "kv_cache_type=q8_0"

  Scenario Outline: a model that cannot be loaded as asked exits 3 with one line saying why
    Given a file "broken.gguf" with:
      """
      this is not a GGUF file
      """
    When I run "timeout 60 rbee worker --port 18997 <args>"
    Then the exit code is 3
    And stderr ends with the one line starting with "error: "
    And stderr contains "<says>"

    Examples:
      | args                                         | says             |
      | --model broken.gguf                          | broken.gguf      |
      | --model tiny.gguf --kv-cache-type q4_0       | flash attention  |
      | --model tiny.gguf --chat-template no-such    | no-such          |
