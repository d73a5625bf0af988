@worker
Feature: the llama.cpp worker
  `rbee worker` serves one GGUF model over HTTP: native SSE on /v1/inference,
  OpenAI-compatible completions, readiness with load progress, cancellation,
  Prometheus metrics. Every scenario runs the real binary on the generated
  `tiny` model.

  Background:
    Given the tiny worker model

  Scenario: the worker answers while it loads, then becomes ready
    # The tiny model loads in milliseconds, too fast to observe; the test hook
    # RBEE_WORKER_LOAD_DELAY holds the real load back so the loading state can be seen.
    Given the environment variable "RBEE_WORKER_LOAD_DELAY" is "3s"
    And a worker on the tiny model
    When I GET "/v1/ready" from the worker
    Then the response status is 200
    And the response JSON "state" is "loading"
    And the response JSON "ready" is false
    When I POST to "/v1/inference" on the worker:
      """
      {"prompt": "Once upon a time", "max_tokens": 4}
      """
    Then the response status is 503
    And the response JSON "error.code" is "LOADING"
    And the response header "Retry-After" is "1"
    And the worker becomes ready
    And the response JSON "state" is "idle"
    And the response JSON "progress" is 1
    And the response JSON "slots_free" is 4

  Scenario: tokens stream as server-sent events and end with [DONE]
    Given a ready worker on the tiny model
    When I POST to "/v1/inference" on the worker:
      """
      {"prompt": "Once upon a time", "max_tokens": 20, "temperature": 0, "job_id": "story-1", "ignore_eos": true}
      """
    Then the response status is 200
    And the response header "Content-Type" is "text/event-stream"
    And the response header "X-Job-Id" is "story-1"
    And the first event is "started" with "job_id" "story-1"
    And the stream ends with "data: [DONE]"
    And the end event has "stop_reason" "max_tokens"
    And the end event has "tokens_out" 20

  Scenario Outline: max_tokens is honoured
    Given a ready worker on the tiny model
    When I POST to "/v1/inference" on the worker:
      """
      {"prompt": "The quick brown fox", "max_tokens": <n>, "seed": 7, "ignore_eos": true}
      """
    Then the stream has <n> "token" events
    And the end event has "tokens_out" <n>

    Examples:
      | n  |
      | 1  |
      | 7  |
      | 64 |

  Scenario: greedy decoding is reproducible and a stop string ends the stream
    Given a ready worker on the tiny model
    When I POST to "/v1/inference" on the worker:
      """
      {"prompt": "Tell me a story", "max_tokens": 12, "temperature": 0, "ignore_eos": true}
      """
    And I remember the streamed text as "first"
    And I POST to "/v1/inference" on the worker:
      """
      {"prompt": "Tell me a story", "max_tokens": 12, "temperature": 0, "ignore_eos": true}
      """
    Then the streamed text is "${first}"
    When I POST to "/v1/inference" on the worker with a 3-character piece of "${first}" as stop string and:
      """
      {"prompt": "Tell me a story", "max_tokens": 12, "temperature": 0, "ignore_eos": true}
      """
    Then the end event has "stop_reason" "stop"
    And the streamed text is what precedes the stop string in "${first}"

  Scenario: cancelling a job mid-stream frees its slot at once
    Given a ready worker on the tiny model with "--slots 2 --ctx-size 8192"
    When I start streaming to "/v1/inference" on the worker as "long":
      """
      {"prompt": "Tell me a long story", "max_tokens": 8000, "job_id": "long-1", "ignore_eos": true}
      """
    And the stream "long" has received 5 token events
    Then the worker reports 1 of 2 slots free
    When I DELETE "/v1/inference/long-1" on the worker
    Then the response status is 200
    And the response JSON "cancelled" is true
    And the stream "long" ends with "stop_reason" "cancelled"
    And the worker reports 2 of 2 slots free
    When I DELETE "/v1/inference/long-1" on the worker
    Then the response status is 404
    And the response JSON "error.code" is "JOB_NOT_FOUND"

  Scenario: a client that disconnects frees its slot
    Given a ready worker on the tiny model with "--slots 1 --ctx-size 8192"
    When I start streaming to "/v1/inference" on the worker as "long":
      """
      {"prompt": "Tell me a long story", "max_tokens": 8000, "ignore_eos": true}
      """
    And the stream "long" has received 5 token events
    Then the worker reports 0 of 1 slots free
    When I close the stream "long"
    Then the worker reports 1 of 1 slots free

  Scenario: a request that finds every slot busy gets 503 ALL_SLOTS_BUSY
    Given a ready worker on the tiny model with "--slots 2 --ctx-size 8192"
    When I start streaming to "/v1/inference" on the worker as "long":
      """
      {"prompt": "Tell me a long story", "max_tokens": 8000, "ignore_eos": true}
      """
    And I start streaming to "/v1/inference" on the worker as "long2":
      """
      {"prompt": "Tell me another long story", "max_tokens": 8000, "ignore_eos": true}
      """
    And the stream "long" has received 2 token events
    And the stream "long2" has received 2 token events
    And I POST to "/v1/inference" on the worker:
      """
      {"prompt": "me too", "max_tokens": 4}
      """
    Then the response status is 503
    And the response JSON "error.code" is "ALL_SLOTS_BUSY"
    And the response JSON "error.message" matches "^all 2 slots of this worker are busy"
    And the response header "Retry-After" is "1"
    When I GET "/v1/ready" from the worker
    Then the response JSON "state" is "busy"
    When I POST to "/v1/completions" on the worker:
      """
      {"prompt": "me too", "max_tokens": 4}
      """
    Then the response status is 503
    And the response JSON "error.code" is "ALL_SLOTS_BUSY"

  Scenario Outline: invalid requests are refused with 400 naming the field
    Given a ready worker on the tiny model with "--ctx-size 512"
    When I POST to "<path>" on the worker:
      """
      <body>
      """
    Then the response status is <status>
    And the response JSON "error.code" is "<code>"
    And the response JSON "error.details.field" is "<field>"

    Examples:
      | path                 | body                                                  | status | code            | field          |
      | /v1/inference        | {"prompt": ""}                                        | 400    | INVALID_REQUEST | prompt         |
      | /v1/inference        | {"prompt": "hi", "max_tokens": 0}                     | 400    | INVALID_REQUEST | max_tokens     |
      | /v1/inference        | {"prompt": "hi", "max_tokens": -3}                    | 400    | INVALID_REQUEST | max_tokens     |
      | /v1/inference        | {"prompt": "hi", "max_tokens": 100000}                | 400    | INVALID_REQUEST | max_tokens     |
      | /v1/inference        | {"prompt": "hi", "max_tokens": 511}                   | 400    | INVALID_REQUEST | max_tokens     |
      | /v1/inference        | {"prompt": "hi", "temperature": -0.1}                 | 400    | INVALID_REQUEST | temperature    |
      | /v1/inference        | {"prompt": "hi", "temperature": 2.5}                  | 400    | INVALID_REQUEST | temperature    |
      | /v1/inference        | {"prompt": "hi", "top_p": 1.5}                        | 400    | INVALID_REQUEST | top_p          |
      | /v1/inference        | {"prompt": "hi", "top_p": -1}                         | 400    | INVALID_REQUEST | top_p          |
      | /v1/inference        | {"prompt": "hi", "top_k": -1}                         | 400    | INVALID_REQUEST | top_k          |
      | /v1/inference        | {"prompt": "hi", "top_k": 99999999}                   | 400    | INVALID_REQUEST | top_k          |
      | /v1/inference        | {"prompt": "hi", "min_p": 2}                          | 400    | INVALID_REQUEST | min_p          |
      | /v1/inference        | {"prompt": "hi", "repeat_penalty": 0}                 | 400    | INVALID_REQUEST | repeat_penalty |
      | /v1/inference        | {"prompt": "hi", "seed": -1}                          | 400    | INVALID_REQUEST | seed           |
      | /v1/inference        | {"prompt": "hi", "stop": ["a","b","c","d","e"]}       | 400    | INVALID_REQUEST | stop           |
      | /v1/inference        | {"prompt": "hi", "stop": [""]}                        | 400    | INVALID_REQUEST | stop           |
      | /v1/inference        | {"prompt": "hi", "job_id": "../etc/passwd"}           | 400    | INVALID_REQUEST | job_id         |
      | /v1/inference        | {"prompt": "hi\u0000there"}                           | 400    | INVALID_REQUEST | prompt         |
      | /v1/inference        | {"prompt": "hi", "colour": "blue"}                    | 400    | INVALID_JSON    | colour         |
      | /v1/inference        | {"prompt": "hi", "max_tokens": "ten"}                 | 400    | INVALID_JSON    | max_tokens     |
      | /v1/completions      | {"prompt": "hi", "top_p": 3}                          | 400    | INVALID_REQUEST | top_p          |
      | /v1/completions      | {"prompt": ["a", "b"]}                                | 400    | INVALID_REQUEST | prompt         |
      | /v1/completions      | {"prompt": "hi", "n": 2}                              | 400    | INVALID_REQUEST | n              |
      | /v1/completions      | {"prompt": "hi", "logprobs": 3}                       | 400    | INVALID_JSON    | logprobs       |
      | /v1/chat/completions | {"messages": []}                                      | 400    | INVALID_REQUEST | messages       |
      | /v1/chat/completions | {"messages": [{"role": "robot", "content": "hi"}]}    | 400    | INVALID_REQUEST | messages[0].role |
      | /v1/chat/completions | {"messages": [{"role": "user", "content": "hi"}], "temperature": 9} | 400 | INVALID_REQUEST | temperature |

  Scenario: malformed, empty and oversized bodies
    Given a ready worker on the tiny model
    When I POST to "/v1/inference" on the worker:
      """
      {"prompt": "unterminated
      """
    Then the response status is 400
    And the response JSON "error.code" is "INVALID_JSON"
    When I POST an empty body to "/v1/inference" on the worker
    Then the response status is 400
    And the response JSON "error.code" is "INVALID_JSON"
    When I POST a prompt of 2 MiB to "/v1/inference" on the worker
    Then the response status is 413
    And the response JSON "error.code" is "BODY_TOO_LARGE"
    When I GET "/v1/inference" from the worker
    Then the response status is 405
    When I GET "/v1/nothing-here" from the worker
    Then the response status is 404
    And the response JSON "error.code" is "NOT_FOUND"

  Scenario: OpenAI completions, plain and streaming
    Given a ready worker on the tiny model
    When I POST to "/v1/completions" on the worker:
      """
      {"model": "tiny", "prompt": "Once upon a time", "max_tokens": 6, "temperature": 0, "ignore_eos": true}
      """
    Then the response status is 200
    And the response JSON "object" is "text_completion"
    And the response JSON "model" is "tiny"
    And the response JSON "choices.0.index" is 0
    And the response JSON "choices.0.text" is a non-empty string
    And the response JSON "choices.0.finish_reason" is "length"
    And the response JSON "usage.completion_tokens" is 6
    And the response JSON "usage.total_tokens" is the sum of "usage.prompt_tokens" and "usage.completion_tokens"
    When I POST to "/v1/completions" on the worker:
      """
      {"model": "tiny", "prompt": "Once upon a time", "max_tokens": 6, "temperature": 0, "stream": true, "ignore_eos": true}
      """
    Then the response status is 200
    And every event is a JSON object with "object" "text_completion"
    And the streamed OpenAI text equals the text of the plain completion
    And the last event has "choices.0.finish_reason" "length"
    And the stream ends with "data: [DONE]"

  Scenario: OpenAI chat completions, plain and streaming
    Given a ready worker on the tiny model
    When I POST to "/v1/chat/completions" on the worker:
      """
      {"model": "tiny", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": [{"type": "text", "text": "Hello"}]}], "max_tokens": 5, "seed": 1, "ignore_eos": true}
      """
    Then the response status is 200
    And the response JSON "object" is "chat.completion"
    And the response JSON "id" matches "^chatcmpl-"
    And the response JSON "choices.0.message.role" is "assistant"
    And the response JSON "choices.0.message.content" is a string
    And the response JSON "choices.0.finish_reason" is "length"
    And the response JSON "usage.completion_tokens" is 5
    When I POST to "/v1/chat/completions" on the worker:
      """
      {"model": "tiny", "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 5, "stream": true, "stream_options": {"include_usage": true}, "ignore_eos": true}
      """
    Then the response status is 200
    And every event is a JSON object with "object" "chat.completion.chunk"
    And the first event has "choices.0.delta.role" "assistant"
    And the last event has "choices.0.finish_reason" "length"
    And the last event has "usage.completion_tokens" 5
    And the stream ends with "data: [DONE]"

  Scenario: metrics count tokens, requests and slots
    Given a ready worker on the tiny model with "--slots 3"
    When I POST to "/v1/inference" on the worker:
      """
      {"prompt": "count me", "max_tokens": 9, "ignore_eos": true}
      """
    And I GET "/metrics" from the worker
    Then the response status is 200
    And the response body contains "rbee_worker_generated_tokens_total 9"
    And the response body contains "rbee_worker_slots 3"
    And the response body contains "rbee_worker_slots_busy 0"
    And the response body contains "rbee_worker_requests_total{endpoint=\"inference\",outcome=\"max_tokens\"} 1"
    And the response body contains "rbee_worker_tokens_per_second"

  Scenario: a non-loopback bind requires a bearer token
    Given a token file "worker.token" holding "s3cret-token"
    And a ready worker on the tiny model with "--host 0.0.0.0 --token-file worker.token"
    When I GET "/v1/ready" from the worker
    Then the response status is 401
    And the response header "WWW-Authenticate" contains "Bearer"
    And the response JSON "error.code" is "UNAUTHORIZED"
    When I GET "/v1/ready" from the worker with the token "wrong"
    Then the response status is 401
    When I GET "/v1/ready" from the worker with the token "s3cret-token"
    Then the response status is 200
    And the response JSON "ready" is true
    And the output of the worker does not contain "s3cret-token"

  Scenario: a non-loopback bind without a token, or with a loose token file, is refused
    When I run "rbee worker --model tiny.gguf --port 18999 --host 0.0.0.0"
    Then the exit code is 1
    And stderr contains "refusing to listen on 0.0.0.0:18999 without a token"
    Given a file "loose.token" with:
      """
      s3cret-token
      """
    When I run "rbee worker --model tiny.gguf --port 18999 --host 0.0.0.0 --token-file loose.token"
    Then the exit code is 1
    And stderr contains "chmod 600"

  Scenario: llama.cpp's buffers are on huge pages, and Go code leaves llama.cpp its cores
    # The worker starts itself again (same pid) with glibc's malloc asking for
    # transparent huge pages for the large blocks llama.cpp allocates.
    Given a ready worker on the tiny model with "--threads 64"
    Then the worker process has "GLIBC_TUNABLES=glibc.malloc.hugetlb=1" in its environment
    And the worker's output contains "gomaxprocs=1 threads=64"

  Scenario: a user opts out of huge pages with GLIBC_TUNABLES
    Given the environment variable "GLIBC_TUNABLES" is "glibc.malloc.hugetlb=0"
    And a ready worker on the tiny model
    Then the worker process has "GLIBC_TUNABLES=glibc.malloc.hugetlb=0" in its environment

  Scenario: the worker reports ready to its callback URL
    Given a callback receiver
    And a ready worker on the tiny model with "--worker-id w-7 --callback-url ${CALLBACK}"
    Then the callback receiver gets {"worker_id": "w-7", "state": "ready"} with the worker's URL

  Scenario: SIGTERM cancels running jobs and exits 0
    Given a ready worker on the tiny model with "--ctx-size 8192"
    When I start streaming to "/v1/inference" on the worker as "long":
      """
      {"prompt": "Tell me a long story", "max_tokens": 8000, "ignore_eos": true}
      """
    And the stream "long" has received 3 token events
    And I send SIGTERM to the worker
    Then the stream "long" ends with "stop_reason" "cancelled"
    And the worker exits with code 0

  Scenario: an admin shutdown request stops the worker
    Given a ready worker on the tiny model
    When I POST to "/v1/admin/shutdown" on the worker:
      """
      {}
      """
    Then the response status is 202
    And the worker exits with code 0

  Scenario: a missing model file or a busy port is a clear error
    When I run "rbee worker --model nope.gguf --port 18998"
    Then the exit code is 1
    And stderr contains "nope.gguf"
    Given a ready worker on the tiny model
    When I run "rbee worker --model tiny.gguf --port ${PORT}"
    Then the exit code is 1
    And stderr contains "pick another --port"

  Scenario Outline: a port outside 1024-65535 is refused
    # timeout only ends a worker that wrongly starts serving; it then exits 124, not 1.
    When I run "timeout 30 rbee worker --model tiny.gguf --port <port>"
    Then the exit code is 1
    And stderr contains "--port must be 1024-65535"

    Examples:
      | port  |
      | 0     |
      | 80    |
      | 1023  |
      | 65536 |

  Scenario: 1000 random request bodies do not crash the worker
    Given a ready worker on the tiny model with "--ctx-size 64"
    When I send 1000 random requests to the worker
    Then no response had status 500 or above except 503
    And the worker is still running
    And I GET "/health" from the worker
    And the response status is 200
