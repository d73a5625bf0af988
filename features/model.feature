@model
Feature: generate and inspect GGUF models
  `rbee model synth` writes a random-weight llama model that llama.cpp loads,
  byte-identical for the same seed, and `rbee model inspect` reads any GGUF header.

  Scenario: a tiny model is generated and inspected
    When I run "rbee model synth --preset tiny --out tiny.gguf"
    Then the command succeeds
    And stdout contains "wrote tiny.gguf"
    And stdout matches "sha256: [0-9a-f]{64}"
    And the file "tiny.gguf" has the sha256 printed on stdout
    When I run "rbee model inspect tiny.gguf"
    Then the command succeeds
    And stdout matches "architecture:\s+llama"
    And stdout matches "context length:\s+2048"
    And stdout matches "quantization:\s+F32"
    And stdout matches "parameters:\s+427K"
    And stdout matches "tensors:\s+21"
    And stdout matches "chat template:\s+yes"

  Scenario: inspect prints JSON for scripts
    Given I run "rbee model synth -preset tiny -out tiny.gguf"
    When I run "rbee model inspect --json tiny.gguf"
    Then the command succeeds
    And stdout is JSON with "architecture" equal to "llama"
    And stdout is JSON with "context_length" equal to "2048"
    And stdout is JSON with "has_chat_template" equal to "true"

  Scenario: the same seed gives the same file, another seed a different one
    When I run "rbee model synth --preset tiny --seed 7 --out a.gguf"
    And I run "rbee model synth --preset tiny --seed 7 --out b.gguf"
    And I run "rbee model synth --preset tiny --seed 8 --out c.gguf"
    Then the command succeeds
    And the files "a.gguf" and "b.gguf" are identical
    And the files "a.gguf" and "c.gguf" differ

  Scenario: an unknown preset fails and lists the presets
    When I run "rbee model synth --preset huge --out huge.gguf"
    Then the exit code is 1
    And stderr contains "unknown synth preset \"huge\""
    And stderr contains "tiny, tinyllama-q4_0"
    And the file "huge.gguf" does not exist

  Scenario: inspecting a file that is not GGUF fails clearly
    Given a file "notes.txt" with:
      """
      just some text
      """
    When I run "rbee model inspect notes.txt"
    Then the exit code is 1
    And stderr contains "not a GGUF file"
    And stderr contains "starts with \"just\""

  Scenario: inspecting a truncated model fails clearly
    Given I run "rbee model synth --preset tiny --out tiny.gguf"
    And I run "head -c 100000 tiny.gguf > cut.gguf"
    When I run "rbee model inspect cut.gguf"
    Then the exit code is 1
    And stderr contains "truncated"

  Scenario: inspecting a missing file fails clearly
    When I run "rbee model inspect nowhere.gguf"
    Then the exit code is 1
    And stderr contains "no such file"

  Scenario: the TinyLlama-shaped benchmark model
    When I run "rbee model synth --preset tinyllama-q4_0 --out tl.gguf"
    Then the command succeeds
    And the file "tl.gguf" has the sha256 printed on stdout
    When I run "rbee model inspect tl.gguf"
    Then stdout matches "parameters:\s+1\.10B"
    And stdout matches "quantization:\s+Q4_0"
    And stdout matches "tensors:\s+201"

  Scenario: any shard of a split model stands for the whole model
    Given the preset "qwen3-tiny" written as a split model "q3" of 10 tensors a shard
    And I run "rbee model synth --preset qwen3-tiny --out one.gguf"
    When I run "rbee model inspect --sha256 q3-00002-of-00003.gguf"
    Then the command succeeds
    And stdout lists every shard of "q3-00001-of-00003.gguf" with its size and sha256
    And stdout's "parameters" line is the one of "one.gguf"
    And stdout's "tensor data" line is the one of "one.gguf"
    And stdout's "tensors" line is the one of "one.gguf"
    And stdout matches "architecture:\s+qwen3"
    And stdout matches "context length:\s+4096"
    When I run "rbee model inspect --json q3-00001-of-00003.gguf"
    Then stdout is JSON with "tensor_count" equal to "25"
    And stdout is JSON with "parameters" equal to "525184"

  Scenario: inspecting a split model with a missing shard names the missing file
    Given the preset "qwen3-tiny" written as a split model "q3" of 10 tensors a shard
    And I run "rm q3-00003-of-00003.gguf"
    When I run "rbee model inspect q3-00001-of-00003.gguf"
    Then the exit code is 1
    And stderr contains "shard 3 of 3 of q3-00001-of-00003.gguf is missing (q3-00003-of-00003.gguf)"
    When I run "rm q3-00001-of-00003.gguf"
    And I run "rbee model inspect q3-00002-of-00003.gguf"
    Then the exit code is 1
    And stderr contains "shard 1 of 3 of q3-00002-of-00003.gguf is missing (q3-00001-of-00003.gguf)"
