@hive
Feature: The hive provisions models
  A hive downloads models from Hugging Face (here: a local server that speaks
  the same resolve protocol, reached through HF_ENDPOINT), verifies them and
  keeps them in a catalog that survives restarts.

  Scenario: A download streams its progress and lands in the catalog
    Given a Hugging Face server serving "acme/tiny-GGUF" file "tiny.gguf"
    And the Hugging Face server sends at most 500000 bytes per second
    And a hive
    When I PUT "/v1/models/tiny" on the hive with progress:
      """
      {"source": "hf:acme/tiny-GGUF", "file": "tiny.gguf", "revision": "main"}
      """
    Then the hive answers 200
    And the hive sent at least 3 progress events counting up to ${HF_SIZE} bytes
    And the last event is "done" with "model.sha256" "${HF_SHA256}"
    And the last event is "done" with "model.architecture" "llama"
    And the hive's catalog has the model "tiny" with sha256 "${HF_SHA256}"

  Scenario: A model already present is not downloaded again, even after a hive restart
    Given a Hugging Face server serving "acme/tiny-GGUF" file "tiny.gguf"
    And a hive
    When I PUT "/v1/models/tiny" on the hive:
      """
      {"source": "hf:acme/tiny-GGUF", "file": "tiny.gguf"}
      """
    Then the hive answers 200
    When I restart the hive
    And I PUT "/v1/models/tiny" on the hive:
      """
      {"source": "hf:acme/tiny-GGUF", "file": "tiny.gguf", "sha256": "${HF_SHA256}"}
      """
    Then the hive answers 200
    And the hive's JSON "sha256" is "${HF_SHA256}"
    And the Hugging Face server got 1 GET of the file bytes

  Scenario: Concurrent requests for one model share one download
    Given a Hugging Face server serving "acme/tiny-GGUF" file "tiny.gguf"
    And the Hugging Face server sends at most 1000000 bytes per second
    And a hive
    When I PUT "/v1/models/tiny" on the hive 4 times at once:
      """
      {"source": "hf:acme/tiny-GGUF", "file": "tiny.gguf"}
      """
    Then the Hugging Face server got 1 GET of the file bytes
    And the hive's catalog has the model "tiny" with sha256 "${HF_SHA256}"

  Scenario: A cut connection is resumed with a Range request
    Given a Hugging Face server serving "acme/tiny-GGUF" file "tiny.gguf"
    And the Hugging Face server cuts the connection once after 600000 bytes
    And a hive
    When I PUT "/v1/models/tiny" on the hive:
      """
      {"source": "hf:acme/tiny-GGUF", "file": "tiny.gguf"}
      """
    Then the hive answers 200
    And the hive's JSON "sha256" is "${HF_SHA256}"
    And the Hugging Face server got 2 GETs of the file bytes
    And the Hugging Face server got a GET with a Range header

  Scenario Outline: A download stopped by a hive <stop> continues from its partial file
    Given a Hugging Face server serving "acme/tiny-GGUF" file "tiny.gguf"
    And the Hugging Face server sends at most 400000 bytes per second
    And a hive
    When I start a PUT of "/v1/models/tiny" on the hive:
      """
      {"source": "hf:acme/tiny-GGUF", "file": "tiny.gguf"}
      """
    And the hive's data dir holds a partial download of "tiny"
    And I <how>
    And I PUT "/v1/models/tiny" on the hive:
      """
      {"source": "hf:acme/tiny-GGUF", "file": "tiny.gguf"}
      """
    Then the hive answers 200
    And the hive's JSON "sha256" is "${HF_SHA256}"
    And the Hugging Face server got a GET with a Range header
    And the hive's catalog has the model "tiny" with sha256 "${HF_SHA256}"

    Examples:
      | stop     | how                                 |
      | shutdown | restart the hive                    |
      | crash    | kill -9 the hive and start it again |

  Scenario: A stalled download is retried after the stall timeout
    Given a Hugging Face server serving "acme/tiny-GGUF" file "tiny.gguf"
    And the Hugging Face server stalls once after 1000 bytes
    And a hive with "--stall-timeout 1s"
    When I PUT "/v1/models/tiny" on the hive:
      """
      {"source": "hf:acme/tiny-GGUF", "file": "tiny.gguf"}
      """
    Then the hive answers 200
    And the Hugging Face server got 2 GETs of the file bytes
    And the Hugging Face server got a GET with a Range header
    And the hive's output contains "stalled: no data for 1s"

  Scenario: Corrupt bytes are deleted and fetched again
    Given a Hugging Face server serving "acme/tiny-GGUF" file "tiny.gguf"
    And the Hugging Face server serves corrupt bytes once
    And a hive
    When I PUT "/v1/models/tiny" on the hive:
      """
      {"source": "hf:acme/tiny-GGUF", "file": "tiny.gguf"}
      """
    Then the hive answers 200
    And the hive's JSON "sha256" is "${HF_SHA256}"
    And the Hugging Face server got 2 GETs of the file bytes
    And the Hugging Face server got no GET with a Range header

  Scenario: A file that never matches its checksum is never catalogued
    Given a Hugging Face server serving "acme/tiny-GGUF" file "tiny.gguf"
    And the Hugging Face server serves corrupt bytes always
    And a hive
    When I PUT "/v1/models/tiny" on the hive with progress:
      """
      {"source": "hf:acme/tiny-GGUF", "file": "tiny.gguf"}
      """
    Then the last event is "error" with "error.code" "CHECKSUM_MISMATCH"
    And the hive's answer contains "gave up after 6 attempts"
    And the Hugging Face server got 6 GETs of the file bytes
    And the hive's catalog does not have the model "tiny"
    And the hive's data dir holds no file for the model "tiny"

  Scenario: A missing file is reported with the repository and file name
    Given a Hugging Face server serving "acme/tiny-GGUF" file "tiny.gguf"
    And a hive
    When I PUT "/v1/models/other" on the hive:
      """
      {"source": "hf:acme/tiny-GGUF", "file": "missing.Q4_K_M.gguf"}
      """
    Then the hive answers 404
    And the hive's JSON "error.code" is "MODEL_NOT_FOUND"
    And the hive's answer contains "model not found: hf:acme/tiny-GGUF file missing.Q4_K_M.gguf"
    And the Hugging Face server got no GET of the file bytes

  Scenario Outline: A gated repository answers <status> and the message says what to do about HF_TOKEN
    Given a Hugging Face server serving "acme/gated-GGUF" file "tiny.gguf"
    And the Hugging Face server requires the token "hf_right"
    And the environment variable "HF_TOKEN" is "<token>"
    And a hive
    When I PUT "/v1/models/gated" on the hive:
      """
      {"source": "hf:acme/gated-GGUF", "file": "tiny.gguf"}
      """
    Then the hive answers 403
    And the hive's JSON "error.code" is "ACCESS_DENIED"
    And the hive's answer contains "access denied to hf:acme/gated-GGUF file tiny.gguf (revision main) (HTTP <status>"
    And the hive's answer contains "HF_TOKEN"
    And the hive's catalog does not have the model "gated"

    Examples:
      | status | token    |
      | 401    |          |
      | 403    | hf_wrong |

  Scenario: The right HF_TOKEN opens a gated repository
    Given a Hugging Face server serving "acme/gated-GGUF" file "tiny.gguf"
    And the Hugging Face server requires the token "hf_right"
    And the environment variable "HF_TOKEN" is "hf_right"
    And a hive
    When I PUT "/v1/models/gated" on the hive:
      """
      {"source": "hf:acme/gated-GGUF", "file": "tiny.gguf"}
      """
    Then the hive answers 200

  # A real full disk: the data dir is a 1 MiB tmpfs (mounting it needs root)
  # and the tiny model is about 1.7 MB.
  Scenario: A model that does not fit on the disk is refused before the download
    Given a Hugging Face server serving "acme/tiny-GGUF" file "tiny.gguf"
    And a 1 MiB filesystem as the hive's data dir
    And a hive
    When I PUT "/v1/models/tiny" on the hive:
      """
      {"source": "hf:acme/tiny-GGUF", "file": "tiny.gguf"}
      """
    Then the hive answers 507
    And the hive's JSON "error.code" is "INSUFFICIENT_DISK"
    And the hive's answer contains "not enough disk space"
    And the hive's JSON "error.details.needed_bytes" is "${HF_SIZE}"
    And the Hugging Face server got no GET of the file bytes
    And the hive's catalog does not have the model "tiny"

  Scenario: Generated and local models are catalogued with their GGUF metadata
    Given a hive
    When I PUT "/v1/models/tiny" on the hive:
      """
      {"source": "synth:tiny"}
      """
    Then the hive answers 200
    And the hive's JSON "architecture" is "llama"
    And the hive's JSON "quantization" is "F32"
    And the hive's JSON "context_length" is "2048"
    And the hive's JSON "parameters" is at least 1000
    When I run "rbee model synth --preset tiny --out ${DIR}/local.gguf --seed 3"
    And I PUT "/v1/models/local" on the hive:
      """
      {"source": "file://${DIR}/local.gguf"}
      """
    Then the hive answers 200
    And the hive's JSON "path" is "${DIR}/local.gguf"
    When I DELETE "/v1/models/local" on the hive
    Then the hive answers 204
    And the hive's catalog does not have the model "local"
    And the hive's catalog has the model "tiny"

  Scenario Outline: Bad model requests are refused with the allowed forms
    Given a hive
    When I PUT "/v1/models/<name>" on the hive:
      """
      <body>
      """
    Then the hive answers 400
    And the hive's JSON "error.code" is "<code>"
    And the hive's answer contains "<text>"

    Examples:
      | name  | body                                                  | code          | text                     |
      | m     | {"source": "s3://bucket/x.gguf"}                      | INVALID_REF   | allowed forms            |
      | m     | {"source": "hf:acme/x", "file": "../../etc/passwd"}   | INVALID_REF   | path traversal           |
      | m     | {"source": "file:///etc/../etc/x.gguf"}               | INVALID_REF   | clean and absolute       |
      | m     | {"source": "synth:huge"}                              | INVALID_REF   | unknown synth preset     |
      | m     | {"source": "synth:tiny", "sha256": "abc"}             | INVALID_REF   | 64 hexadecimal digits    |
      | m     | {"source": "synth:tiny", "colour": "red"}             | INVALID_JSON  | unknown field            |
      | Tiny  | {"source": "synth:tiny"}                              | INVALID_NAME  | not DNS-safe             |
      | a_b   | {"source": "synth:tiny"}                              | INVALID_NAME  | not DNS-safe             |

  Scenario: A file:// alias of another model never deletes that model's file
    Given a hive
    And the model "tiny" is provisioned from "synth:tiny"
    When I PUT "/v1/models/alias" on the hive:
      """
      {"source": "file://${HIVE_DATA}/models/tiny/tiny.gguf"}
      """
    Then the hive answers 200
    When I DELETE "/v1/models/alias" on the hive
    Then the hive answers 204
    And the hive's catalog has the model "tiny"
    When I PUT "/v1/models/alias" on the hive:
      """
      {"source": "file://${HIVE_DATA}/models/tiny/tiny.gguf", "sha256": "0000000000000000000000000000000000000000000000000000000000000000"}
      """
    Then the hive answers 502
    And the hive's JSON "error.code" is "CHECKSUM_MISMATCH"
    And the hive's catalog has the model "tiny"
    And the file "${HIVE_DATA}/models/tiny/tiny.gguf" is still there

  Scenario Outline: A local source that is <what> is refused without reading it
    Given a file "${DIR}/secret" holding "root:x:0:0:secret"
    And <setup>
    And a hive
    When I PUT "/v1/models/m" on the hive:
      """
      {"source": "file://${DIR}/m.gguf"}
      """
    Then the hive answers <status>
    And the hive's JSON "error.code" is "<code>"
    And the hive's answer contains "<text>"
    And the hive's answer does not contain "root"
    And the hive's catalog does not have the model "m"
    When I send SIGTERM to the hive
    Then the hive exits with code 0

    Examples:
      | what                  | setup                                                | status | code               | text                |
      | a symbolic link       | a symbolic link "${DIR}/m.gguf" to "${DIR}/secret"  | 400    | NOT_A_REGULAR_FILE | symbolic link       |
      | a named pipe          | a named pipe "${DIR}/m.gguf"                         | 400    | NOT_A_REGULAR_FILE | named pipe (FIFO)   |
      | not a GGUF file       | a file "${DIR}/m.gguf" holding "root:x:0:0:secret"   | 422    | INVALID_MODEL      | magic bytes         |

  Scenario: With --file-roots a local model outside those folders is refused
    Given a folder "${DIR}/models"
    And a hive with "--file-roots ${DIR}/models"
    When I run "rbee model synth --preset tiny --out ${DIR}/models/in.gguf"
    And I run "rbee model synth --preset tiny --out ${DIR}/out.gguf"
    And I PUT "/v1/models/in" on the hive:
      """
      {"source": "file://${DIR}/models/in.gguf"}
      """
    Then the hive answers 200
    When I PUT "/v1/models/out" on the hive:
      """
      {"source": "file://${DIR}/out.gguf"}
      """
    Then the hive answers 403
    And the hive's JSON "error.code" is "FILE_OUTSIDE_ROOTS"
    And the hive's answer contains "file_roots"

  # A real full disk: a 1 MiB tmpfs (mounting it needs root); synth:tiny is about 1.7 MB.
  Scenario: A generated model that does not fit is refused and leaves nothing behind
    Given a 1 MiB filesystem as the hive's data dir
    And a hive
    When I PUT "/v1/models/tiny" on the hive:
      """
      {"source": "synth:tiny"}
      """
    Then the hive answers 507
    And the hive's JSON "error.code" is "INSUFFICIENT_DISK"
    And the hive's answer contains "not enough disk space for synth:tiny"
    And the hive's JSON "error.details.free_bytes" is at least 1
    And the hive's data dir holds no file for the model "tiny"

  # The download fits when it starts; then another program fills the 3 MiB tmpfs.
  Scenario: A disk that fills during a download is a 507 and the partial file stays for a resume
    Given a Hugging Face server serving "acme/tiny-GGUF" file "tiny.gguf"
    And the Hugging Face server sends at most 400000 bytes per second
    And a 3 MiB filesystem as the hive's data dir
    And a hive
    When I start a PUT of "/v1/models/tiny" on the hive:
      """
      {"source": "hf:acme/tiny-GGUF", "file": "tiny.gguf"}
      """
    And the hive's data dir holds a partial download of "tiny"
    And the hive's data dir filesystem fills up
    Then the started request answers 507
    And the hive's JSON "error.code" is "INSUFFICIENT_DISK"
    And the hive's answer contains "the disk filled up during the download"
    And the hive's data dir holds only a partial download for the model "tiny"
    And the hive's catalog does not have the model "tiny"
