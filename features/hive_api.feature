@hive
Feature: The hive's API is authenticated and robust
  Tests bind loopback addresses only. The token is enforced whenever the hive
  has one, so a loopback hive with --token-file shows the same 401 a
  non-loopback hive gives; a non-loopback bind without a token is refused
  before anything is bound.

  Scenario: Without the bearer token the hive answers 401
    Given a hive with the token "s3cret-token"
    When I GET "/v1/state" on the hive without a token
    Then the hive answers 401
    And the hive's answer header "WWW-Authenticate" contains "Bearer"
    And the hive's JSON "error.code" is "UNAUTHORIZED"
    When I GET "/v1/state" on the hive with the token "wrong"
    Then the hive answers 401
    When I GET "/v1/state" on the hive with the token "s3cret-token"
    Then the hive answers 200
    And the hive's answer does not contain "s3cret-token"

  Scenario: A non-loopback address without a token is refused
    When I run "rbee hive --listen 0.0.0.0:9299 --data-dir ${DIR}/d"
    Then the exit code is 1
    And stderr contains "refusing to listen on 0.0.0.0:9299 without a token"

  Scenario Outline: A --listen that is not host:port with a port in 1024-65535 is refused
    When I run "rbee hive --listen <addr> --data-dir ${DIR}/d"
    Then the exit code is 1
    And stderr contains "<message>"
    And stderr does not contain "without a token"

    Examples:
      | addr            | message                                   |
      | 127.0.0.1:80    | use a port in 1024-65535                  |
      | 127.0.0.1:70000 | use a port in 1024-65535                  |
      | 127.0.0.1:http  | use a port in 1024-65535                  |
      | garbage         | is not host:port; use e.g. 127.0.0.1:9200 |

  Scenario: A token file readable by others is refused
    Given a file "tok" with:
      """
      s3cret
      """
    When I run "chmod 644 tok && rbee hive --listen 127.0.0.1:9298 --data-dir ${DIR}/d --token-file tok"
    Then the exit code is 1
    And stderr contains "chmod 600"

  Scenario: The state reports the binary, the resources and the catalog
    Given a hive
    And the model "tiny" is provisioned from "synth:tiny"
    When I GET "/v1/state" on the hive
    Then the hive answers 200
    And the hive's JSON "binary_sha256" matches the rbee binary
    And the hive's JSON "resources.cpu_count" is at least 1
    And the hive's JSON "resources.ram_total_bytes" is at least 1
    And the hive's JSON "resources.disk_free_bytes" is at least 1
    And the hive's JSON "resources.backends.0" is "cpu"
    And the hive's JSON "models.0.name" is "tiny"

  Scenario: The hive's metrics count workers by state and pass promtool
    Given a hive
    And the model "tiny" is provisioned from "synth:tiny"
    And a worker "chat-0" on the model "tiny"
    When I PUT "/v1/workers/gpu-0" on the hive:
      """
      {"model": "tiny", "backend": "cuda"}
      """
    And I GET "/metrics" on the hive
    Then the hive answers 200
    And the hive's answer contains "rbee_hive_workers{state=\"idle\"} 1"
    And the hive's answer contains "rbee_hive_preflight_refusals_total{code=\"BACKEND_UNAVAILABLE\"} 1"
    And the hive's answer contains "rbee_hive_disk_free_bytes"
    And the hive's metrics pass "promtool check metrics" with no output
    When I DELETE "/metrics" on the hive
    Then the hive answers 405

  Scenario: 1000 random requests do not crash the hive
    Given a hive
    When I send 1000 random requests to the hive
    Then no random request got a 500 and the hive still answers
