@worker
Feature: the worker's OpenAI surface, checked with the official OpenAI Go client
  Clients written for OpenAI talk to a worker unchanged: models, chat and
  completions (plain and streaming), JSON output constrained by a grammar,
  prompt-cache accounting and embeddings. Fields that do not change the
  output are accepted; fields the worker cannot honour are a 400 that names
  them. The scenarios run the real binary on the generated tiny model and on
  the shared real GGUF files (random weights, real tokenizers and templates).

  Background:
    Given the tiny worker model

  Scenario: GET /v1/models lists the model with its context length and file digest
    Given a ready worker on the tiny model with "--ctx-size 512"
    When the OpenAI client lists the models
    Then the only model listed is "tiny" with context length 512 and the sha256 of "tiny.gguf"
    When I GET "/v1/models" from the worker
    Then the response JSON "object" is "list"
    And the response JSON "data.0.owned_by" is "rbee"
    And the response JSON "data.0.chat_template" is "chatml"

  Scenario Outline: chat completions, plain and streaming, on a real template (<model>)
    Given a ready worker on the shared model "<model>" with "--ctx-size 512"
    When the OpenAI client asks for a chat completion of "Hello there" with 6 max tokens, ignoring EOS, and every field that does not change the output
    Then the OpenAI reply has 6 completion tokens and finish reason "length"
    When the OpenAI client streams a chat completion of "Hello there" with 5 max tokens, ignoring EOS
    Then the OpenAI reply has 5 completion tokens and finish reason "length"
    When I GET "/v1/ready" from the worker
    Then the response JSON "chat_template" is "<template>"
    And the response JSON "ctx_size" is 512

    Examples:
      | model              | template |
      | qwen2-Q4_K_M.gguf  | chatml   |
      | llama3-Q4_K_M.gguf | llama3   |
      | phi3-Q4_K_M.gguf   | phi3     |

  Scenario: completions, plain and streaming, give the same greedy text
    Given a ready worker on the shared model "stories260K.gguf" with "--ctx-size 256"
    When the OpenAI client asks for a completion of "Once upon a time" with 12 max tokens at temperature 0
    Then the OpenAI reply has 12 completion tokens and finish reason "length"
    When the OpenAI client asks for a streamed completion of "Once upon a time" with 12 max tokens at temperature 0
    Then the OpenAI reply's text is "${PLAIN_COMPLETION}"
    And the OpenAI reply has 12 completion tokens and finish reason "length"

  Scenario Outline: response_format json_schema constrains a random-weight model (<model>)
    Given a ready worker on the shared model "<model>" with "--ctx-size 1024"
    When the OpenAI client asks for a chat completion of "Describe the weather" as JSON matching:
      """
      {"type": "object",
       "properties": {"sunny": {"type": "boolean"},
                      "mood": {"enum": ["happy", "sad", "calm"]},
                      "days": {"type": "integer"}},
       "required": ["sunny", "mood", "days"],
       "additionalProperties": false}
      """
    Then the reply is a JSON object matching the schema
    When the OpenAI client asks for a chat completion of "Anything" as a JSON object
    Then the reply is a JSON object, or its start when max_tokens cut it

    Examples:
      | model              |
      | qwen2-Q4_K_M.gguf  |
      | llama3-Q4_K_M.gguf |

  Scenario Outline: what the worker cannot honour is refused with a 400 naming the field
    Given a ready worker on the tiny model
    Then the OpenAI client's chat completion with <what> is refused with 400 naming "<field>"

    Examples:
      | what     | field    |
      | tools    | tools    |
      | n = 2    | n        |
      | logprobs | logprobs |

  Scenario: a bad response_format is a 400 naming the field
    Given a ready worker on the tiny model
    When I POST to "/v1/chat/completions" on the worker:
      """
      {"messages": [{"role": "user", "content": "hi"}], "response_format": {"type": "json_schema"}}
      """
    Then the response status is 400
    And the response JSON "error.param" is "response_format.json_schema.schema"
    And the response JSON "error.type" is "invalid_request_error"
    When I POST to "/v1/chat/completions" on the worker:
      """
      {"messages": [{"role": "user", "content": "hi"}], "response_format": {"type": "yaml"}}
      """
    Then the response status is 400
    And the response JSON "error.details.field" is "response_format.type"

  Scenario: a repeated prompt reuses the slot's cache unless cache_prompt is false
    Given a ready worker on the shared model "qwen2-Q4_K_M.gguf" with "--slots 1 --ctx-size 512"
    When the OpenAI client asks for a chat completion of "Tell me about the sea" with 4 max tokens, ignoring EOS
    Then the OpenAI reply reports no cached prompt tokens
    When the OpenAI client asks for a chat completion of "Tell me about the sea" with 4 max tokens, ignoring EOS
    Then the OpenAI reply reports some cached prompt tokens
    When the OpenAI client asks for a chat completion of "Tell me about the sea" with 4 max tokens, ignoring EOS, without the prompt cache
    Then the OpenAI reply reports no cached prompt tokens
    When I POST to "/v1/inference" on the worker:
      """
      {"prompt": "A prompt for the native endpoint", "max_tokens": 3, "ignore_eos": true}
      """
    And I POST to "/v1/inference" on the worker:
      """
      {"prompt": "A prompt for the native endpoint", "max_tokens": 3, "ignore_eos": true}
      """
    Then the end event reports some cached prompt tokens
    When I GET "/metrics" from the worker
    Then the response body contains "rbee_worker_prompt_tokens_cached_total"

  Scenario Outline: embeddings from a worker started with --embeddings (<model>)
    Given a ready worker on the <model> with "--embeddings --ctx-size 256"
    When the OpenAI client embeds 3 texts as float
    Then 3 embeddings of the same non-zero length come back
    And I remember the embeddings as "floats"
    When the OpenAI client embeds 3 texts as base64
    Then 3 embeddings of the same non-zero length come back
    And the embeddings equal "floats"
    When the OpenAI client embeds 2 token lists as float
    Then 2 embeddings of the same non-zero length come back
    When the OpenAI client embeds "one plain string"
    Then 1 embeddings of the same non-zero length come back
    When I POST to "/v1/embeddings" on the worker:
      """
      {"input": [[1, 99999999]]}
      """
    Then the response status is 400
    And the response JSON "error.param" is "input[0]"

    Examples:
      | model                               |
      | tiny model                          |
      | shared model "qwen2-Q4_K_M.gguf"    |

  Scenario: a worker started without --embeddings says how to turn them on
    Given a ready worker on the tiny model
    When the OpenAI client embeds "hello"
    Then the OpenAI request was refused with 400 saying "rbee worker --embeddings"
