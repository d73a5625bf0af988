@backend
Feature: ggml CPU backends load from the library folder beside the binary
  The rbee binary carries x86-64-v3 kernels; lib/ollama beside it holds ggml's
  CPU libraries, one per CPU generation (just build puts them in
  bin/lib/ollama). A worker loads the best one its CPU runs and says which in
  /v1/ready and its log; the hive names the same one in its resources.

  Background:
    Given the ggml library folder beside the rbee binary

  Scenario: a worker computes with the best CPU library this machine runs
    Given the tiny worker model
    And a ready worker on the tiny model
    When I GET "/v1/ready" from the worker
    Then the response JSON "backend" is "cpu"
    And the response JSON "cpu_variant" is "${CPU_VARIANT}"
    And the response JSON "offloaded_layers" is 0
    And the CPU variant "${CPU_VARIANT}" uses AVX-512 when this CPU has it
    And the output of the worker contains "backend=cpu cpu_variant="

  Scenario: the hive reports the CPU library its workers load
    Given a hive
    When I GET "/v1/state" on the hive
    Then the hive's JSON "resources.cpu_variant" is "${CPU_VARIANT}"

  Scenario: a folder limited to an older CPU generation still serves, with that library
    Given a library folder "old/lib/ollama" holding only the "haswell" CPU library
    And the environment variable "OLLAMA_LIBRARY_PATH" is "${DIR}/old/lib/ollama"
    And the tiny worker model
    And a ready worker on the tiny model
    When I GET "/v1/ready" from the worker
    Then the response JSON "cpu_variant" is "haswell"
    When I POST to "/v1/inference" on the worker:
      """
      {"prompt": "Once upon a time", "max_tokens": 8, "seed": 1}
      """
    Then the response status is 200
    And the end event has "tokens_out" 8

  Scenario: with no library that runs here the kernels built into the binary serve
    Given a library folder "none/lib/ollama" holding only the "" CPU library
    And the environment variable "OLLAMA_LIBRARY_PATH" is "${DIR}/none/lib/ollama"
    And the tiny worker model
    And a ready worker on the tiny model
    When I GET "/v1/ready" from the worker
    Then the response JSON "cpu_variant" matches "^builtin"
    When I POST to "/v1/inference" on the worker:
      """
      {"prompt": "Once upon a time", "max_tokens": 8, "seed": 1}
      """
    Then the response status is 200
    And the end event has "tokens_out" 8
